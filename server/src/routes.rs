//! Request paths, as the server reads them: the URL layout lives in `vouch-tuf`
//! ([`vouch_tuf::api::path`]), where clients build the same paths from the same types; this
//! module only names it for the server's HTTP layer.
//!
//! ```
//! use vouch_server::routes::{parse, FileRef, Route};
//! let r = parse("/v2/example.com/org/app/_trust/tuf/2.targets%2Freleases.json").unwrap();
//! let Route::File(gun, FileRef::Version(role, 2)) = r else { panic!() };
//! assert_eq!(gun.as_str(), "example.com/org/app");
//! assert_eq!(role, "targets/releases");
//! ```

pub use vouch_tuf::api::path::{parse, shape, FileRef, Route, RouteError, Shape};
