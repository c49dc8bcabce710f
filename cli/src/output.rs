//! Human and machine output.
//!
//! Text goes to stdout as aligned tables or short lines; `--output json` prints exactly one
//! JSON document per command (documented in `docs/cli.md`, stable). Warnings and progress
//! go to stderr so that stdout stays parseable. Writes go through `writeln!` so that a closed
//! pipe surfaces as an error `main` recognises, never as a panic.

use std::io::Write;

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines and tables for people.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Prints `value` as one line of JSON.
pub fn json(value: &serde_json::Value) -> anyhow::Result<()> {
    crate::progress::clear_line();
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints `text` (which should end with a newline, or not: one is added if missing).
pub fn text(text: &str) -> anyhow::Result<()> {
    crate::progress::clear_line();
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}

/// Prints a warning on stderr.
pub fn warn(message: &str) {
    crate::progress::clear_line();
    eprintln!("vouch: warning: {message}");
}

/// Formats rows as columns separated by two spaces, each as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            l.push_str(c);
            if i < last {
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                l.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["TAG", "DIGEST"],
            &[
                vec!["v1".into(), "sha256:aa".into()],
                vec!["latest".into(), "sha256:b".into()],
            ],
        );
        assert_eq!(t, "TAG     DIGEST\nv1      sha256:aa\nlatest  sha256:b\n");
    }
}

/// `s` made safe to show on a terminal: every control character (C0 but line feed, DEL,
/// C1), bidirectional-text control and zero-width character is written as `\u{…}`, so text
/// from a server or a file (names, reasons, strings inside metadata) can neither move the
/// cursor, hide or recolour what is printed around it, nor reorder it visually.
pub fn terminal_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hidden = (c.is_control() && c != '\n')
            || matches!(c,
                '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}');
        if hidden {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod terminal_tests {
    use super::terminal_safe;

    #[test]
    fn control_and_invisible_characters_are_shown_escaped() {
        assert_eq!(terminal_safe("plain\nline"), "plain\nline");
        assert_eq!(terminal_safe("a\u{1b}[1Ab"), "a\\u{001b}[1Ab");
        assert_eq!(
            terminal_safe("x\ry\u{7f}\u{9b}"),
            "x\\u{000d}y\\u{007f}\\u{009b}"
        );
        assert_eq!(
            terminal_safe("ab\u{202e}cd\u{200b}"),
            "ab\\u{202e}cd\\u{200b}"
        );
        assert_eq!(terminal_safe("tab\there"), "tab\\u{0009}here");
        assert_eq!(terminal_safe("é ü 😀"), "é ü 😀");
    }
}
