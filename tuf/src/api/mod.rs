//! The vouch server's HTTP API, as data: what its paths address, what its error bodies say,
//! and what a 401 or 403 means. No IO: the server routes and answers with these types, and
//! clients build their requests and read the answers with the same ones, so the wire
//! protocol is spelled in one place.
//!
//! - [`path`]: the URL layout in both directions. [`path::parse`] (and the cheaper
//!   [`path::shape`]) turn a request path into a [`Route`]; [`Route::path`] and the helpers
//!   beside it turn a [`Route`] back into the path a client requests.
//! - [`error`]: the registry-style error body `{"errors":[{"code","message","detail"}]}`
//!   as [`ErrorBody`] and [`ApiError`], with the encoder the server writes and the decoder
//!   clients read, and the error [`code`]s.
//! - [`auth`]: [`AuthRefusal`], the one reading of a 401 or 403 (no token sent, the token
//!   refused, or the token lacking the grant).
//! - [`event`]: trust-change events: the event a changefeed entry becomes, its Server-Sent
//!   Events framing with a bounded reader for clients, and its Standard Webhooks delivery.
//! - [`proposal`]: staged proposals for threshold signing by several people: the proposal
//!   document, lists of them, and the signatures an approver adds.
//!
//! ```
//! use vouch_tuf::api::{parse, FileRef, Route};
//! use vouch_tuf::reference::Gun;
//! let gun = Gun::new("example.com/org/app").unwrap();
//! let route = Route::File(gun, FileRef::Version("targets/releases".into(), 2));
//! let path = route.path();
//! assert_eq!(path, "/v2/example.com/org/app/_trust/tuf/2.targets%2Freleases.json");
//! assert_eq!(parse(&path).unwrap(), route);
//! ```

pub mod auth;
pub mod error;
pub mod event;
pub mod path;
pub mod proposal;

pub use auth::AuthRefusal;
pub use error::{code, ApiError, ErrorBody, ErrorBodyError, ErrorDetail};
pub use path::{parse, shape, FileRef, Route, RouteError, Shape};
