//! A small blocking pool of PostgreSQL connections.
//!
//! Connections are opened on demand up to the pool size and reused; a request waits at most
//! the acquire timeout for one. A connection that failed at the connection level (closed,
//! IO error, timeout) is dropped, and so is every idle one, since a database restart or a
//! failover breaks them all at once: the next requests connect afresh, so the server
//! recovers without a restart. Nothing here keeps session state between uses, so the
//! connections may come from PgBouncer in transaction mode.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use postgres::{Client, NoTls};

use super::options::PgOptions;
use super::tls::MakeRustls;
use crate::store::StoreError;

/// The pool.
pub struct Pool {
    options: PgOptions,
    tls: Option<MakeRustls>,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Client>,
    /// Connections open, idle or lent out.
    open: usize,
}

/// A failure of one use of a connection.
pub enum Failure {
    /// The database answered with an error; the connection is still good.
    Database(postgres::Error),
    /// The connection broke (or the error was not the database's): it is dropped.
    Connection(postgres::Error),
    /// Not the database's error: the operation's own (a conflict, a bad stored row).
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        if e.as_db_error().is_some() {
            Failure::Database(e)
        } else {
            Failure::Connection(e)
        }
    }
}

/// Database error codes that mean "not now" rather than "never": the request gets 503 with
/// `Retry-After`, not 500.
fn transient(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || code.starts_with("57") // operator intervention: shutdown, statement timeout
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock
        || code == "25006" // read-only transaction: a standby answered (failover under way)
}

impl Failure {
    /// The store error to report, naming `op`.
    pub fn into_store_error(self, op: &str) -> StoreError {
        match self {
            Failure::Store(e) => e,
            Failure::Connection(e) => {
                StoreError::Unavailable(format!("postgres {op}: {}", chain(&e)))
            }
            Failure::Database(e) => {
                let code = e.code().map_or("", |c| c.code()).to_owned();
                let msg = match e.as_db_error() {
                    Some(db) => format!("postgres {op}: {} ({code})", db.message()),
                    None => format!("postgres {op}: {e}"),
                };
                if transient(&code) {
                    StoreError::Unavailable(msg)
                } else {
                    StoreError::Backend(msg)
                }
            }
        }
    }
}

/// `e` and its causes, so a failed TLS handshake says why (an unknown issuer, a name
/// mismatch), not only that it failed.
fn chain(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a connection runs its own small runtime, which must not happen on an
        // async worker thread (where the last reference to a store may go away).
        let idle = std::mem::take(&mut self.lock().idle);
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(idle));
        }
    }
}

impl Pool {
    /// A pool for `options`; nothing is opened yet.
    pub fn new(options: PgOptions) -> Result<Self, String> {
        let tls = super::tls::client_config(&options.tls)?.map(MakeRustls);
        Ok(Pool {
            options,
            tls,
            state: Mutex::default(),
            freed: Condvar::new(),
        })
    }

    /// The options the pool connects with.
    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a new connection (not counted in the pool).
    pub fn connect(&self) -> Result<Client, StoreError> {
        let mut config = self.options.config.clone();
        // A `connect_timeout` in the URL wins over `storage.connect_timeout_seconds`.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.options.connect_timeout);
        }
        config
            .tcp_user_timeout(self.options.statement_timeout + self.options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(30));
        let result = match (&self.tls, &self.options.tls) {
            (None, _) => config.connect(NoTls),
            (Some(tls), mode) => {
                config.ssl_mode(match mode {
                    super::options::TlsMode::Prefer => postgres::config::SslMode::Prefer,
                    _ => postgres::config::SslMode::Require,
                });
                config.connect(tls.clone())
            }
        };
        // Classified as any other failure: refused credentials or a missing database are
        // not worth a retry, a refused connection is.
        result.map_err(|e| {
            Failure::from(e).into_store_error(&format!("connect to {}", self.options.redacted))
        })
    }

    /// Runs `f` on a pooled connection. A connection-level failure drops that connection
    /// and every idle one; the error names `op`.
    pub fn with<T>(
        &self,
        op: &str,
        f: impl FnOnce(&mut Client) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut client = self.acquire()?;
        match f(&mut client) {
            Ok(v) => {
                self.release(client, false);
                Ok(v)
            }
            Err(failure) => {
                let broken = match &failure {
                    Failure::Connection(_) => true,
                    // A standby answering (a failover under way) or the server shutting the
                    // session down: a new connection may reach the new primary.
                    Failure::Database(e) => e
                        .code()
                        .is_some_and(|c| c.code() == "25006" || c.code().starts_with("57P")),
                    Failure::Store(_) => false,
                } || client.is_closed();
                self.release(client, broken);
                Err(failure.into_store_error(op))
            }
        }
    }

    fn acquire(&self) -> Result<Client, StoreError> {
        let deadline = Instant::now() + self.options.acquire_timeout;
        let mut state = self.lock();
        loop {
            if let Some(c) = state.idle.pop() {
                if !c.is_closed() {
                    return Ok(c);
                }
                state.open -= 1;
                continue;
            }
            if state.open < self.options.pool_size {
                state.open += 1;
                drop(state);
                return self.connect().inspect_err(|_| {
                    self.lock().open -= 1;
                    self.freed.notify_one();
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "postgres: all {} pooled connections stayed busy for {:?}",
                    self.options.pool_size, self.options.acquire_timeout
                )));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn release(&self, client: Client, broken: bool) {
        let mut state = self.lock();
        let dead = if broken {
            // Whatever broke this one (a restart, a failover) broke the idle ones too.
            state.open -= 1 + state.idle.len();
            let mut dead = std::mem::take(&mut state.idle);
            dead.push(client);
            dead
        } else {
            state.idle.push(client);
            Vec::new()
        };
        drop(state);
        self.freed.notify_all();
        // Closing takes a round trip (or a timeout): never under the lock.
        drop(dead);
    }
}
