//! `vouch trust show|pin|reset GUN`: where this machine's trust in a repository starts.
//!
//! `show` reads only the trust directory (no server): the pinned root, its digest, how it
//! was chosen, the root trusted now, and the pin-file rule that covers the GUN. `pin`
//! replaces the pin with a root file, or with the repository's first root checked against
//! root keys; `reset` forgets the repository so that the next command starts its trust
//! again (from `--trust-root`, the pin file, or on first use).

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde_json::json;
use vouch_tuf::metadata::{Metadata, Root};
use vouch_tuf::reference::Digest;
use vouch_tuf::types::{Threshold, TopLevelRole};
use vouch_verifier::cache::MetadataStore;
use vouch_verifier::pins::{read_key_file, read_root_file, Anchor};
use vouch_verifier::transport::Transport;
use vouch_verifier::Limits;

use crate::context::Context;
use crate::output::{self, Format};
use crate::remote::Remote;
use crate::trust;

/// `vouch trust`
#[derive(clap::Subcommand, Debug)]
pub enum TrustCommand {
    /// Show the pinned root of a repository, its digest and where it came from.
    ///
    /// Example: vouch trust show registry.example.com/org/app
    Show(ShowArgs),
    /// Pin a repository to a root file, or to its first root signed by root keys.
    ///
    /// Examples:
    ///   vouch trust pin registry.example.com/org/app app.root.json
    ///   vouch trust pin registry.example.com/org/app --keys org-root-1.pub.json --keys org-root-2.pub.json --threshold 2
    Pin(PinArgs),
    /// Forget a repository's pin and trusted metadata on this machine.
    ///
    /// Example: vouch trust reset registry.example.com/org/app
    Reset(ShowArgs),
}

/// `vouch trust show` and `vouch trust reset`
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The image repository.
    pub gun: String,
}

/// `vouch trust pin`
#[derive(clap::Args, Debug)]
pub struct PinArgs {
    /// The image repository.
    pub gun: String,
    /// Root metadata file to pin (as `vouch root export` prints it).
    #[arg(
        value_name = "ROOT_FILE",
        conflicts_with = "keys",
        required_unless_present = "keys"
    )]
    pub root_file: Option<PathBuf>,
    /// A root key (TUF key object, as `vouch key export KEYID --public` writes it) that may
    /// sign the repository's first root; repeat for each key.
    #[arg(long, value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// How many of the --keys must have signed the first root.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "keys")]
    pub threshold: u32,
}

/// Runs `vouch trust`.
pub fn run(ctx: &Context, cmd: TrustCommand) -> anyhow::Result<()> {
    match cmd {
        TrustCommand::Show(a) => show(ctx, a),
        TrustCommand::Pin(a) => pin(ctx, a),
        TrustCommand::Reset(a) => reset(ctx, a),
    }
}

/// Version, sha256 and root keys of root metadata, as JSON.
fn root_json(bytes: &[u8]) -> serde_json::Value {
    let md = Metadata::<Root>::from_bytes(bytes).ok();
    json!({
        "version": md.as_ref().map(|m| m.version().get()),
        "sha256": Digest::sha256_of(bytes).hex(),
        "expires": md.as_ref().map(|m| m.expires().to_string()),
        "root_keys": trust::root_keys(bytes),
        "root_threshold": md.as_ref().map(|m| m.signed().role_keys(TopLevelRole::Root).threshold.get()),
    })
}

fn show(ctx: &Context, args: ShowArgs) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let rule = trust::load_pins(ctx)?.and_then(|pins| {
        pins.for_gun(&gun)
            .map(|r| (r.origin.clone(), r.anchor.describe()))
    });
    let dir = trust::dir(ctx, &gun);
    let store = if MetadataStore::holds_trust(&dir) {
        Some(MetadataStore::open(&dir)?)
    } else {
        None
    };
    let pin = match &store {
        Some(s) => s.pin()?,
        None => None,
    };
    let current = match &store {
        Some(s) => s.load(&TopLevelRole::Root.name(), Limits::DEFAULT.root_max_bytes)?,
        None => None,
    };
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "pinned": pin.as_ref().map(|p| {
                let mut v = root_json(&p.root);
                v["source"] = json!(p.source);
                v
            }),
            "current": current.as_deref().map(root_json),
            "pin_rule": rule.as_ref().map(|(origin, anchor)| json!({"rule": origin, "anchor": anchor})),
            "directory": dir.display().to_string(),
        })),
        Format::Text => {
            let mut out = String::new();
            match (&pin, &current) {
                (Some(p), _) => {
                    out.push_str(&format!("{gun} is pinned to {}\n", trust::describe_root(&p.root)));
                    out.push_str(&format!("  source        {}\n", p.source));
                    out.push_str(&format!(
                        "  root keys     {}\n",
                        trust::root_keys(&p.root).join(", ")
                    ));
                }
                (None, Some(c)) => out.push_str(&format!(
                    "{gun} trusts {} (no pin recorded yet: it is recorded by the next command that reads the repository)\n",
                    trust::describe_root(c)
                )),
                (None, None) => out.push_str(&format!(
                    "{gun} is not pinned on this machine: the next command that reads it pins {}\n",
                    match &rule {
                        Some((origin, anchor)) => format!("by {origin}: {anchor}"),
                        None if ctx.trust_root.is_some() => "the --trust-root file".to_owned(),
                        None => "the server's first root, trusted on first use".to_owned(),
                    }
                )),
            }
            if let (Some(p), Some(c)) = (&pin, &current) {
                if *c != p.root {
                    out.push_str(&format!("  trusted now   {}\n", trust::describe_root(c)));
                }
            }
            if let (Some((origin, anchor)), true) = (&rule, pin.is_some()) {
                out.push_str(&format!("  pin file      {origin}: {anchor}\n"));
            }
            if pin.is_some() || current.is_some() {
                out.push_str(&format!("  directory     {}\n", dir.display()));
            }
            output::text(&out)
        }
    }
}

fn pin(ctx: &Context, args: PinArgs) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let (root, source) = match &args.root_file {
        Some(path) => {
            let root = read_root_file(path)
                .with_context(|| format!("{} cannot be pinned", path.display()))?;
            (
                root.bytes().to_vec(),
                format!(
                    "`vouch trust pin` of {} on {}",
                    path.display(),
                    crate::repo::now()
                ),
            )
        }
        None => {
            let keys = args
                .keys
                .iter()
                .map(|p| read_key_file(p).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let threshold = Threshold::new(args.threshold)
                .map_err(|_| anyhow::anyhow!("--threshold must be at least 1"))?;
            let anchor = Anchor::keys(keys, threshold).map_err(anyhow::Error::msg)?;
            // The pin is replaced only once the repository's first root passed.
            let remote = Remote::new(ctx, &gun)?;
            let root = match remote.fetch("1.root.json", Limits::DEFAULT.root_max_bytes) {
                Ok(root) => root,
                Err(e) if e.is_not_found() => {
                    bail!("{gun} has no trust data on {}: nothing to pin", ctx.server)
                }
                Err(e) => return Err(crate::repo::transport_error(&ctx.server, &gun, e)),
            };
            anchor.admits(&root, &gun).with_context(|| {
                format!(
                    "the first root of {gun} on {} cannot be pinned to {}",
                    ctx.server,
                    anchor.describe()
                )
            })?;
            let source = format!(
                "`vouch trust pin` of the first root from {}, signed by {}, on {}",
                ctx.server,
                anchor.describe(),
                crate::repo::now()
            );
            (root, source)
        }
    };
    trust::repin(ctx, &gun, &root, &source)?;
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "pinned": root_json(&root),
            "source": source,
        })),
        Format::Text => output::text(&format!(
            "pinned {gun} to {}; the next update walks forward from it",
            trust::describe_root(&root)
        )),
    }
}

fn reset(ctx: &Context, args: ShowArgs) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let dir = trust::dir(ctx, &gun);
    let existed = dir.exists();
    if existed {
        MetadataStore::open(&dir)?
            .remove_all()
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    match ctx.output {
        Format::Json => output::json(&json!({"gun": gun.as_str(), "removed": existed})),
        Format::Text if existed => output::text(&format!(
            "forgot the trust of {gun}: the next command that reads it pins its root again"
        )),
        Format::Text => output::text(&format!("{gun} was not pinned on this machine")),
    }
}
