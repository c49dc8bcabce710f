//! Asking before a destructive command: `--yes` answers in advance; otherwise the question
//! is asked on the terminal, and without one the command refuses and names `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context as _};

/// Goes on when `yes` is set or the user answers `y` (or `yes`) to `question` on the
/// terminal; otherwise fails, saying nothing was done.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        bail!(
            "{question} Nothing was done: pass --yes to confirm (there is no terminal to ask on)"
        );
    }
    crate::progress::clear_line();
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ").context("writing the question")?;
    err.flush().context("writing the question")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    if accepts(&answer) {
        Ok(())
    } else {
        bail!("not confirmed: nothing was done")
    }
}

/// True for `y` and `yes` in any case, with surrounding blanks.
fn accepts(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_goes_on() {
        for a in ["y\n", "Y", " yes \n", "YES"] {
            assert!(accepts(a), "{a:?}");
        }
        for a in ["", "\n", "n", "no", "yess", "ja"] {
            assert!(!accepts(a), "{a:?}");
        }
        assert!(confirm("Delete?", true).is_ok());
    }
}
