//! Validated names and numbers used throughout TUF metadata.
//!
//! Each type can only be built through a constructor that checks it, so a value of the type
//! is always valid. [`Gun`](crate::reference::Gun) and [`Digest`](crate::reference::Digest)
//! live in [`reference`](crate::reference) with the rest of the image-reference grammar.

use std::fmt;

use thiserror::Error;

/// A value rejected by one of the constructors in this module.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TypeError {
    /// A role name that is empty, too long or holds a control character.
    #[error("invalid role name {0:?}: must be 1 to 255 bytes without control characters")]
    RoleName(String),
    /// A target name that is empty, too long or holds a control character.
    #[error("invalid target name {0:?}: must be 1 to 4096 bytes without control characters")]
    TargetName(String),
    /// A key id that is empty, too long or not printable ASCII.
    #[error("invalid key id {0:?}: must be 1 to 128 printable ASCII characters")]
    KeyId(String),
    /// Version 0: TUF versions start at 1.
    #[error("invalid version 0: versions start at 1")]
    Version,
    /// Threshold 0: at least one signature must be required.
    #[error("invalid threshold 0: at least one signature must be required")]
    Threshold,
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $check:expr, $err:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, TypeError> {
                let s = s.into();
                let check: fn(&str) -> bool = $check;
                if check(&s) {
                    Ok(Self(s))
                } else {
                    Err(TypeError::$err(s))
                }
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = TypeError;
            fn from_str(s: &str) -> Result<Self, TypeError> {
                Self::new(s)
            }
        }
    };
}

string_newtype!(
    /// The name of a role: `root`, `targets`, `snapshot`, `timestamp`, or a delegated role
    /// such as `releases` or `targets/releases`.
    ///
    /// Delegated names may hold any character but control characters; use
    /// [`RoleName::url_encoded`] to put one into a file name or URL.
    ///
    /// ```
    /// use vouch_tuf::types::RoleName;
    /// let r = RoleName::new("targets/releases").unwrap();
    /// assert_eq!(r.url_encoded(), "targets%2Freleases");
    /// assert!(RoleName::new("").is_err());
    /// ```
    RoleName,
    |s| !s.is_empty() && s.len() <= 255 && !has_control(s),
    RoleName
);

string_newtype!(
    /// The name of a target: for images the tag (`v1.2.0`) or the digest (`sha256:…`).
    TargetName,
    |s| !s.is_empty() && s.len() <= 4096 && !has_control(s),
    TargetName
);

string_newtype!(
    /// A key id as listed by the delegating metadata. vouch computes ids for the keys it
    /// creates (see [`Key::key_id`](crate::metadata::Key::key_id)) but accepts whatever id a
    /// delegator lists.
    KeyId,
    |s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()),
    KeyId
);

/// The four top-level roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopLevelRole {
    /// `root`
    Root,
    /// `targets`
    Targets,
    /// `snapshot`
    Snapshot,
    /// `timestamp`
    Timestamp,
}

impl TopLevelRole {
    /// All four, in the order TUF lists them.
    pub const ALL: [TopLevelRole; 4] = [
        TopLevelRole::Root,
        TopLevelRole::Targets,
        TopLevelRole::Snapshot,
        TopLevelRole::Timestamp,
    ];

    /// The role's name (and metadata `_type`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TopLevelRole::Root => "root",
            TopLevelRole::Targets => "targets",
            TopLevelRole::Snapshot => "snapshot",
            TopLevelRole::Timestamp => "timestamp",
        }
    }

    /// The top-level role of that name, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The role name.
    pub fn name(self) -> RoleName {
        RoleName(self.as_str().to_owned())
    }
}

impl fmt::Display for TopLevelRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RoleName {
    /// The top-level role this name denotes, if any.
    pub fn top_level(&self) -> Option<TopLevelRole> {
        TopLevelRole::from_name(&self.0)
    }

    /// The name percent-encoded for use in a file name or URL path segment: every byte
    /// except ASCII letters, digits and `-._~` becomes `%XX` (as TUF clients encode it).
    pub fn url_encoded(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

impl From<TopLevelRole> for RoleName {
    fn from(r: TopLevelRole) -> Self {
        r.name()
    }
}

impl PartialEq<str> for RoleName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RoleName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A metadata version: a positive integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u64);

impl Version {
    /// Version 1, where every role starts.
    pub const ONE: Version = Version(1);

    /// Checks and wraps `v` (must be at least 1).
    pub fn new(v: u64) -> Result<Self, TypeError> {
        if v == 0 {
            Err(TypeError::Version)
        } else {
            Ok(Version(v))
        }
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The next version (saturating at `u64::MAX`).
    pub const fn next(self) -> Version {
        Version(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How many distinct keys must sign: at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u32);

impl Threshold {
    /// A threshold of one signature.
    pub const ONE: Threshold = Threshold(1);

    /// Checks and wraps `n` (must be at least 1).
    pub fn new(n: u32) -> Result<Self, TypeError> {
        if n == 0 {
            Err(TypeError::Threshold)
        } else {
            Ok(Threshold(n))
        }
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        assert!(RoleName::new("releases").is_ok());
        assert!(RoleName::new("a\nb").is_err());
        assert!(RoleName::new("x".repeat(256)).is_err());
        assert_eq!(
            RoleName::new("../a b?").unwrap().url_encoded(),
            "..%2Fa%20b%3F"
        );
        assert_eq!(RoleName::new("é").unwrap().url_encoded(), "%C3%A9");
        assert_eq!(
            RoleName::new("snapshot").unwrap().top_level(),
            Some(TopLevelRole::Snapshot)
        );
        assert_eq!(RoleName::new("Root").unwrap().top_level(), None);
    }

    #[test]
    fn key_ids_and_numbers() {
        assert!(KeyId::new("ab12").is_ok());
        assert!(KeyId::new("").is_err());
        assert!(KeyId::new("a b").is_err());
        assert!(Version::new(0).is_err());
        assert_eq!(Version::ONE.next().get(), 2);
        assert!(Threshold::new(0).is_err());
        assert!(TargetName::new("").is_err());
        assert!(TargetName::new("sha256:abc").is_ok());
    }
}
