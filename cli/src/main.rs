//! `vouch`: sign and verify container images with TUF trust metadata.
//!
//! The command line a release pipeline or an engineer runs against a `vouch-server`: key
//! management, repository initialisation, signing tags and digests, and the questions a
//! deployment asks ("which digest is `app:v1`?", "is this image trusted?").
//!
//! How the parts relate:
//! - [`cmd`] holds one module per subcommand, each with its `Args` (clap derive) and a `run`.
//! - [`context`] validates the global options into a [`context::Context`].
//! - [`keystore`] and [`passphrase`] keep encrypted private keys under the trust directory.
//! - [`remote`] speaks the server's HTTP API (fetching metadata, online keys, publishing).
//! - [`registry`] turns the registry flags and `NOTARY_AUTH` into options of
//!   `vouch_verifier::registry`, the client that asks OCI registries which manifest a tag
//!   names (`sign`, `verify`) and gets the registry-style tokens notary servers ask for.
//! - [`notary`] is what `import notary` and `verify --notary` share: the notary client's
//!   trusted root, the rollback state kept per repository, the transport to a notary server.
//! - [`progress`] draws a progress line on a terminal for commands over many images.
//! - [`repo`] ties the server to `vouch-verifier`'s updater and its trusted-metadata cache,
//!   and publishes changes with retry on conflict.
//! - [`source`] says where read-only commands read trust from (`--source`: the server, the
//!   registry copy beside the images, or both) and follows `trust_from` pins.
//! - [`trust`] keeps where trust in each repository starts (its pin) and checks every
//!   source against it.
//! - [`failure`] maps errors to exit codes.
//! - [`usage`] reads which cached repositories use which keys (`key list`, `key delete`);
//!   [`confirm`] asks before destructive commands.
//! - [`expiry`] words the warnings `sign` and `verify` print for roles that expire soon.
//! - `watch` follows the server's event stream with `vouch-verifier`'s follower;
//!   `webhooks` shows and resumes the server's webhook subscriptions.
//! - [`approval`] checks a staged proposal before `approve` signs it, and [`diff`] words
//!   what a proposed role version changes.
//!
//! What it is not: a TUF implementation. Every check of fetched metadata is
//! `vouch-verifier`'s, and the metadata model is `vouch-tuf`'s.

// Doc comments on the clap types are also the `--help` text, which spells placeholders such
// as `VOUCH_<ROLE>_PASSPHRASE` as a user types them, not as rustdoc markup.
#![allow(rustdoc::invalid_html_tags)]

mod approval;
mod cmd;
mod confirm;
mod context;
mod diff;
mod expiry;
mod failure;
mod keystore;
mod notary;
mod output;
mod passphrase;
mod progress;
mod registry;
mod remote;
mod repo;
mod source;
mod trust;
mod usage;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::context::GlobalArgs;

/// Sign and verify container images with TUF trust metadata served by vouch-server.
#[derive(Parser, Debug)]
#[command(
    name = "vouch",
    version,
    after_help = "Exit status: 0 success, 1 error, 2 usage error, 3 not trusted (verify).\n\
                  Example: vouch --server https://vouch.example verify registry.example/org/app:v1"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate, list, import, export and delete private keys and change their passphrases.
    #[command(subcommand)]
    Key(cmd::key::KeyCommand),
    /// Create the trust data of an image repository (GUN) on the server.
    #[command(after_help = "Example: vouch init registry.example.com/org/app")]
    Init(cmd::init::Args),
    /// Sign tags (or bare digests) of image repositories, resolved from their registry.
    #[command(after_help = "Examples:\n  \
                      vouch sign registry.example.com/org/app:v1\n  \
                      vouch sign registry.example.com/org/app:v1 registry.example.com/org/app:v1.0\n  \
                      vouch sign registry.example.com/org/app:v1 --digest sha256:… --length 1234")]
    Sign(cmd::sign::Args),
    /// Remove a signed tag (or digest) from an image repository.
    #[command(after_help = "Example: vouch unsign registry.example.com/org/app:v1")]
    Unsign(cmd::unsign::Args),
    /// List the signed targets of an image repository.
    #[command(after_help = "Example: vouch list registry.example.com/org/app --output json")]
    List(cmd::list::Args),
    /// Show the signed digest of one tag.
    #[command(after_help = "Example: vouch lookup registry.example.com/org/app:v1")]
    Lookup(cmd::lookup::Args),
    /// Show who signed each tag (role path and keys) and every role's keys, thresholds and
    /// expiry.
    #[command(after_help = "Examples:\n  \
                      vouch inspect registry.example.com/org/app\n  \
                      vouch inspect registry.example.com/org/app:v1 --output json")]
    Inspect(cmd::inspect::Args),
    /// Check that an image is trusted and print it pinned to its digest.
    #[command(after_help = "Examples:\n  \
                      vouch verify registry.example.com/org/app:v1\n  \
                      vouch verify registry.example.com/org/app:v1 --no-registry --bundle app.bundle.json\n  \
                      vouch verify docker.io/org/app:v1 --notary https://notary.docker.io")]
    Verify(cmd::verify::Args),
    /// Push a repository's verified trust to its registry (or --to another), beside the
    /// images, for consumers that verify from the registry alone.
    #[command(after_help = "Examples:\n  \
                      vouch mirror registry.example.com/org/app\n  \
                      vouch mirror registry.example.com/org/app --to mirror.example.com/org/app")]
    Mirror(cmd::mirror::Args),
    /// Verify an image, copy it (every platform) to another repository or registry, and push
    /// its trust beside it.
    #[command(
        after_help = "Example: vouch promote build.example.com/team/app:v1 prod.example.com/app"
    )]
    Promote(cmd::promote::Args),
    /// Show versions, keys and expiry dates of a repository's roles.
    #[command(after_help = "Example: vouch status registry.example.com/org/app")]
    Status(cmd::status::Args),
    /// Write an offline trust bundle of a repository.
    #[command(
        after_help = "Example: vouch export registry.example.com/org/app -o app.bundle.json"
    )]
    Export(cmd::bundle::ExportArgs),
    /// Check an offline trust bundle and keep its metadata as trusted; or, with `notary`,
    /// move Notary v1 collections to vouch.
    #[command(after_help = "Examples:\n  \
                      vouch import app.bundle.json\n  \
                      vouch import notary docker.io/org/app --notary-server https://notary.example.com")]
    Import(cmd::bundle::ImportArgs),
    /// Re-sign roles that expire soon (or the roles named) with a new expiry.
    #[command(after_help = "Example: vouch renew registry.example.com/org/app")]
    Renew(cmd::renew::Args),
    /// Replace the key of root, targets, snapshot or timestamp.
    #[command(after_help = "Example: vouch rotate registry.example.com/org/app targets")]
    Rotate(cmd::rotate::Args),
    /// Add, change, remove and list delegated roles.
    #[command(subcommand)]
    Delegation(cmd::delegation::DelegationCommand),
    /// Show, change or forget where this machine's trust in a repository starts (its pin).
    #[command(subcommand)]
    Trust(cmd::trust::TrustCommand),
    /// Export a repository's root metadata for consumers to pin.
    #[command(subcommand)]
    Root(cmd::root::RootCommand),
    /// Delete a repository's trust data on the server (and the metadata cached here).
    #[command(after_help = "Example: vouch delete registry.example.com/org/app --yes")]
    Delete(cmd::delete::Args),
    /// List a repository's staged proposals (threshold signing by several people); show,
    /// export or import one.
    #[command(after_help = "Examples:\n  \
                      vouch proposals registry.example.com/org/app --all\n  \
                      vouch proposals show registry.example.com/org/app 7\n  \
                      vouch proposals export registry.example.com/org/app 7 -o p7.json\n  \
                      vouch proposals import registry.example.com/org/app p7.signed.json")]
    Proposals(cmd::proposals::Args),
    /// Check a staged proposal, show what it changes, and add this trust directory's
    /// signatures to it (online, or offline with --file).
    #[command(after_help = "Examples:\n  \
                      vouch approve registry.example.com/org/app 7\n  \
                      vouch approve --file p7.json -o p7.signed.json")]
    Approve(cmd::approve::Args),
    /// Withdraw an open staged proposal.
    #[command(after_help = "Example: vouch withdraw registry.example.com/org/app 7")]
    Withdraw(cmd::proposals::WithdrawArgs),
    /// Print trust-change events as they arrive (one repository's, or every repository's),
    /// optionally running a command per event.
    #[command(after_help = "Examples:\n  \
                      vouch watch registry.example.com/org/app\n  \
                      vouch watch --output json --after 0 --count 10\n  \
                      vouch watch registry.example.com/org/app --cursor-file app.cursor --exec ./deploy.sh\n\
                      A failing --exec ends the watch (status 1) before the cursor moves: restart it \
                      (e.g. from a supervisor) and the event is retried.")]
    Watch(cmd::watch::Args),
    /// Show the server's webhook subscriptions and their delivery state, print the key
    /// deliveries are signed with, or resume a subscription that gave up (operators).
    #[command(after_help = "Examples:\n  \
                      vouch webhooks\n  \
                      vouch webhooks key\n  \
                      vouch webhooks resume deploy-bot")]
    Webhooks(cmd::webhooks::Args),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = context::Context::from_args(cli.global)?;
    match cli.command {
        Command::Key(c) => cmd::key::run(&ctx, c),
        Command::Init(a) => cmd::init::run(&ctx, a),
        Command::Sign(a) => cmd::sign::run(&ctx, a),
        Command::Unsign(a) => cmd::unsign::run(&ctx, a),
        Command::List(a) => cmd::list::run(&ctx, a),
        Command::Lookup(a) => cmd::lookup::run(&ctx, a),
        Command::Verify(a) => cmd::verify::run(&ctx, a),
        Command::Inspect(a) => cmd::inspect::run(&ctx, a),
        Command::Mirror(a) => cmd::mirror::run(&ctx, a),
        Command::Promote(a) => cmd::promote::run(&ctx, a),
        Command::Status(a) => cmd::status::run(&ctx, a),
        Command::Delegation(c) => cmd::delegation::run(&ctx, c),
        Command::Renew(a) => cmd::renew::run(&ctx, a),
        Command::Rotate(a) => cmd::rotate::run(&ctx, a),
        Command::Export(a) => cmd::bundle::export(&ctx, a),
        Command::Import(a) => cmd::bundle::import(&ctx, a),
        Command::Trust(c) => cmd::trust::run(&ctx, c),
        Command::Root(c) => cmd::root::run(&ctx, c),
        Command::Delete(a) => cmd::delete::run(&ctx, a),
        Command::Proposals(a) => cmd::proposals::run(&ctx, a),
        Command::Approve(a) => cmd::approve::run(&ctx, a),
        Command::Withdraw(a) => cmd::proposals::withdraw(&ctx, a),
        Command::Watch(a) => cmd::watch::run(&ctx, a),
        Command::Webhooks(a) => cmd::webhooks::run(&ctx, a),
    }
}

/// vouch's binaries use mimalloc: parsing and checking metadata makes many small
/// allocations, and the system allocator's costs (and returning large buffers to the
/// kernel after every document) were a third of a cold TUF update.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // Printing help to a closed pipe is not worth a second error.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if failure::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vouch: {}", failure::one_line(&e));
            ExitCode::from(failure::exit_code(&e))
        }
    }
}
