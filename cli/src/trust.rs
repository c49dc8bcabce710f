//! Where trust in a repository starts on this machine, and checking every source against it.
//!
//! Trust is kept per repository (GUN), not per server: `TRUST_DIR/tuf/<gun>/` holds the
//! last trusted metadata and the record of its pin (the first root trusted and how it was
//! chosen, [`PinRecord`]). The server named by `--server`, another server, a mirror or an
//! offline bundle are all checked against that same pin, so changing `VOUCH_SERVER` or
//! importing a bundle can never start trust over.
//!
//! The first time a repository is used, its trust starts from (first that applies):
//! 1. `--trust-root FILE`: exactly that root;
//! 2. the rule of the pin file (`--trust-pins FILE`, `VOUCH_TRUST_PINS`) for the GUN: a
//!    root file, a threshold of the organisation's root keys (the repository's first root
//!    must be signed by them), or trust on first use stated explicitly;
//! 3. else the source's first root (`1.root.json`), trusted on first use with a warning
//!    showing its fingerprint.
//!
//! Once pinned, a `--trust-root` or pin-file rule that disagrees with the pin is an error
//! naming the pin and how to change it (`vouch trust pin`, `vouch trust reset`), never
//! silently ignored. Trust directories from before this layout kept one cache per (server,
//! GUN); the one for the current server is moved into place the first time it is needed.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use thiserror::Error;
use vouch_tuf::metadata::{Metadata, Root};
use vouch_tuf::reference::{Digest, Gun};
use vouch_tuf::types::{KeyId, TopLevelRole};
use vouch_verifier::cache::{percent_encode, MetadataStore, PinRecord};
use vouch_verifier::pins::{read_root_file, Anchor, PinError, TrustPins};
use vouch_verifier::transport::Transport;
use vouch_verifier::{Error as VerifyError, Limits, Updater};

use crate::context::Context;
use crate::output;

/// A source of trust data that disagrees with this machine's pin for the repository.
#[derive(Debug, Error)]
#[error(
    "{gun} is pinned to {pinned} ({source_note}), but {asked}: {detail}. If the repository's \
     root really changed, confirm the new root with its owner, then run `vouch trust pin {gun} \
     ROOT_FILE` (or `vouch trust reset {gun}` to start over); `vouch trust show {gun}` shows the pin"
)]
pub struct PinMismatch {
    /// The repository.
    pub gun: String,
    /// The pinned root, described.
    pub pinned: String,
    /// How the pin was chosen.
    pub source_note: String,
    /// What asked for something else.
    pub asked: String,
    /// Why they disagree.
    pub detail: String,
}

/// The anchor this run asks for `gun`, and who asked (for messages and the pin record):
/// `--trust-root`, else the pin file's rule, else none.
pub fn requested(ctx: &Context, gun: &Gun) -> anyhow::Result<Option<(Anchor, String)>> {
    if let Some(path) = &ctx.trust_root {
        let root = read_root_file(path)
            .with_context(|| format!("--trust-root {} cannot be pinned", path.display()))?;
        return Ok(Some((
            Anchor::Root(root),
            format!("--trust-root {}", path.display()),
        )));
    }
    let Some(pins) = load_pins(ctx)? else {
        return Ok(None);
    };
    Ok(pins
        .for_gun(gun)
        .map(|rule| (rule.anchor.clone(), rule.origin.clone())))
}

/// The pin file named by `--trust-pins` or `VOUCH_TRUST_PINS`, loaded.
pub fn load_pins(ctx: &Context) -> anyhow::Result<Option<TrustPins>> {
    let Some(path) = &ctx.trust_pins else {
        return Ok(None);
    };
    TrustPins::load(path)
        .map(Some)
        .with_context(|| format!("cannot load the trust pins {}", path.display()))
}

/// The directory of `gun`'s trust in this trust directory (not created).
pub fn dir(ctx: &Context, gun: &Gun) -> PathBuf {
    MetadataStore::dir_for_gun(ctx.cache_dir(), gun.as_str())
}

/// Where an earlier version kept `gun`'s trusted metadata for the current server:
/// `TRUST_DIR/tuf/<server>/<gun>/`.
fn legacy_dir(ctx: &Context, gun: &Gun) -> PathBuf {
    ctx.cache_dir()
        .join(percent_encode(ctx.server.trim_end_matches('/')))
        .join(percent_encode(gun.as_str()))
}

/// The store of `gun`, moving an earlier layout's cache for the current server into place.
pub fn store(ctx: &Context, gun: &Gun) -> anyhow::Result<MetadataStore> {
    let dir = dir(ctx, gun);
    let legacy = legacy_dir(ctx, gun);
    if !dir.join("root.json").exists() && legacy.join("root.json").exists() {
        carry_over(&legacy, &dir, &ctx.server)?;
    }
    MetadataStore::for_gun(ctx.cache_dir(), gun.as_str())
        .context("cannot open the trusted-metadata cache")
}

/// Moves an earlier layout's cache directory to `dir` and records its root as the pin.
fn carry_over(legacy: &Path, dir: &Path, server: &str) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::rename(legacy, dir).with_context(|| {
        format!(
            "cannot move the trust cache {} to {}",
            legacy.display(),
            dir.display()
        )
    })?;
    let store = MetadataStore::open(dir)?;
    if let Some(root) = store.load(&TopLevelRole::Root.name(), Limits::DEFAULT.root_max_bytes)? {
        store.record_pin(
            &root,
            &format!(
                "the root trusted for {server} in an earlier version's cache, carried over on {}",
                crate::repo::now()
            ),
        )?;
    }
    Ok(())
}

/// The pin of `store`: its record, or for a store that has a trusted root but no record
/// (made by `vouch init` or an earlier version), that root, recorded now.
fn pin_of(store: &MetadataStore) -> anyhow::Result<Option<PinRecord>> {
    if let Some(pin) = store.pin()? {
        return Ok(Some(pin));
    }
    let Some(root) = store.load(&TopLevelRole::Root.name(), Limits::DEFAULT.root_max_bytes)? else {
        return Ok(None);
    };
    let source = format!(
        "the root already trusted in this trust directory, recorded on {}",
        crate::repo::now()
    );
    store.record_pin(&root, &source)?;
    Ok(Some(PinRecord { root, source }))
}

/// The pin this machine holds for `gun`, if any (without creating anything).
pub fn existing_pin(ctx: &Context, gun: &Gun) -> anyhow::Result<Option<PinRecord>> {
    if !dir(ctx, gun).exists() && !legacy_dir(ctx, gun).exists() {
        return Ok(None);
    }
    pin_of(&store(ctx, gun)?)
}

/// A root described for people: `root version 3 (sha256 3f2a…)`.
pub fn describe_root(bytes: &[u8]) -> String {
    let version = Metadata::<Root>::from_bytes(bytes)
        .map(|m| m.version().get().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    format!(
        "root version {version} (sha256 {})",
        Digest::sha256_of(bytes).hex()
    )
}

/// The store of `gun` with a pinned root: the existing pin, checked against what this
/// run asks for ([`requested`]), or a new one started from `source` (named `source_name`
/// in messages and the record).
pub fn ensure<T: Transport>(
    ctx: &Context,
    gun: &Gun,
    source: &T,
    source_name: &str,
) -> anyhow::Result<MetadataStore> {
    let store = store(ctx, gun)?;
    let asked = requested(ctx, gun)?;
    if let Some(pin) = pin_of(&store)? {
        if let Some((anchor, origin)) = &asked {
            check_agrees(gun, &store, &pin, anchor, origin)?;
        }
        let root_role = TopLevelRole::Root.name();
        if store
            .load(&root_role, Limits::DEFAULT.root_max_bytes)?
            .is_none()
        {
            // Metadata removed, pin kept: start again from the pinned root.
            Updater::<T>::pin_root(&store, &pin.root)
                .with_context(|| format!("cannot restore the pinned root of {gun}"))?;
        }
        return Ok(store);
    }
    let (anchor, origin, implicit) = match asked {
        Some((anchor, origin)) => (anchor, origin, false),
        None => (Anchor::FirstUse, String::new(), true),
    };
    let root = match Updater::<T>::establish(&store, gun, &anchor, source, None) {
        Ok(root) => root,
        Err(VerifyError::Transport(e)) if e.is_not_found() => {
            return Err(anyhow!(
                "{gun} has no trust data on {source_name}: run `vouch init {gun}` first, and `vouch mirror {gun}` for a registry copy (or check the GUN, --server and --source)"
            ))
        }
        Err(VerifyError::Transport(e)) => {
            return Err(crate::repo::transport_error(source_name, gun, e))
        }
        Err(VerifyError::Pin(e)) => {
            let detail = match e {
                PinError::NotSignedByPinnedKeys { .. } => format!(
                    "{e}: it is not the organisation's repository, or the organisation's keys did not sign it"
                ),
                other => other.to_string(),
            };
            return Err(anyhow::Error::new(PinMismatch {
                gun: gun.to_string(),
                pinned: anchor.describe(),
                source_note: if implicit {
                    "trust on first use".to_owned()
                } else {
                    origin
                },
                asked: format!("the first root of {gun} from {source_name}"),
                detail,
            }));
        }
        Err(e) => return Err(anyhow!(e).context(format!("cannot trust the root of {gun}"))),
    };
    let when = crate::repo::now();
    let note = match (&anchor, implicit) {
        (_, true) => format!("trusted on first use from {source_name} on {when}"),
        (Anchor::Root(_), _) => format!("{origin}, on {when}"),
        (Anchor::Keys { .. }, _) => format!(
            "the first root from {source_name}, signed by {} as {origin} requires, on {when}",
            anchor.describe()
        ),
        (Anchor::FirstUse, _) => {
            format!("trusted on first use from {source_name} as {origin} says, on {when}")
        }
    };
    store.record_pin(&root, &note)?;
    if implicit {
        output::warn(&format!(
            "trusting the root of {gun} on first use: {}, root keys {}; compare it with the \
             repository owner's, or pin it (--trust-root FILE, --trust-pins FILE, `vouch trust pin`)",
            describe_root(&root),
            root_keys(&root).join(",")
        ));
    }
    Ok(store)
}

/// The root key ids of root metadata `bytes`.
pub fn root_keys(bytes: &[u8]) -> Vec<String> {
    Metadata::<Root>::from_bytes(bytes)
        .map(|md| {
            md.signed()
                .role_keys(TopLevelRole::Root)
                .keyids
                .iter()
                .map(KeyId::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Checks that `anchor`, asked for by `origin`, agrees with the pin: a root file must be
/// the pinned root or the root trusted now; keys must have signed the pinned root.
fn check_agrees(
    gun: &Gun,
    store: &MetadataStore,
    pin: &PinRecord,
    anchor: &Anchor,
    origin: &str,
) -> anyhow::Result<()> {
    let detail = match anchor {
        Anchor::FirstUse => return Ok(()),
        Anchor::Root(root) => {
            let current = store.load(&TopLevelRole::Root.name(), Limits::DEFAULT.root_max_bytes)?;
            if root.bytes() == pin.root.as_slice() || current.as_deref() == Some(root.bytes()) {
                return Ok(());
            }
            "that is neither the pinned root nor the root trusted now".to_owned()
        }
        Anchor::Keys { .. } => match anchor.admits(&pin.root, gun) {
            Ok(()) => return Ok(()),
            Err(e) => e.to_string(),
        },
    };
    Err(anyhow::Error::new(PinMismatch {
        gun: gun.to_string(),
        pinned: describe_root(&pin.root),
        source_note: pin.source.clone(),
        asked: format!("{origin} asks for {}", anchor.describe()),
        detail,
    }))
}

/// A hint for a verification failure of `gun`: where its trust is pinned and how to
/// change that, when it is pinned.
pub fn pin_hint(store: &MetadataStore, gun: &Gun) -> Option<String> {
    let pin = store.pin().ok().flatten()?;
    Some(format!(
        "trust in {gun} is pinned to {} ({}); if the repository was re-created, confirm its new \
         root with its owner and run `vouch trust pin {gun} ROOT_FILE` (`vouch trust show {gun}` \
         shows the pin)",
        describe_root(&pin.root),
        pin.source
    ))
}

/// Replaces whatever `gun` trusts with `root`, recorded as chosen by `source`.
pub fn repin(ctx: &Context, gun: &Gun, root: &[u8], source: &str) -> anyhow::Result<()> {
    let old = store(ctx, gun)?;
    old.remove_all()
        .with_context(|| format!("cannot clear the trust of {gun}"))?;
    let store = MetadataStore::for_gun(ctx.cache_dir(), gun.as_str())?;
    Updater::<vouch_verifier::transport::DirectoryTransport>::pin_root(&store, root)
        .with_context(|| format!("cannot pin the root of {gun}"))?;
    store.record_pin(root, source)?;
    Ok(())
}

/// Checks that `proposed`, the first root of `gun` in a proposal (still collecting its
/// signatures), is one the anchor this run asks for ([`requested`]) admits when the
/// repository is first opened ([`Anchor::admits`]): exactly the pinned root's content, or
/// for pinned keys version 1 naming `gun` whose root keys include a threshold of them.
/// Nothing to check when no anchor covers `gun`.
pub fn check_proposed_first_root(
    ctx: &Context,
    gun: &Gun,
    proposed: &Metadata<Root>,
) -> anyhow::Result<()> {
    let Some((anchor, origin)) = requested(ctx, gun)? else {
        return Ok(());
    };
    let refuse = |detail: String| {
        anyhow!(
            "{origin} pins {gun} to {}, but the proposed first root {detail}: refusing to sign it; \
             check the proposal with its author, or the pin",
            anchor.describe()
        )
    };
    let wanted = gun.canonical();
    match proposed.signed().gun() {
        Some(named) if named != wanted.as_str() => {
            return Err(refuse(format!("names the repository {named}")))
        }
        None if matches!(anchor, Anchor::Keys { .. }) => {
            return Err(refuse(format!("does not name the repository {wanted}")))
        }
        _ => {}
    }
    match &anchor {
        Anchor::FirstUse => Ok(()),
        Anchor::Root(pinned) => {
            let md = Metadata::<Root>::from_bytes(pinned.bytes())
                .with_context(|| format!("{origin} is not root metadata"))?;
            if md.canonical_signed() == proposed.canonical_signed() {
                Ok(())
            } else {
                Err(refuse("is not that root".to_owned()))
            }
        }
        Anchor::Keys { keys, threshold } => {
            let version = proposed.version().get();
            if version != 1 {
                return Err(refuse(format!("is version {version}, not 1")));
            }
            let root_keys = &proposed.signed().role_keys(TopLevelRole::Root).keyids;
            let listed = keys.keys().filter(|id| root_keys.contains(id)).count();
            if listed < threshold.get() as usize {
                return Err(refuse(format!(
                    "lists {listed} of the pinned keys as root keys, and {} of them must sign it",
                    threshold.get()
                )));
            }
            Ok(())
        }
    }
}
