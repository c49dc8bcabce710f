//! `vouch key`: generate, list, import, export and delete private keys and change their
//! passphrases.
//!
//! `list` and `delete` tell, from the trusted metadata cached in the trust directory
//! ([`crate::usage`]), which repositories and roles use each key: `delete` refuses a key a
//! cached repository still lists unless `--force`, and asks first unless `--yes`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use vouch_tuf::crypto::{Algorithm, PrivateKey, Signer};

use crate::context::Context;
use crate::keystore::{self, Keystore};
use crate::output::{self, Format};
use crate::passphrase;
use crate::usage::{Use, Uses};

/// Key algorithms that can be generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgorithm {
    /// Ed25519 (the default).
    Ed25519,
    /// ECDSA over P-256 with SHA-256.
    EcdsaP256,
}

impl From<KeyAlgorithm> for Algorithm {
    fn from(a: KeyAlgorithm) -> Self {
        match a {
            KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
            KeyAlgorithm::EcdsaP256 => Algorithm::EcdsaP256Sha256,
        }
    }
}

/// `vouch key …`
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Generate a key, encrypted with VOUCH_<ROLE>_PASSPHRASE or a prompted passphrase.
    ///
    /// Example: VOUCH_TARGETS_PASSPHRASE=… vouch key generate --role targets
    Generate(GenerateArgs),
    /// List stored keys, with the repositories and roles that use them (no passphrase
    /// needed).
    ///
    /// Example: vouch key list --output json
    List,
    /// Import an encrypted PKCS#8 PEM key file.
    ///
    /// Example: VOUCH_RELEASES_PASSPHRASE=… vouch key import ci.pem --role releases
    Import(ImportArgs),
    /// Print a key's encrypted PEM (to stdout, or to --out FILE with mode 0600).
    ///
    /// Example: vouch key export 3f2a9c -o backup.pem
    Export(ExportArgs),
    /// Change a key's passphrase (old from VOUCH_<ROLE>_PASSPHRASE, new from
    /// VOUCH_<ROLE>_NEW_PASSPHRASE, or prompts).
    ///
    /// Example: vouch key passwd 3f2a9c
    Passwd(PasswdArgs),
    /// Delete a stored key (asks first, unless --yes; a key a repository still uses only
    /// with --force).
    ///
    /// Example: vouch key delete 3f2a9c --yes
    Delete(DeleteArgs),
}

/// `vouch key delete`
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Key id (or a unique prefix of at least 4 hex digits).
    pub keyid: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Delete the key even though a repository cached here still lists it for a role.
    #[arg(long)]
    pub force: bool,
}

/// `vouch key generate`
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Key algorithm.
    #[arg(long, value_enum, default_value = "ed25519")]
    pub algorithm: KeyAlgorithm,
    /// The role the key is for (root, targets, snapshot, or a delegated role's name); it
    /// names the passphrase variable.
    #[arg(long, default_value = "targets")]
    pub role: String,
}

/// `vouch key import`
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// An encrypted PKCS#8 PEM file (as `vouch key export` writes).
    pub file: PathBuf,
    /// The role the key is for.
    #[arg(long, default_value = "targets")]
    pub role: String,
}

/// `vouch key export`
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Key id (or a unique prefix of at least 4 hex digits).
    pub keyid: String,
    /// Write to this file (created with mode 0600) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Export the public key as a TUF key object (JSON) instead of the encrypted private key,
    /// e.g. for `vouch delegation add --key FILE`.
    #[arg(long)]
    pub public: bool,
}

/// `vouch key passwd`
#[derive(clap::Args, Debug)]
pub struct PasswdArgs {
    /// Key id (or a unique prefix of at least 4 hex digits).
    pub keyid: String,
}

fn check_role(role: &str) -> anyhow::Result<()> {
    vouch_tuf::types::RoleName::new(role)
        .map(|_| ())
        .map_err(|e| anyhow!("invalid --role {role:?}: {e}"))
}

/// Runs `vouch key …`.
pub fn run(ctx: &Context, cmd: KeyCommand) -> anyhow::Result<()> {
    let ks = Keystore::new(&ctx.trust_dir);
    match cmd {
        KeyCommand::Generate(a) => {
            check_role(&a.role)?;
            let pass = passphrase::for_new_key(&a.role)?;
            let kdf = passphrase::kdf()?;
            let key = PrivateKey::generate(a.algorithm.into()).context("cannot generate a key")?;
            let e = ks.save(&key, &a.role, &pass, kdf)?;
            report(ctx, "generated", &e)
        }
        KeyCommand::List => {
            let keys = ks.list()?;
            let uses = Uses::read(&ctx.cache_dir());
            match ctx.output {
                Format::Json => output::json(&json!({
                    "keys": keys.iter().map(|e| {
                        let mut v = entry_json(e);
                        v["status"] = json!(uses.status(e).as_str());
                        v["repository"] = json!(e.repository);
                        v["uses"] = uses.of(&e.keyid).iter().map(|u| json!({
                            "gun": u.gun,
                            "role": u.role,
                        })).collect();
                        v
                    }).collect::<Vec<_>>()
                })),
                Format::Text => {
                    let rows: Vec<Vec<String>> = keys
                        .iter()
                        .map(|e| {
                            vec![
                                e.role.clone(),
                                e.keyid.to_string(),
                                e.algorithm.clone(),
                                uses.status(e).as_str().to_owned(),
                                repositories(&uses, e),
                                e.path.display().to_string(),
                            ]
                        })
                        .collect();
                    output::text(&output::table(
                        &[
                            "ROLE",
                            "KEY ID",
                            "ALGORITHM",
                            "STATUS",
                            "REPOSITORY",
                            "FILE",
                        ],
                        &rows,
                    ))
                }
            }
        }
        KeyCommand::Delete(a) => {
            let e = ks.find(&a.keyid)?;
            let uses = Uses::read(&ctx.cache_dir());
            let current = uses.of(&e.keyid);
            if !current.is_empty() && !a.force {
                bail!(
                    "the {} key {} is a current key of {}: delete it only once it is rotated out (`vouch rotate`, `vouch delegation remove … --key {}`), or pass --force; nothing was deleted",
                    e.role,
                    e.keyid,
                    describe_uses(current),
                    &e.keyid.as_str()[..8]
                );
            }
            let still = if current.is_empty() {
                String::new()
            } else {
                format!(" It is a current key of {}.", describe_uses(current))
            };
            crate::confirm::confirm(
                &format!(
                    "Delete the {} key {} ({})? A deleted key cannot be recovered.{still}",
                    e.role,
                    e.keyid,
                    e.path.display()
                ),
                a.yes,
            )?;
            ks.remove(&e)?;
            match ctx.output {
                Format::Json => output::json(&with(entry_json(&e), "deleted", json!(true))),
                Format::Text => output::text(&format!(
                    "deleted the {} key {} ({})",
                    e.role,
                    e.keyid,
                    e.path.display()
                )),
            }
        }
        KeyCommand::Import(a) => {
            check_role(&a.role)?;
            let pem = std::fs::read_to_string(&a.file)
                .with_context(|| format!("cannot read {}", a.file.display()))?;
            let (pass, source) = passphrase::unlock(&a.role, &format!("in {}", a.file.display()))?;
            let key = PrivateKey::from_encrypted_pem(&pem, pass.as_bytes()).with_context(|| {
                format!("cannot import {} (passphrase {source})", a.file.display())
            })?;
            let start = pem.find("-----BEGIN").unwrap_or(0);
            let e = ks.save_pem(
                &keystore::public_key(&key),
                &a.role,
                keystore::algorithm_name(key.algorithm()),
                &pem[start..],
                false,
            )?;
            report(ctx, "imported", &e)
        }
        KeyCommand::Export(a) => {
            let e = ks.find(&a.keyid)?;
            let pem = if a.public {
                let key = e.public.as_ref().ok_or_else(|| {
                    anyhow!("{} does not record its public key: run `vouch key passwd {}` once to add it", e.path.display(), e.keyid)
                })?;
                let mut text = String::from_utf8_lossy(&vouch_tuf::json::to_json(&key.to_value()))
                    .into_owned();
                text.push('\n');
                text
            } else {
                ks.pem(&e)?
            };
            match &a.out {
                Some(path) => {
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    f.write_all(pem.as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    let what = if a.public { "public key" } else { "key" };
                    match ctx.output {
                        Format::Json => output::json(&with(
                            entry_json(&e),
                            "file",
                            json!(path.display().to_string()),
                        )),
                        Format::Text => output::text(&format!(
                            "exported the {} {what} {} ({}) to {}",
                            e.role,
                            e.keyid,
                            e.algorithm,
                            path.display()
                        )),
                    }
                }
                None => output::text(&pem),
            }
        }
        KeyCommand::Passwd(a) => {
            let e = ks.find(&a.keyid)?;
            let (old, source) = passphrase::unlock(&e.role, e.keyid.as_str())?;
            let key = ks
                .unlock(&e, &old)
                .with_context(|| format!("cannot unlock key {} (passphrase {source})", e.keyid))?;
            let new = passphrase::changed(&e.role)?;
            let pem = key
                .to_encrypted_pem(new.as_bytes(), passphrase::kdf()?)
                .context("cannot encrypt the key")?;
            let e = ks.save_pem_for(
                &keystore::public_key(&key),
                &e.role,
                &e.algorithm,
                e.repository.as_deref(),
                &pem,
                true,
            )?;
            report(ctx, "re-encrypted", &e)
        }
    }
}

/// `GUN (ROLE)` for each use, joined.
fn describe_uses(uses: &[Use]) -> String {
    uses.iter()
        .map(|u| format!("{} ({})", u.gun, u.role))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The REPOSITORY column of `key list`: the repositories and roles that use the key, else
/// the repository it was made for, else `-`.
fn repositories(uses: &Uses, e: &keystore::Entry) -> String {
    let current = uses.of(&e.keyid);
    if !current.is_empty() {
        describe_uses(current)
    } else {
        e.repository.clone().unwrap_or_else(|| "-".to_owned())
    }
}

/// The JSON object every key command prints for a key: `{"keyid","role","algorithm","path"}`.
fn entry_json(e: &keystore::Entry) -> serde_json::Value {
    json!({
        "keyid": e.keyid.as_str(),
        "role": e.role,
        "algorithm": e.algorithm,
        "path": e.path.display().to_string(),
    })
}

/// `object` with `key` set to `value`.
fn with(mut object: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    object[key] = value;
    object
}

fn report(ctx: &Context, what: &str, e: &keystore::Entry) -> anyhow::Result<()> {
    match ctx.output {
        Format::Json => output::json(&entry_json(e)),
        Format::Text => output::text(&format!(
            "{what} {} key {} ({}) in {}",
            e.role,
            e.keyid,
            e.algorithm,
            e.path.display()
        )),
    }
}
