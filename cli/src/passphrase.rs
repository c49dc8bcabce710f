//! Where passphrases come from: for an existing key `VOUCH_PASSPHRASE_<KEYID8>` (the first 8
//! hex digits of its key id, upper case), else `VOUCH_<ROLE>_PASSPHRASE` (for CI), else a
//! prompt on the terminal, else a clear error. A variable that is set but empty is an error
//! of its own ("is empty"), never taken as a passphrase. Key files are encrypted with
//! [`kdf`]'s settings.

use std::io::IsTerminal;

use anyhow::{bail, Context as _};
use vouch_tuf::crypto::Kdf;
use zeroize::Zeroizing;

/// The value of `VOUCH_KDF` that selects cheap key derivation. Insecure: for tests only.
pub const FAST_INSECURE_KDF: &str = "fast-insecure-for-tests";

/// The environment variable holding the passphrase of `role`'s keys: `VOUCH_ROOT_PASSPHRASE`,
/// `VOUCH_TARGETS_PASSPHRASE`, `VOUCH_RELEASES_PASSPHRASE` (for `targets/releases`, the last
/// path segment), with characters other than letters and digits as `_`.
pub fn env_name(role: &str) -> String {
    env_name_with(role, "PASSPHRASE")
}

/// The environment variable holding the passphrase of the one key `keyid`:
/// `VOUCH_PASSPHRASE_` and the first 8 hex digits of the key id, upper case
/// (`VOUCH_PASSPHRASE_1E0F423C`). `None` when `keyid` does not start with 8 hex digits.
pub fn key_env_name(keyid: &str) -> Option<String> {
    let head = keyid.get(..8)?;
    head.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| format!("VOUCH_PASSPHRASE_{}", head.to_ascii_uppercase()))
}

/// The environment variable holding a new passphrase for `key passwd`.
pub fn new_env_name(role: &str) -> String {
    env_name_with(role, "NEW_PASSPHRASE")
}

fn env_name_with(role: &str, suffix: &str) -> String {
    let short = role.rsplit('/').next().unwrap_or(role);
    let upper: String = short
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("VOUCH_{upper}_{suffix}")
}

/// Where a passphrase came from (for error messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The named environment variable.
    Env(String),
    /// The terminal.
    Prompt,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env(v) => write!(f, "from {v}"),
            Source::Prompt => f.write_str("typed at the prompt"),
        }
    }
}

/// The passphrase in `var`: `None` when unset, an error when set but empty (an empty
/// passphrase is never meant, and "unset" would send the user looking in the wrong place).
fn from_env(var: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
    match std::env::var_os(var) {
        None => Ok(None),
        Some(v) if v.is_empty() => {
            bail!("{var} is set but empty: set it to the passphrase, or unset it")
        }
        Some(v) => match v.into_string() {
            Ok(p) => Ok(Some(Zeroizing::new(p))),
            Err(_) => bail!("{var} is not valid UTF-8"),
        },
    }
}

fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn prompt(text: &str) -> anyhow::Result<Zeroizing<String>> {
    let p = Zeroizing::new(rpassword::prompt_password(text).context("reading passphrase")?);
    Ok(p)
}

/// The passphrase that unlocks an existing key of `role` (`keyid` names the key in the
/// prompt and in errors): `VOUCH_PASSPHRASE_<KEYID8>` ([`key_env_name`]) first, then
/// `VOUCH_<ROLE>_PASSPHRASE`, then a prompt.
pub fn unlock(role: &str, keyid: &str) -> anyhow::Result<(Zeroizing<String>, Source)> {
    let by_key = key_env_name(keyid);
    if let Some(var) = &by_key {
        if let Some(p) = from_env(var)? {
            return Ok((p, Source::Env(var.clone())));
        }
    }
    let var = env_name(role);
    if let Some(p) = from_env(&var)? {
        return Ok((p, Source::Env(var)));
    }
    if can_prompt() {
        let p = prompt(&format!("Passphrase for the {role} key {keyid}: "))?;
        return Ok((p, Source::Prompt));
    }
    match by_key {
        Some(k) => bail!(
            "no passphrase for the {role} key {keyid}: set {var} (or {k} for this key alone), or run on a terminal"
        ),
        None => bail!("no passphrase for the {role} key {keyid}: set {var} or run on a terminal"),
    }
}

/// The environment variable the notary client reads the passphrase of a `role` key from:
/// `NOTARY_ROOT_PASSPHRASE`, `NOTARY_TARGETS_PASSPHRASE`, `NOTARY_SNAPSHOT_PASSPHRASE`, and
/// `NOTARY_DELEGATION_PASSPHRASE` for every delegated role.
pub fn notary_env_name(role: &str) -> &'static str {
    match role {
        "root" => "NOTARY_ROOT_PASSPHRASE",
        "targets" => "NOTARY_TARGETS_PASSPHRASE",
        "snapshot" => "NOTARY_SNAPSHOT_PASSPHRASE",
        _ => "NOTARY_DELEGATION_PASSPHRASE",
    }
}

/// The passphrase of a notary key file of `role` (`file` names it in the prompt and in
/// errors): the variable the notary client reads ([`notary_env_name`]), else a prompt.
pub fn notary(role: &str, file: &str) -> anyhow::Result<(Zeroizing<String>, Source)> {
    let var = notary_env_name(role);
    if let Some(p) = from_env(var)? {
        return Ok((p, Source::Env(var.to_owned())));
    }
    if can_prompt() {
        let p = prompt(&format!("Passphrase for the notary {role} key {file}: "))?;
        return Ok((p, Source::Prompt));
    }
    bail!("no passphrase for the notary {role} key {file}: set {var} (as for the notary client) or run on a terminal")
}

/// A passphrase for a new key file of `role`: `var` if set, else asked twice on the terminal.
fn new_with(role: &str, var: String) -> anyhow::Result<Zeroizing<String>> {
    if let Some(p) = from_env(&var)? {
        return Ok(p);
    }
    if can_prompt() {
        let first = prompt(&format!("New passphrase for the {role} key: "))?;
        if first.is_empty() {
            bail!("empty passphrase refused");
        }
        let second = prompt(&format!("Repeat the passphrase for the {role} key: "))?;
        if first != second {
            bail!("the passphrases differ");
        }
        return Ok(first);
    }
    bail!("no passphrase for a new {role} key: set {var} or run on a terminal")
}

/// A passphrase to encrypt a new key of `role` with (`VOUCH_<ROLE>_PASSPHRASE` or prompt).
pub fn for_new_key(role: &str) -> anyhow::Result<Zeroizing<String>> {
    new_with(role, env_name(role))
}

/// The new passphrase for `key passwd` (`VOUCH_<ROLE>_NEW_PASSPHRASE` or prompt).
pub fn changed(role: &str) -> anyhow::Result<Zeroizing<String>> {
    new_with(role, new_env_name(role))
}

/// Key-derivation settings for writing key files: the default (scrypt, 32 MiB), unless
/// `VOUCH_KDF=fast-insecure-for-tests` asks for cheap settings, which only tests should.
pub fn kdf() -> anyhow::Result<Kdf> {
    match std::env::var("VOUCH_KDF") {
        Err(_) => Ok(Kdf::default()),
        Ok(v) if v.is_empty() || v == "default" => Ok(Kdf::default()),
        Ok(v) if v == FAST_INSECURE_KDF => Ok(Kdf::fast_insecure_for_tests()),
        Ok(v) => {
            bail!("unknown VOUCH_KDF {v:?}: unset it (or {FAST_INSECURE_KDF:?}, for tests only)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_the_role() {
        assert_eq!(env_name("root"), "VOUCH_ROOT_PASSPHRASE");
        assert_eq!(env_name("targets"), "VOUCH_TARGETS_PASSPHRASE");
        assert_eq!(env_name("targets/releases"), "VOUCH_RELEASES_PASSPHRASE");
        assert_eq!(env_name("ci-key"), "VOUCH_CI_KEY_PASSPHRASE");
        assert_eq!(new_env_name("root"), "VOUCH_ROOT_NEW_PASSPHRASE");
        assert_eq!(
            key_env_name("1e0f423c3359fae61edf22fe52ce5bf0").as_deref(),
            Some("VOUCH_PASSPHRASE_1E0F423C")
        );
        assert_eq!(key_env_name("in ./ci.pem"), None);
        assert_eq!(key_env_name("1e0f"), None);
    }
}
