//! `vouch proposals`: a repository's staged proposals (threshold signing by several
//! people): list them, show one with what it changes, export one for an approver with no
//! network, and import the signatures such an approver added. `vouch withdraw` withdraws
//! one; `vouch approve` ([`super::approve`]) signs one.
//!
//! Also how every command words a proposal's state ([`report`]): its id, whether it was
//! published, and per role what is still missing and who should run what.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use clap::Subcommand;
use serde_json::json;
use vouch_tuf::api::proposal::{Proposal, ProposalStatus, Signatures};
use vouch_tuf::json::Value;
use vouch_tuf::metadata::Signature;
use vouch_tuf::reference::Gun;
use vouch_tuf::types::{KeyId, RoleName, TopLevelRole};

use crate::approval::{self, Baseline, Parsed};
use crate::context::Context;
use crate::output::{self, Format};
use crate::remote::Remote;
use crate::repo::EditingRepo;

/// `vouch proposals GUN [--all]`, or one of its subcommands.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// The image repository whose proposals to list.
    pub gun: Option<String>,
    /// List published and withdrawn proposals too.
    #[arg(long)]
    pub all: bool,
    #[command(subcommand)]
    pub command: Option<ProposalsCommand>,
}

/// `vouch proposals …`
#[derive(Subcommand, Debug)]
pub enum ProposalsCommand {
    /// Show one proposal: its state, and what each role changes against the trusted
    /// current version (nothing is signed).
    ///
    /// Example: vouch proposals show registry.example.com/org/app 7
    Show(ShowArgs),
    /// Write one proposal, with the trusted current metadata it replaces, to a file for an
    /// approver with no network (`vouch approve --file`).
    ///
    /// Example: vouch proposals export registry.example.com/org/app 7 -o p7.json
    Export(ExportArgs),
    /// Upload the signatures an offline approver added to an exported proposal.
    ///
    /// Example: vouch proposals import registry.example.com/org/app p7.signed.json
    Import(ImportArgs),
}

/// `vouch proposals show`
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The image repository.
    pub gun: String,
    /// The proposal's id.
    pub id: u64,
}

/// `vouch proposals export`
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The image repository.
    pub gun: String,
    /// The proposal's id.
    pub id: u64,
    /// The file to write.
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `vouch proposals import`
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The image repository.
    pub gun: String,
    /// The file `vouch approve --file` wrote.
    pub file: PathBuf,
}

/// `vouch withdraw`
///
/// Example: vouch withdraw registry.example.com/org/app 7
#[derive(clap::Args, Debug)]
pub struct WithdrawArgs {
    /// The image repository.
    pub gun: String,
    /// The proposal's id.
    pub id: u64,
}

/// Runs `vouch proposals …`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    match (args.command, args.gun) {
        (Some(ProposalsCommand::Show(a)), _) => show(ctx, a),
        (Some(ProposalsCommand::Export(a)), _) => export(ctx, a),
        (Some(ProposalsCommand::Import(a)), _) => import(ctx, a),
        (None, Some(gun)) => list(ctx, &super::parse_gun(&gun)?, args.all),
        (None, None) => bail!(
            "name the repository: vouch proposals GUN [--all] (or show, export, import: see vouch proposals --help)"
        ),
    }
}

/// Runs `vouch withdraw`.
pub fn withdraw(ctx: &Context, args: WithdrawArgs) -> anyhow::Result<()> {
    let gun = super::parse_gun(&args.gun)?;
    let remote = Remote::new(ctx, &gun)?;
    let p = remote.withdraw_proposal(args.id)?;
    report(ctx, &gun, &p, "withdrew")
}

fn list(ctx: &Context, gun: &Gun, all: bool) -> anyhow::Result<()> {
    let remote = Remote::new(ctx, gun)?;
    let proposals = remote.proposals(all)?;
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "proposals": proposals.iter().map(|p| to_json(gun, p)).collect::<Vec<_>>(),
        })),
        Format::Text if proposals.is_empty() => output::text(&format!(
            "no {}proposals for {gun}",
            if all { "" } else { "open " }
        )),
        Format::Text => {
            let rows: Vec<Vec<String>> = proposals
                .iter()
                .map(|p| {
                    vec![
                        format!("#{}", p.id),
                        p.status.to_string(),
                        p.roles
                            .iter()
                            .map(|r| format!("{}@{}", r.role, r.version))
                            .collect::<Vec<_>>()
                            .join(" "),
                        p.roles
                            .iter()
                            .map(|r| {
                                let q: Vec<String> = r
                                    .quorum
                                    .iter()
                                    .map(|q| format!("{}/{}", q.signed.len(), q.threshold))
                                    .collect();
                                format!("{} {}", r.role, q.join(","))
                            })
                            .collect::<Vec<_>>()
                            .join(" "),
                        p.proposed_by.clone(),
                        p.expires_at.to_string(),
                    ]
                })
                .collect();
            // Every cell may hold text the server chose.
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| r.iter().map(|c| output::terminal_safe(c)).collect())
                .collect();
            output::text(&output::table(
                &[
                    "ID",
                    "STATUS",
                    "ROLES",
                    "SIGNATURES",
                    "PROPOSED BY",
                    "EXPIRES",
                ],
                &rows,
            ))
        }
    }
}

fn show(ctx: &Context, a: ShowArgs) -> anyhow::Result<()> {
    let gun = super::parse_gun(&a.gun)?;
    let (repo, remote) = super::approve::open_or_new(ctx, &gun)?;
    let p = remote.proposal(a.id)?;
    let (base, note) = super::approve::baseline_or_new(repo.as_ref(), &gun, &p)?;
    let described = approval::describe(&p, &base)?;
    let verdict = approval::check(&p, &gun, &base).err();
    match ctx.output {
        Format::Json => {
            let mut v = to_json(&gun, &p);
            v["changes"] = json!(described
                .iter()
                .map(|c| json!({"role": c.role, "current_version": c.current, "diff": c.diff}))
                .collect::<Vec<_>>());
            v["approvable"] = json!(verdict.is_none() && p.status == ProposalStatus::Pending);
            v["note"] = json!(note);
            if let Some(e) = &verdict {
                v["problem"] = json!(crate::failure::one_line(e));
            }
            output::json(&v)
        }
        Format::Text => {
            let mut out = format!(
                "proposal #{} for {gun}: {} (proposed by {} on {}, expires {})\n",
                p.id, p.status, p.proposed_by, p.created_at, p.expires_at
            );
            if let Some(r) = &p.reason {
                out.push_str(&format!("reason: {r}\n"));
            }
            out.push_str(&changes_text(&described));
            if let Some(n) = &note {
                out.push_str(&format!("note: {n}\n"));
            }
            out.push_str(&state_text(&gun, &p));
            out.push('\n');
            if let Some(e) = &verdict {
                out.push_str(&format!(
                    "it cannot be approved here as it is: {}\n",
                    crate::failure::one_line(e)
                ));
            }
            output::text(&output::terminal_safe(&out))
        }
    }
}

fn export(ctx: &Context, a: ExportArgs) -> anyhow::Result<()> {
    let gun = super::parse_gun(&a.gun)?;
    let (repo, remote) = super::approve::open_or_new(ctx, &gun)?;
    let mut p = remote.proposal(a.id)?;
    if p.gun != gun.as_str() {
        bail!(
            "the server answered with a proposal for {}, not {gun}: nothing was written",
            p.gun
        );
    }
    if let Some(why) = not_pending(gun.as_str(), &p) {
        bail!("{why}: there is nothing to approve, nothing was written");
    }
    let (base, _) = super::approve::baseline_or_new(repo.as_ref(), &gun, &p)?;
    for r in &mut p.roles {
        r.current = base.envelope(&r.role);
    }
    let bytes = p.encode();
    refuse_unreadable(&gun, p.id, bytes.len())?;
    write_file(&a.out, &bytes)?;
    match ctx.output {
        Format::Json => output::json(&json!({
            "gun": gun.as_str(),
            "id": p.id,
            "file": a.out.display().to_string(),
        })),
        Format::Text => output::text(&format!(
            "exported proposal #{} of {gun} to {}: the approver runs `vouch approve --file {} -o {}.signed`, then `vouch proposals import {gun} {}.signed` sends the signatures",
            p.id,
            a.out.display(),
            a.out.display(),
            a.out.display(),
            a.out.display()
        )),
    }
}

fn import(ctx: &Context, a: ImportArgs) -> anyhow::Result<()> {
    let gun = super::parse_gun(&a.gun)?;
    let signed = read_proposal(&a.file)?;
    if signed.gun != gun.as_str() {
        bail!(
            "{} holds a proposal for {}, not {gun}: nothing was sent",
            a.file.display(),
            signed.gun
        );
    }
    let remote = Remote::new(ctx, &gun)?;
    let server = remote.proposal(signed.id)?;
    let sigs = new_signatures(&signed, &server).with_context(|| {
        format!(
            "{} does not match proposal #{} of {gun} on {}: nothing was sent",
            a.file.display(),
            signed.id,
            remote.server()
        )
    })?;
    if sigs.roles.is_empty() {
        bail!(
            "every signature in {} is already on proposal #{} of {gun}: nothing to import",
            a.file.display(),
            signed.id
        );
    }
    let p = remote.sign_proposal(signed.id, &sigs)?;
    report(ctx, &gun, &p, "imported signatures into")
}

/// The signatures in `signed` that `server` lacks, by role, after checking that both
/// propose exactly the same roles with the same `signed` content.
pub fn new_signatures(signed: &Proposal, server: &Proposal) -> anyhow::Result<Signatures> {
    if signed.id != server.id {
        bail!("the file is proposal #{}, not #{}", signed.id, server.id);
    }
    fn names(p: &Proposal) -> Vec<&str> {
        let mut v: Vec<&str> = p.roles.iter().map(|r| r.role.as_str()).collect();
        v.sort_unstable();
        v
    }
    if names(signed) != names(server) {
        bail!(
            "the file changes {}, the server's proposal {}",
            names(signed).join(", "),
            names(server).join(", ")
        );
    }
    let mut out = Signatures::default();
    for r in &signed.roles {
        let theirs = server
            .role(&r.role)
            .ok_or_else(|| anyhow!("the server's proposal does not change {}", r.role))?;
        fn envelope<'v>(
            v: Option<&'v Value>,
            whose: &str,
            role: &str,
        ) -> anyhow::Result<&'v Value> {
            v.ok_or_else(|| anyhow!("{whose} carries no metadata for {role}"))
        }
        let mine = Parsed::parse(&r.role, envelope(r.metadata.as_ref(), "the file", &r.role)?)?;
        let server_md = Parsed::parse(
            &r.role,
            envelope(theirs.metadata.as_ref(), "the server's proposal", &r.role)?,
        )?;
        if mine.canonical() != server_md.canonical() {
            bail!(
                "the proposed {} in the file is not the one the server holds",
                r.role
            );
        }
        let present = server_md.signed_by();
        let added: Vec<Signature> =
            signatures_of(&r.role, envelope(r.metadata.as_ref(), "the file", &r.role)?)?
                .into_iter()
                .filter(|s| !present.contains(&s.keyid))
                .collect();
        if !added.is_empty() {
            out.roles.insert(r.role.clone(), added);
        }
    }
    Ok(out)
}

/// The signatures of an envelope.
fn signatures_of(role: &str, v: &Value) -> anyhow::Result<Vec<Signature>> {
    Ok(match Parsed::parse(role, v)? {
        Parsed::Root(m) => m.signatures().to_vec(),
        Parsed::Targets(m) => m.signatures().to_vec(),
        Parsed::Snapshot(m) => m.signatures().to_vec(),
    })
}

/// Refuses to export proposal `id` of `gun` as a file of `len` bytes when that is more than
/// [`read_proposal`] (so `vouch approve --file`) reads.
fn refuse_unreadable(gun: &Gun, id: u64, len: usize) -> anyhow::Result<()> {
    let max = vouch_verifier::server::MAX_PROPOSAL_BODY;
    if len as u64 > max {
        bail!(
            "proposal #{id} of {gun} with the current metadata it replaces is {len} bytes, and `vouch approve --file` \
             reads at most {max}: nothing was written; approve it online (`vouch approve {gun} {id}`)"
        );
    }
    Ok(())
}

/// Reads a proposal file (`vouch proposals export`, `vouch approve --file`), bounded.
pub fn read_proposal(path: &Path) -> anyhow::Result<Proposal> {
    let max = vouch_verifier::server::MAX_PROPOSAL_BODY;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, max + 1), &mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!(
            "{} is larger than {max} bytes: not a proposal file",
            path.display()
        );
    }
    Proposal::decode(&bytes).with_context(|| {
        format!(
            "{} is not a proposal file (written by `vouch proposals export` or `vouch approve --file`)",
            path.display()
        )
    })
}

/// Writes `bytes` to `path` (replacing it).
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The trusted current metadata of `repo` that `p` is checked against: root, snapshot,
/// targets, and the delegated roles it changes (with their delegating roles).
pub fn baseline_of(repo: &EditingRepo, p: &Proposal) -> anyhow::Result<Baseline> {
    let delegated: Vec<RoleName> = p
        .roles
        .iter()
        .filter(|r| TopLevelRole::from_name(&r.role).is_none())
        .map(|r| {
            RoleName::new(r.role.clone())
                .map_err(|e| anyhow!("the proposal names an invalid role {:?}: {e}", r.role))
        })
        .collect::<anyhow::Result<_>>()?;
    let set = if delegated.is_empty() {
        repo.trusted()?.clone()
    } else {
        repo.with_roles(&delegated)?
    };
    let mut base = Baseline {
        root: Some(set.root().metadata().clone()),
        snapshot: set.snapshot().map(|s| s.metadata().clone()),
        ..Baseline::default()
    };
    if let Some(t) = set.targets() {
        base.targets.insert("targets".into(), t.metadata().clone());
    }
    for (name, _, md) in set.delegated_roles() {
        base.targets
            .insert(name.as_str().to_owned(), md.metadata().clone());
    }
    Ok(base)
}

/// What each checked role changes, indented under its name.
pub fn changes_text(checked: &[approval::Checked]) -> String {
    let mut out = String::new();
    for c in checked {
        let from = c
            .current
            .map_or("a new role".to_owned(), |v| format!("trusted version {v}"));
        out.push_str(&format!(
            "{} version {} (against {from}):\n",
            c.role,
            c.parsed.version()
        ));
        for line in &c.diff {
            out.push_str(&format!("  {line}\n"));
        }
    }
    // Strings inside metadata (key types, paths, unknown fields) are the proposer's.
    output::terminal_safe(&out)
}

/// `root needs 1 more signature (root version 3: 1 of 2; root version 4: 1 of 2)` for each
/// role still short, joined with `; `; empty when none is.
pub fn missing_text(p: &Proposal) -> String {
    p.roles
        .iter()
        .filter(|r| !r.is_complete())
        .map(|r| {
            let n = r
                .quorum
                .iter()
                .map(|q| q.missing())
                .max()
                .unwrap_or_default();
            let each: Vec<String> = r
                .quorum
                .iter()
                .map(|q| format!("{}: {} of {}", q.by, q.signed.len(), q.threshold))
                .collect();
            format!(
                "{} needs {n} more signature{} ({})",
                r.role,
                if n == 1 { "" } else { "s" },
                each.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line on where `p` stands: `#7 for GUN: ` and its state (published, what is still
/// missing and who runs what, or closed and why); what was just done goes before it.
pub fn state_text(gun: &Gun, p: &Proposal) -> String {
    let state = match p.status {
        ProposalStatus::Published => format!(
            "published (every threshold is met{})",
            p.change_id
                .map(|c| format!("; changefeed entry {c}"))
                .unwrap_or_default()
        ),
        ProposalStatus::Pending => {
            let missing = missing_text(p);
            format!(
                "{} — the other key holders run: vouch approve {gun} {}",
                if missing.is_empty() {
                    "every threshold is met".to_owned()
                } else {
                    missing
                },
                p.id
            )
        }
        other => format!(
            "{other}{}",
            p.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    };
    // A reason or a role name may come from the server.
    output::terminal_safe(&format!("#{} for {gun}: {state}", p.id))
}

/// `p` as JSON for `--output json`: the document without metadata, with what each role
/// still needs and the command the other key holders run.
pub fn to_json(gun: &Gun, p: &Proposal) -> serde_json::Value {
    let mut slim = p.clone();
    for r in &mut slim.roles {
        r.metadata = None;
        r.current = None;
    }
    let mut v = super::to_serde(&slim.to_value());
    v["published"] = json!(p.status == ProposalStatus::Published);
    v["missing"] = json!(p.missing());
    if let Some(roles) = v["roles"].as_array_mut() {
        for (j, r) in roles.iter_mut().zip(&p.roles) {
            j["missing"] = json!(r.quorum.iter().map(|q| q.missing()).max().unwrap_or(0));
        }
    }
    if p.status == ProposalStatus::Pending {
        v["approve"] = json!(format!("vouch approve {gun} {}", p.id));
    }
    v
}

/// Prints where `p` stands after `done` (`proposed`, `approved`, `withdrew`…).
pub fn report(ctx: &Context, gun: &Gun, p: &Proposal, done: &str) -> anyhow::Result<()> {
    match ctx.output {
        Format::Json => {
            let mut v = to_json(gun, p);
            v["done"] = json!(done);
            output::json(&v)
        }
        Format::Text => output::text(&format!("{done} {}", state_text(gun, p))),
    }
}

/// The line for a proposal just made by `--propose`: pending with what is missing, or
/// published at once.
pub fn proposed_text(gun: &Gun, p: &Proposal) -> String {
    match p.status {
        ProposalStatus::Published => format!(
            "proposed #{} for {gun}, and published it at once: its signatures already met every threshold",
            p.id
        ),
        _ => format!("proposed {}", state_text(gun, p)),
    }
}

/// Prints a proposal just made by `--propose` (text), or returns its JSON.
pub fn proposed(ctx: &Context, gun: &Gun, p: &Proposal) -> anyhow::Result<()> {
    match ctx.output {
        Format::Json => {
            let mut v = to_json(gun, p);
            v["done"] = json!("proposed");
            output::json(&v)
        }
        Format::Text => output::text(&proposed_text(gun, p)),
    }
}

/// `proposal #ID of GUN is STATUS (why)` for a proposal that is not pending; `None` for one
/// that is.
pub fn not_pending(gun: &str, p: &Proposal) -> Option<String> {
    (p.status != ProposalStatus::Pending).then(|| {
        format!(
            "proposal #{} of {gun} is {}{}",
            p.id,
            p.status,
            p.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )
    })
}

/// The key ids of `ids`, joined for messages.
pub fn ids_text(ids: &[KeyId]) -> String {
    ids.iter().map(KeyId::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vouch_tuf::api::proposal::{ProposedRole, Quorum};
    use vouch_tuf::time::Timestamp;

    #[test]
    fn an_export_approve_could_not_read_is_refused() {
        let gun = Gun::new("example.com/org/app").unwrap();
        let max = vouch_verifier::server::MAX_PROPOSAL_BODY as usize;
        refuse_unreadable(&gun, 7, max).unwrap();
        let e = refuse_unreadable(&gun, 7, max + 1).unwrap_err().to_string();
        assert!(e.contains("`vouch approve --file` reads at most"), "{e}");
        assert!(e.contains("nothing was written"), "{e}");
    }

    fn pending(quorum: Vec<Quorum>) -> Proposal {
        Proposal {
            id: 7,
            gun: "example.com/app".into(),
            status: ProposalStatus::Pending,
            reason: None,
            proposed_by: "token:alice".into(),
            created_at: Timestamp::from_unix(1_700_000_000),
            expires_at: Timestamp::from_unix(1_700_604_800),
            closed_at: None,
            closed_by: None,
            change_id: None,
            roles: vec![ProposedRole {
                role: "root".into(),
                version: 4,
                base_version: Some(3),
                metadata: None,
                current: None,
                quorum,
            }],
            approvals: Vec::new(),
        }
    }

    fn q(by: &str, threshold: u32, signed: usize) -> Quorum {
        Quorum {
            by: by.into(),
            threshold,
            keyids: vec!["a".into(), "b".into(), "c".into()],
            signed: vec!["a".into(); signed],
        }
    }

    /// A proposal of targets version 2 signed by `signers`, as the server or a file holds it.
    fn with_targets(signers: &[&vouch_tuf::crypto::PrivateKey], target: &str) -> Proposal {
        use vouch_tuf::metadata::{Metadata, Role, TargetFile, Targets};
        let mut t = Targets::new(Timestamp::from_unix(2_000_000_000));
        t.bump_version();
        let d =
            vouch_tuf::reference::Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        t.add_target(
            vouch_tuf::types::TargetName::new(target.to_owned()).unwrap(),
            TargetFile::image(&d, 3, None),
        );
        let list: Vec<&dyn vouch_tuf::crypto::Signer> = signers
            .iter()
            .map(|k| *k as &dyn vouch_tuf::crypto::Signer)
            .collect();
        let md = Metadata::signed_by(t, &list).unwrap();
        let mut p = pending(Vec::new());
        p.roles[0] = ProposedRole {
            role: "targets".into(),
            version: 2,
            base_version: Some(1),
            metadata: Some(md.to_value()),
            current: None,
            quorum: Vec::new(),
        };
        p
    }

    #[test]
    fn import_sends_only_new_signatures_over_the_same_content() {
        use vouch_tuf::crypto::{Algorithm, PrivateKey};
        let (a, b) = (
            PrivateKey::generate(Algorithm::Ed25519).unwrap(),
            PrivateKey::generate(Algorithm::Ed25519).unwrap(),
        );
        let server = with_targets(&[&a], "v1");
        let file = with_targets(&[&a, &b], "v1");
        let sigs = new_signatures(&file, &server).unwrap();
        let added = &sigs.roles["targets"];
        assert_eq!(added.len(), 1);
        let b_id = vouch_tuf::metadata::Key::from_verifying_key(
            &vouch_tuf::crypto::Signer::verifying_key(&b),
        )
        .key_id();
        assert_eq!(added[0].keyid, b_id);
        // Nothing new: an empty set.
        assert!(new_signatures(&server, &server).unwrap().roles.is_empty());
        // Other content, another id, other roles: refused.
        let other = with_targets(&[&a, &b], "v2");
        let e = new_signatures(&other, &server).unwrap_err().to_string();
        assert!(e.contains("is not the one the server holds"), "{e}");
        let mut renumbered = file.clone();
        renumbered.id = 8;
        assert!(new_signatures(&renumbered, &server).is_err());
        let mut renamed = file;
        renamed.roles[0].role = "targets/prod".into();
        let e = new_signatures(&renamed, &server).unwrap_err().to_string();
        assert!(e.contains("the file changes targets/prod"), "{e}");
    }

    #[test]
    fn a_pending_proposal_says_what_is_missing_and_who_runs_what() {
        let gun = Gun::new("example.com/app").unwrap();
        let p = pending(vec![q("root version 3", 2, 1), q("root version 4", 2, 1)]);
        assert_eq!(
            proposed_text(&gun, &p),
            "proposed #7 for example.com/app: root needs 1 more signature (root version 3: 1 of 2; root version 4: 1 of 2) — the other key holders run: vouch approve example.com/app 7"
        );
        let mut done = pending(vec![q("root version 3", 2, 2), q("root version 4", 2, 2)]);
        done.status = ProposalStatus::Published;
        assert!(proposed_text(&gun, &done).contains("published it at once"));
        let j = to_json(&gun, &p);
        assert_eq!(j["missing"], 2);
        assert_eq!(j["roles"][0]["missing"], 1);
        assert_eq!(j["approve"], "vouch approve example.com/app 7");
    }
}
