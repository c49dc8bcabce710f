//! `vouch list GUN`: the signed targets of a repository's top-level targets role and of every
//! delegated role reachable from it.

use serde_json::json;
use vouch_tuf::metadata::TargetFile;

use crate::context::Context;
use crate::output::{self, Format};
use crate::repo::Repo;

/// `vouch list`
///
/// Example: vouch list registry.example.com/org/app --output json
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image repository.
    pub gun: String,
}

fn digest_of(t: &TargetFile) -> String {
    t.digests()
        .first()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".to_owned())
}

/// Runs `vouch list`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let repo = Repo::open(ctx, &gun)?;
    let set = repo.with_delegations()?;
    let mut rows: Vec<(String, String, &TargetFile)> = Vec::new();
    if let Some(t) = set.targets() {
        for (name, file) in &t.signed().targets {
            rows.push((name.to_string(), "targets".to_owned(), file));
        }
    }
    for (role, _, md) in set.delegated_roles() {
        for (name, file) in &md.signed().targets {
            rows.push((name.to_string(), role.to_string(), file));
        }
    }
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "targets": rows.iter().map(|(name, role, t)| json!({
                "name": name,
                "digest": digest_of(t),
                "length": t.length,
                "role": role,
                "custom": t.custom.as_ref().map(super::to_serde),
            })).collect::<Vec<_>>(),
        })),
        Format::Text => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|(name, role, t)| {
                    vec![
                        name.clone(),
                        digest_of(t),
                        t.length.to_string(),
                        role.clone(),
                    ]
                })
                .collect();
            output::text(&output::table(
                &["TARGET", "DIGEST", "LENGTH", "ROLE"],
                &table,
            ))
        }
    }
}
