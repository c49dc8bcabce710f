//! Reading HTTP/1.1 responses off a raw connection, for tests that speak the protocol byte
//! for byte (slow or hostile clients, keep-alive, pipelining) where an HTTP client library
//! would hide what the server sent.
//!
//! Only what those tests need: a status line and headers ending in an empty line, and a body
//! of `content-length` bytes. No chunked bodies, no parsing of the head.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;

/// Reads one response with a `content-length` body (none without that header) from `conn`;
/// returns its head (status line and headers, each ending in CRLF) and its body, or `None`
/// when the connection closed (or its read timeout ran out) first.
pub fn read_response(conn: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).ok()?;
    Some((head, body))
}
