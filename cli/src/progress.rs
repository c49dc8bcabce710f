//! A progress line on stderr for commands over many images (`vouch sign IMG1 IMG2 …`).
//!
//! Drawn only when stderr is a terminal (and `TERM` is not `dumb`) and there is more than one
//! item: a bar, the count and the item in hand, redrawn in place with `\r`. Anything else
//! printed meanwhile ([`crate::output`]) clears the line first, so the bar never mixes with
//! results or warnings. In a pipeline (stderr not a terminal) nothing is drawn.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a progress line is on the screen now.
static DRAWN: AtomicBool = AtomicBool::new(false);

/// Width of the bar between its brackets.
const BAR_WIDTH: usize = 24;

/// Erases the progress line, if one is drawn.
pub fn clear_line() {
    if DRAWN.swap(false, Ordering::SeqCst) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

/// Progress over `total` items.
#[derive(Debug)]
pub struct Progress {
    verb: &'static str,
    total: usize,
    done: usize,
    enabled: bool,
    columns: usize,
}

impl Progress {
    /// Progress of `verb`ing `total` items, drawn when stderr is a terminal and `total > 1`.
    pub fn new(verb: &'static str, total: usize) -> Self {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|c| *c >= 20)
            .unwrap_or(80);
        Progress {
            verb,
            total,
            done: 0,
            enabled: terminal && total > 1,
            columns,
        }
    }

    /// Shows that `item` is being worked on.
    pub fn working_on(&self, item: &str) {
        if !self.enabled {
            return;
        }
        // One column short of the width, so the line never wraps (a wrapped line cannot be
        // redrawn with `\r`).
        let line = render(self.verb, self.done, self.total, item, self.columns - 1);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        DRAWN.store(true, Ordering::SeqCst);
    }

    /// Counts one item as done.
    pub fn finished_one(&mut self) {
        self.done = (self.done + 1).min(self.total);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.enabled {
            clear_line();
        }
    }
}

/// `[=========>              ] 3/8 signing ITEM`, at most `width` characters.
pub fn render(verb: &str, done: usize, total: usize, item: &str, width: usize) -> String {
    let filled = (done * BAR_WIDTH).checked_div(total).unwrap_or(BAR_WIDTH);
    let mut bar = "=".repeat(filled);
    if filled < BAR_WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat(BAR_WIDTH - filled - 1));
    }
    let line = format!("[{bar}] {done}/{total} {verb} {item}");
    if line.chars().count() <= width {
        return line;
    }
    let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_and_fit() {
        assert_eq!(
            render("signing", 0, 4, "a:v1", 80),
            "[>                       ] 0/4 signing a:v1"
        );
        assert_eq!(
            render("signing", 2, 4, "a:v1", 80),
            "[============>           ] 2/4 signing a:v1"
        );
        assert_eq!(
            render("signing", 4, 4, "a:v1", 80),
            "[========================] 4/4 signing a:v1"
        );
        let long = render("resolving", 1, 3, &"x".repeat(200), 60);
        assert_eq!(long.chars().count(), 60);
        assert!(long.ends_with('…'));
    }
}
