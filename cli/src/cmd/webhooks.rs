//! `vouch webhooks`: the server's webhook subscriptions, for operators. `list` (the
//! default) shows each subscription's delivery state and the public key deliveries are
//! signed with; `key` prints that key alone, for receivers to pin; `resume NAME` lets a
//! subscription that gave up (`dead`) deliver again, from the event that failed.
//!
//! Subscriptions are configured on the server (`[[webhooks.subscriptions]]`), not here.
//! Listing needs a token with a `*` scope and `pull`, resuming one with a `*` scope and
//! `push`; the key needs no token.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::json;
use vouch_verifier::server::{ServerError, WebhookSubscription};

use crate::context::Context;
use crate::output::{self, terminal_safe, Format};
use crate::remote::{self, EVERY_REPOSITORY};

/// `vouch webhooks [list|key|resume NAME]`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<WebhooksCommand>,
}

/// `vouch webhooks …`
#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// List the subscriptions with their delivery state, and the public key (the default).
    ///
    /// Example: vouch webhooks list --output json
    List,
    /// Print the public key deliveries are signed with (`whpk_…`), for receivers to pin.
    ///
    /// Example: vouch webhooks key > vouch-webhooks.pub
    Key,
    /// Let a subscription that gave up (status dead) deliver again, from the event that
    /// failed.
    ///
    /// Example: vouch webhooks resume deploy-bot
    Resume(ResumeArgs),
}

/// `vouch webhooks resume`
#[derive(clap::Args, Debug)]
pub struct ResumeArgs {
    /// The subscription's name, as configured on the server.
    pub name: String,
}

/// Runs `vouch webhooks …`.
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    match args.command.unwrap_or(WebhooksCommand::List) {
        WebhooksCommand::List => list(ctx),
        WebhooksCommand::Key => key(ctx),
        WebhooksCommand::Resume(a) => resume(ctx, &a.name),
    }
}

fn list(ctx: &Context) -> anyhow::Result<()> {
    let listing = remote::server_client(ctx)?
        .webhooks()
        .map_err(|e| remote::word(e, "pull", EVERY_REPOSITORY))?;
    match ctx.output {
        Format::Json => output::json(&listing.json),
        Format::Text => {
            let mut out = String::new();
            if listing.subscriptions.is_empty() {
                out.push_str("no webhook subscriptions are configured\n");
            } else {
                let rows: Vec<Vec<String>> = listing.subscriptions.iter().map(row).collect();
                out.push_str(&output::table(
                    &[
                        "NAME",
                        "STATUS",
                        "CURSOR",
                        "LAG",
                        "ATTEMPTS",
                        "LAST DELIVERED",
                        "LAST ERROR",
                    ],
                    &rows,
                ));
            }
            out.push_str(&format!(
                "public key: {}\n",
                terminal_safe(&listing.public_key)
            ));
            output::text(&out)
        }
    }
}

/// One subscription's row; text from the server is escaped, and an error kept to one line.
fn row(s: &WebhookSubscription) -> Vec<String> {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    vec![
        terminal_safe(&s.name),
        s.status.as_str().to_owned(),
        or_dash(s.cursor.map(|c| c.to_string())),
        or_dash(s.lag.map(|l| l.to_string())),
        s.attempts.to_string(),
        or_dash(s.last_delivered_at.map(|t| t.to_string())),
        or_dash(
            s.last_error
                .as_deref()
                .map(|e| terminal_safe(&e.replace('\n', " "))),
        ),
    ]
}

fn key(ctx: &Context) -> anyhow::Result<()> {
    let key = remote::server_client(ctx)?
        .webhook_key()
        .map_err(|e| remote::word(e, "pull", EVERY_REPOSITORY))?;
    match ctx.output {
        Format::Json => output::json(&json!({ "public_key": key })),
        Format::Text => output::text(&key),
    }
}

fn resume(ctx: &Context, name: &str) -> anyhow::Result<()> {
    remote::server_client(ctx)?
        .resume_webhook(name)
        .map_err(|e| match e {
            ServerError::NotFound { .. } => anyhow!(
                "the server has no webhook subscription {:?} that has delivered anything \
                 (404 Not Found): see vouch webhooks list",
                terminal_safe(name)
            ),
            e => remote::word(e, "push", EVERY_REPOSITORY),
        })?;
    match ctx.output {
        Format::Json => output::json(&json!({ "name": name, "resumed": true })),
        Format::Text => output::text(&format!(
            "resumed webhook subscription {}: delivery continues with the event that failed",
            terminal_safe(name)
        )),
    }
}
