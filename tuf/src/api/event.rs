//! Trust-change events as they travel: the event a changefeed entry becomes, its
//! Server-Sent Events framing (`GET /v2/_trust/events`, `/v2/{gun}/_trust/events`) with a
//! sans-IO reader for clients, and the Standard Webhooks message it is delivered as.
//!
//! One event is one changefeed entry: [`Event::id`] is the changefeed id (increasing, never
//! reused, and visible in id order), so a consumer that remembers the last id it handled
//! resumes after it with nothing skipped and nothing repeated.
//!
//! **SSE.** The server writes each event as `id: ID`, `event: update|deletion` and one
//! `data:` line holding [`Event::encode`]; comment lines (`: keep-alive`) keep idle
//! connections open; a stream the server ends on purpose (the consumer fell too far behind,
//! the server is shutting down) ends with an `event: reconnect` frame without an `id`, whose
//! data is a [`Notice`]. [`SseReader`] is the client side: bytes in, [`Frame`]s out, every
//! line and message bounded.
//!
//! **Webhooks.** A delivery is the JSON message [`webhook_payload`] with the headers of the
//! Standard Webhooks specification: `webhook-id` ([`webhook_id`]), `webhook-timestamp`
//! (Unix seconds) and `webhook-signature`, a space-separated list of `v1,BASE64` (HMAC-SHA256
//! with a shared secret) and `v1a,BASE64` (ed25519) signatures over
//! [`signed_content`]: `ID.TIMESTAMP.BODY`. [`parse_signature_header`] reads that list.
//!
//! ```
//! use vouch_tuf::api::event::{Event, EventKind, Frame, SseReader};
//! let event = Event {
//!     id: 42,
//!     kind: EventKind::Update,
//!     gun: "example.com/app".into(),
//!     version: 7,
//!     sha256: "ab".repeat(32),
//!     roles: vec![("targets".into(), 7), ("timestamp".into(), 7)],
//!     created_at: vouch_tuf::time::Timestamp::from_unix(1_800_000_000),
//! };
//! let mut reader = SseReader::default();
//! reader.push(&event.sse_frame());
//! assert_eq!(reader.next_frame().unwrap().unwrap(), Frame::Event(event));
//! ```

use base64ct::{Base64, Encoding};
use thiserror::Error;

use crate::json::{self, Map, Value};
use crate::time::Timestamp;

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// New metadata was published, or the server re-signed its online roles.
    Update,
    /// The repository's trust data was deleted.
    Deletion,
}

impl EventKind {
    /// `update` or `deletion`: the SSE `event:` name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Update => "update",
            EventKind::Deletion => "deletion",
        }
    }

    /// Reads an SSE `event:` name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "update" => Some(EventKind::Update),
            "deletion" => Some(EventKind::Deletion),
            _ => None,
        }
    }
}

/// One trust change: one changefeed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The changefeed id: increasing, never reused.
    pub id: u64,
    /// What happened.
    pub kind: EventKind,
    /// The repository (its GUN).
    pub gun: String,
    /// The timestamp version the change wrote (0 for a deletion).
    pub version: u64,
    /// Lowercase hex SHA-256 of that timestamp file (empty for a deletion).
    pub sha256: String,
    /// Every role the change wrote, with its new version, by role name; empty for a
    /// deletion, for changes recorded before the server kept them, and for changes writing
    /// more roles than an event lists ([`Event::bounded`]). Empty means "not listed": a
    /// consumer refreshes the whole repository.
    pub roles: Vec<(String, u64)>,
    /// When the change was stored.
    pub created_at: Timestamp,
}

/// Why an event, a frame or a signature header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not a vouch event: {0}")]
pub struct EventError(pub String);

fn err(m: impl Into<String>) -> EventError {
    EventError(m.into())
}

/// Most roles one event lists: a reader refuses more. A server lists none rather than more,
/// or than fit in [`MAX_EVENT_BYTES`] ([`Event::bounded`]).
pub const MAX_ROLES: usize = 4096;

/// Most bytes of an event's JSON a server sends ([`Event::bounded`]): far below what a
/// reader accepts ([`MAX_MESSAGE_BYTES`]).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Most bytes of one SSE line, and of one message's data, that [`SseReader`] accepts.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

impl Event {
    /// The event as a server sends it: its roles dropped (never cut to a part) when there
    /// are more than [`MAX_ROLES`] or the event would take more than [`MAX_EVENT_BYTES`], so
    /// that every event a server sends is one every reader accepts.
    pub fn bounded(mut self) -> Self {
        if self.roles.len() > MAX_ROLES || self.encode().len() > MAX_EVENT_BYTES {
            self.roles = Vec::new();
        }
        self
    }

    /// The event as one line of JSON (no line breaks: one SSE `data:` line):
    /// `{"id","kind","gun","version","sha256","roles":[{"role","version"}],"created_at"}`.
    pub fn encode(&self) -> Vec<u8> {
        json::to_json(&self.to_value())
    }

    /// The event as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::from(self.id));
        m.insert("kind".into(), Value::from(self.kind.as_str()));
        m.insert("gun".into(), Value::from(self.gun.as_str()));
        m.insert("version".into(), Value::from(self.version));
        m.insert("sha256".into(), Value::from(self.sha256.as_str()));
        let roles = self
            .roles
            .iter()
            .map(|(role, version)| {
                let mut r = Map::new();
                r.insert("role".into(), Value::from(role.as_str()));
                r.insert("version".into(), Value::from(*version));
                Value::Object(r)
            })
            .collect();
        m.insert("roles".into(), Value::Array(roles));
        m.insert(
            "created_at".into(),
            Value::from(self.created_at.to_string()),
        );
        Value::Object(m)
    }

    /// Reads what [`Event::encode`] writes (fields it does not know are ignored).
    pub fn decode(bytes: &[u8]) -> Result<Self, EventError> {
        let v = json::parse(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
        Self::from_value(&v)
    }

    /// Reads an event from a JSON value.
    pub fn from_value(v: &Value) -> Result<Self, EventError> {
        let m = v.as_object().ok_or_else(|| err("not an object"))?;
        let text = |key: &str| {
            m.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| err(format!("\"{key}\" is missing or not text")))
        };
        let number = |m: &Map, key: &str| {
            m.get(key).and_then(Value::as_u64).ok_or_else(|| {
                err(format!(
                    "\"{key}\" is missing or not a non-negative integer"
                ))
            })
        };
        let kind = text("kind")?;
        let kind = EventKind::parse(&kind).ok_or_else(|| err(format!("unknown kind {kind:?}")))?;
        let roles = m
            .get("roles")
            .and_then(Value::as_array)
            .ok_or_else(|| err("\"roles\" is missing or not an array"))?;
        if roles.len() > MAX_ROLES {
            return Err(err(format!(
                "\"roles\" has {} entries, at most {MAX_ROLES} are accepted",
                roles.len()
            )));
        }
        let roles = roles
            .iter()
            .map(|r| {
                let r = r
                    .as_object()
                    .ok_or_else(|| err("a \"roles\" entry is not an object"))?;
                let role = r
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err("a \"roles\" entry has no \"role\""))?;
                Ok((role.to_owned(), number(r, "version")?))
            })
            .collect::<Result<_, EventError>>()?;
        let created_at = Timestamp::parse(&text("created_at")?)
            .map_err(|e| err(format!("\"created_at\": {e}")))?;
        let id = number(m, "id")?;
        if id == 0 || id > i64::MAX as u64 {
            return Err(err(format!("\"id\" {id} is not a changefeed id")));
        }
        Ok(Event {
            id,
            kind,
            gun: text("gun")?,
            version: number(m, "version")?,
            sha256: text("sha256")?,
            roles,
            created_at,
        })
    }

    /// The event as one SSE message: `id:`, `event:` and one `data:` line, then a blank
    /// line.
    pub fn sse_frame(&self) -> Vec<u8> {
        let data = self.encode();
        let mut out = Vec::with_capacity(data.len() + 48);
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(self.id.to_string().as_bytes());
        out.extend_from_slice(b"\nevent: ");
        out.extend_from_slice(self.kind.as_str().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\n\n");
        out
    }
}

/// An SSE comment line that keeps an idle stream open (clients ignore it).
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The SSE `event:` name of a [`Notice`].
pub const RECONNECT: &str = "reconnect";

/// Why the server ended a stream on purpose; the consumer reconnects with the last id it
/// handled and gets every event after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeReason {
    /// The consumer read too slowly and fell further behind than the server buffers.
    Lagged,
    /// The server is shutting down.
    Shutdown,
    /// The credential the stream was opened with expired: reconnect with a fresh one.
    CredentialExpired,
}

impl NoticeReason {
    /// `lagged`, `shutdown` or `credential_expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeReason::Lagged => "lagged",
            NoticeReason::Shutdown => "shutdown",
            NoticeReason::CredentialExpired => "credential_expired",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "lagged" => Some(NoticeReason::Lagged),
            "shutdown" => Some(NoticeReason::Shutdown),
            "credential_expired" => Some(NoticeReason::CredentialExpired),
            _ => None,
        }
    }
}

/// The last frame of a stream the server ends on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Why.
    pub reason: NoticeReason,
    /// For people.
    pub message: String,
}

impl Notice {
    /// The notice as an SSE message (`event: reconnect`, no `id`, so a client's last event
    /// id stays the last event it got).
    pub fn sse_frame(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("reason".into(), Value::from(self.reason.as_str()));
        m.insert("message".into(), Value::from(self.message.as_str()));
        let mut out = format!("event: {RECONNECT}\ndata: ").into_bytes();
        out.extend_from_slice(&json::to_json(&Value::Object(m)));
        out.extend_from_slice(b"\n\n");
        out
    }

    fn decode(data: &str) -> Result<Self, EventError> {
        let v = json::parse(data.as_bytes()).map_err(|e| err(format!("not JSON: {e}")))?;
        let m = v
            .as_object()
            .ok_or_else(|| err("a notice is not an object"))?;
        let reason = m.get("reason").and_then(Value::as_str).unwrap_or_default();
        Ok(Notice {
            reason: NoticeReason::parse(reason)
                .ok_or_else(|| err(format!("unknown notice reason {reason:?}")))?,
            message: m
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

/// What a client reads from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A trust change.
    Event(Event),
    /// The server is ending the stream: reconnect after the last event handled.
    Reconnect(Notice),
    /// Where the stream starts: a message with an `id:` and no data, sent first, so that a
    /// client that connected for new events only knows where to resume from before any
    /// event arrived (a browser's EventSource takes it as its last event id too).
    Position(u64),
    /// A message of a kind this client does not know (skipped, as SSE clients do).
    Other(String),
}

/// The first message of a stream: its start, as a bare `id:` (see [`Frame::Position`]).
pub fn position_frame(after: u64) -> Vec<u8> {
    format!("id: {after}\n\n").into_bytes()
}

/// The SSE reader: feed it the bytes of a `text/event-stream` body as they arrive
/// ([`SseReader::push`]) and take frames out ([`SseReader::next_frame`]). Lines end in
/// LF, CRLF or CR; comments are skipped; a line or a message's data longer than
/// [`MAX_MESSAGE_BYTES`] is an error (the client should drop the connection), so a hostile
/// server cannot make it buffer without bound. Unlike a browser, the reader does not carry
/// an `id:` over from one message to the next: every event must carry its own, equal to the
/// id in its data.
#[derive(Debug, Default)]
pub struct SseReader {
    buf: Vec<u8>,
    /// Where in `buf` the next unread line starts.
    start: usize,
    /// A CR ended the last line: an LF right after it belongs to it.
    after_cr: bool,
    id: Option<String>,
    event: Option<String>,
    /// The data lines gathered, each followed by LF.
    data: String,
}

impl SseReader {
    /// Bytes held: received and not yet read into frames, and the data of the message being
    /// gathered.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start + self.data.len()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` when more bytes are needed, or an error (a line too
    /// long, data that is not an event): the stream cannot be trusted further.
    pub fn next_frame(&mut self) -> Option<Result<Frame, EventError>> {
        loop {
            let line = match self.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            if line.is_empty() {
                if let Some(frame) = self.dispatch() {
                    return Some(frame);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
                "event" => self.event = Some(value.to_owned()),
                "data" => {
                    if self.data.len() + value.len() + 1 > MAX_MESSAGE_BYTES {
                        self.data.clear();
                        return Some(Err(err(format!(
                            "an SSE message is longer than {MAX_MESSAGE_BYTES} bytes"
                        ))));
                    }
                    self.data.push_str(value);
                    self.data.push('\n');
                }
                // `retry` and unknown fields: nothing for this client to do.
                _ => {}
            }
        }
    }

    /// The message gathered so far, on the blank line that ends it.
    fn dispatch(&mut self) -> Option<Result<Frame, EventError>> {
        let id = self.id.take();
        let event = self.event.take();
        let mut data = std::mem::take(&mut self.data);
        // A message without data is not dispatched (as in browsers), but a bare id is where
        // the stream starts.
        if data.pop().is_none() {
            let id = id?;
            return Some(
                id.parse::<u64>()
                    .ok()
                    .filter(|n| *n <= i64::MAX as u64)
                    .map(Frame::Position)
                    .ok_or_else(|| err(format!("a stream position {id:?} is not a changefeed id"))),
            );
        }
        let name = event.as_deref().unwrap_or("message");
        if name == RECONNECT {
            return Some(Notice::decode(&data).map(Frame::Reconnect));
        }
        if EventKind::parse(name).is_none() {
            return Some(Ok(Frame::Other(name.to_owned())));
        }
        Some((|| {
            let e = Event::decode(data.as_bytes())?;
            if e.kind.as_str() != name {
                return Err(err(format!(
                    "event {} is named {name:?} but its data says {:?}",
                    e.id,
                    e.kind.as_str()
                )));
            }
            if id.as_deref() != Some(e.id.to_string().as_str()) {
                return Err(err(format!(
                    "event {} arrived with id {:?}",
                    e.id,
                    id.unwrap_or_default()
                )));
            }
            Ok(Frame::Event(e))
        })())
    }

    /// The next complete line (without its end), `None` when none is complete yet.
    fn next_line(&mut self) -> Result<Option<String>, EventError> {
        // A CR ended the last line: an LF right after it (perhaps only now arrived) is part
        // of that line's end, and only that one LF.
        if self.after_cr {
            match self.buf.get(self.start) {
                Some(b'\n') => {
                    self.start += 1;
                    self.after_cr = false;
                }
                Some(_) => self.after_cr = false,
                None => {}
            }
        }
        let rest = &self.buf[self.start..];
        let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
            if rest.len() > MAX_MESSAGE_BYTES {
                return Err(err(format!(
                    "an SSE line is longer than {MAX_MESSAGE_BYTES} bytes"
                )));
            }
            // Keep only the unfinished line.
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            return Ok(None);
        };
        if end > MAX_MESSAGE_BYTES {
            return Err(err(format!(
                "an SSE line is longer than {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.after_cr = rest[end] == b'\r';
        self.start += end + 1;
        Ok(Some(line))
    }
}

/// The Standard Webhooks `type` of a delivered event: `vouch.trust.update` or
/// `vouch.trust.deletion`.
pub fn webhook_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Update => "vouch.trust.update",
        EventKind::Deletion => "vouch.trust.deletion",
    }
}

/// The `webhook-id` of an event's delivery: the same on every attempt and to every
/// subscription (`vouch-ID`, the changefeed id), so a receiver drops a delivery it already
/// handled by this id alone.
pub fn webhook_id(event: &Event) -> String {
    format!("vouch-{}", event.id)
}

/// The body of an event's delivery, as the Standard Webhooks specification shapes it:
/// `{"type","timestamp","data"}`, the event (as [`Event::encode`] writes it) in `data`.
pub fn webhook_payload(event: &Event) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(webhook_type(event.kind)));
    m.insert(
        "timestamp".into(),
        Value::from(event.created_at.to_string()),
    );
    m.insert("data".into(), event.to_value());
    json::to_json(&Value::Object(m))
}

/// Reads the event out of a delivery body (the receiver's side of [`webhook_payload`]).
pub fn decode_webhook_payload(body: &[u8]) -> Result<Event, EventError> {
    let v = json::parse(body).map_err(|e| err(format!("not JSON: {e}")))?;
    let m = v.as_object().ok_or_else(|| err("not an object"))?;
    let event = Event::from_value(m.get("data").ok_or_else(|| err("no \"data\""))?)?;
    let ty = m.get("type").and_then(Value::as_str).unwrap_or_default();
    if ty != webhook_type(event.kind) {
        return Err(err(format!(
            "type {ty:?} does not match the event's kind {:?}",
            event.kind.as_str()
        )));
    }
    Ok(event)
}

/// What a Standard Webhooks signature covers: `ID.TIMESTAMP.BODY`.
pub fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(id.len() + body.len() + 24);
    out.extend_from_slice(id.as_bytes());
    out.push(b'.');
    out.extend_from_slice(timestamp.to_string().as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// Most signatures one `webhook-signature` header may list.
pub const MAX_SIGNATURES: usize = 16;

/// The signature schemes of Standard Webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// `v1`: HMAC-SHA256 with a shared secret.
    HmacSha256,
    /// `v1a`: ed25519.
    Ed25519,
}

impl SignatureScheme {
    /// `v1` or `v1a`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureScheme::HmacSha256 => "v1",
            SignatureScheme::Ed25519 => "v1a",
        }
    }
}

/// Reads a `webhook-signature` header: space-separated `SCHEME,BASE64` entries. Entries of
/// schemes other than `v1` and `v1a` are skipped (the specification lets senders add new
/// ones); an entry that is not `SCHEME,BASE64`, or more than [`MAX_SIGNATURES`] entries, is
/// an error.
pub fn parse_signature_header(value: &str) -> Result<Vec<(SignatureScheme, Vec<u8>)>, EventError> {
    let mut out = Vec::new();
    for (i, entry) in value.split(' ').filter(|e| !e.is_empty()).enumerate() {
        if i >= MAX_SIGNATURES {
            return Err(err(format!(
                "the signature header lists more than {MAX_SIGNATURES} signatures"
            )));
        }
        let (scheme, sig) = entry
            .split_once(',')
            .ok_or_else(|| err(format!("signature entry {entry:?} is not SCHEME,BASE64")))?;
        let scheme = match scheme {
            "v1" => SignatureScheme::HmacSha256,
            "v1a" => SignatureScheme::Ed25519,
            _ => continue,
        };
        let sig = Base64::decode_vec(sig)
            .map_err(|_| err(format!("signature entry {entry:?} is not base64")))?;
        out.push((scheme, sig));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64) -> Event {
        Event {
            id,
            kind: EventKind::Update,
            gun: "example.com/org/app".into(),
            version: 3,
            sha256: "0f".repeat(32),
            roles: vec![
                ("snapshot".into(), 3),
                ("targets/re\"l\n".into(), 9),
                ("timestamp".into(), 3),
            ],
            created_at: Timestamp::from_unix(1_800_000_123),
        }
    }

    fn frames(bytes: &[u8], chunk: usize) -> Vec<Result<Frame, EventError>> {
        let mut r = SseReader::default();
        let mut out = Vec::new();
        for c in bytes.chunks(chunk.max(1)) {
            r.push(c);
            while let Some(f) = r.next_frame() {
                out.push(f);
            }
        }
        out
    }

    #[test]
    fn an_event_round_trips_in_one_data_line() {
        let e = event(5);
        let data = e.encode();
        assert!(!data.contains(&b'\n') && !data.contains(&b'\r'));
        assert_eq!(Event::decode(&data).unwrap(), e);
        let deletion = Event {
            kind: EventKind::Deletion,
            version: 0,
            sha256: String::new(),
            roles: vec![],
            ..event(6)
        };
        assert_eq!(Event::decode(&deletion.encode()).unwrap(), deletion);
    }

    #[test]
    fn frames_are_read_whatever_the_chunking_and_line_ends() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"retry: 1000\n\n");
        stream.extend_from_slice(&position_frame(0));
        stream.extend_from_slice(KEEP_ALIVE);
        stream.extend_from_slice(&event(1).sse_frame());
        stream.extend_from_slice(&event(2).sse_frame());
        stream.extend_from_slice(b"event: future\ndata: x\n\n");
        let notice = Notice {
            reason: NoticeReason::Lagged,
            message: "too slow".into(),
        };
        stream.extend_from_slice(&notice.sse_frame());
        let want = vec![
            Frame::Position(0),
            Frame::Event(event(1)),
            Frame::Event(event(2)),
            Frame::Other("future".into()),
            Frame::Reconnect(notice),
        ];
        for chunk in [1, 2, 7, 64, stream.len()] {
            let got: Vec<_> = frames(&stream, chunk)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
        for ending in ["\r\n", "\r"] {
            let text = String::from_utf8(stream.clone())
                .unwrap()
                .replace('\n', ending);
            for chunk in [1, 3, text.len()] {
                let got: Vec<_> = frames(text.as_bytes(), chunk)
                    .into_iter()
                    .map(Result::unwrap)
                    .collect();
                assert_eq!(got, want, "ending {ending:?} chunk {chunk}");
            }
        }
    }

    /// A CR, then (in a later read) its LF, then the LF of a blank line: the blank line
    /// still ends the message (the LF after a CR is skipped once, not for good).
    #[test]
    fn a_cr_and_its_lf_split_across_reads_do_not_eat_the_next_blank_line() {
        let stream = b"id: 1\r\n\nevent: x\r\ndata: a\r\n\n";
        let want = vec![Frame::Position(1), Frame::Other("x".into())];
        for chunk in 1..=stream.len() {
            let got: Vec<_> = frames(stream, chunk)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
    }

    #[test]
    fn an_event_whose_id_or_name_disagrees_with_its_data_is_refused() {
        let data = String::from_utf8(event(7).encode()).unwrap();
        for bad in [
            format!("id: 8\nevent: update\ndata: {data}\n\n"),
            format!("event: update\ndata: {data}\n\n"),
            format!("id: 7\nevent: deletion\ndata: {data}\n\n"),
            "id: 7\nevent: update\ndata: {\"id\":7}\n\n".to_owned(),
            "id: 0\nevent: update\ndata: {}\n\n".to_owned(),
        ] {
            let got = frames(bad.as_bytes(), 5);
            assert_eq!(got.len(), 1, "{bad}");
            assert!(got[0].is_err(), "{bad} was read as {:?}", got[0]);
        }
    }

    #[test]
    fn a_line_or_message_without_bound_is_refused() {
        let mut r = SseReader::default();
        let chunk = vec![b'a'; 64 * 1024];
        let mut failed = false;
        for _ in 0..(MAX_MESSAGE_BYTES / chunk.len() + 2) {
            r.push(&chunk);
            if let Some(Err(_)) = r.next_frame() {
                failed = true;
                break;
            }
        }
        assert!(failed, "an endless line was buffered");
        let mut r = SseReader::default();
        let line = format!("data: {}\n", "b".repeat(1000));
        let mut failed = false;
        for _ in 0..(MAX_MESSAGE_BYTES / 1000 + 2) {
            r.push(line.as_bytes());
            if let Some(Err(_)) = r.next_frame() {
                failed = true;
                break;
            }
        }
        assert!(failed, "an endless message was buffered");
    }

    #[test]
    fn a_bounded_event_lists_all_of_its_roles_or_none_and_every_reader_takes_it() {
        let few = event(3).bounded();
        assert_eq!(few.roles, event(3).roles);
        let many = Event {
            roles: (0..=MAX_ROLES)
                .map(|i| (format!("targets/bin-{i}"), 1))
                .collect(),
            ..event(4)
        };
        let long = Event {
            roles: (0..300)
                .map(|i| (format!("{i}{}", "\"".repeat(250)), 1))
                .collect(),
            ..event(5)
        };
        for big in [many, long] {
            assert!(Event::decode(&big.encode()).is_err() || big.encode().len() > MAX_EVENT_BYTES);
            let b = big.bounded();
            assert!(b.roles.is_empty());
            let mut r = SseReader::default();
            r.push(&b.sse_frame());
            assert_eq!(r.next_frame().unwrap().unwrap(), Frame::Event(b.clone()));
            assert_eq!(decode_webhook_payload(&webhook_payload(&b)).unwrap(), b);
        }
    }

    #[test]
    fn a_webhook_payload_round_trips_and_names_its_kind() {
        let e = event(9);
        let body = webhook_payload(&e);
        assert_eq!(decode_webhook_payload(&body).unwrap(), e);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("\"type\":\"vouch.trust.update\""), "{text}");
        let lying = text.replace("vouch.trust.update", "vouch.trust.deletion");
        assert!(decode_webhook_payload(lying.as_bytes()).is_err());
        assert_eq!(webhook_id(&e), "vouch-9");
        assert_eq!(signed_content("vouch-9", 17, b"{}"), b"vouch-9.17.{}");
    }

    #[test]
    fn signature_headers_are_read_and_bounded() {
        let got = parse_signature_header("v1,AAEC v1a,AwQ= v9,zzz").unwrap();
        assert_eq!(
            got,
            vec![
                (SignatureScheme::HmacSha256, vec![0, 1, 2]),
                (SignatureScheme::Ed25519, vec![3, 4]),
            ]
        );
        assert!(parse_signature_header("v1").is_err());
        assert!(parse_signature_header("v1,!!!").is_err());
        let many = vec!["v1,AA=="; MAX_SIGNATURES + 1].join(" ");
        assert!(parse_signature_header(&many).is_err());
        assert!(parse_signature_header("").unwrap().is_empty());
    }
}
