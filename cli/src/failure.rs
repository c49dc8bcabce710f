//! Exit codes and one-line error messages.
//!
//! Every failure ends as one line on stderr, `vouch: <what failed>: <why>`, and an exit
//! status: 1 for an error, 2 for a usage error (clap's), 3 when `verify` (or `lookup`) ran
//! and found the image not trusted, including trust data that failed verification (expired,
//! badly signed, rolled back). A closed stdout (`vouch list … | head -1`) is not an error.

use thiserror::Error;

/// Outcomes with their own exit status.
#[derive(Debug, Error)]
pub enum Failure {
    /// Verification ran and the image is not trusted (or its trust data failed a check).
    #[error("not trusted: {0}")]
    NotTrusted(String),
}

/// The exit status for `e`.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Failure>() {
        Some(Failure::NotTrusted(_)) => 3,
        None => 1,
    }
}

/// True when `e` comes from writing to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `e` and its causes on one line, without repeating a cause its context already quotes.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_join_on_one_line() {
        let e = anyhow::anyhow!("inner\nproblem").context("outer");
        assert_eq!(one_line(&e), "outer: inner problem");
        assert_eq!(exit_code(&e), 1);
        let nt = anyhow::Error::new(Failure::NotTrusted("x".into()));
        assert_eq!(exit_code(&nt.context("verify")), 3);
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::new(io).context("writing output");
        assert!(is_broken_pipe(&e));
    }
}
