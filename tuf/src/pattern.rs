//! Patterns over image repository names: the glob dialect of admission policy rules and
//! trust pins.
//!
//! A [`NamePattern`] matches **canonical names** (`registry/repository`, as
//! [`ImageRef::name`](crate::reference::ImageRef::name) and [`Gun`](crate::reference::Gun)
//! write them), so every spelling of one repository is matched the same way. Its dialect:
//! `*` matches any run of characters within one path component (never `/`), `**` any run
//! across components, `?` one character other than `/`; everything else matches itself.
//! This is deliberately not the dialect of TUF delegation paths (where `*` crosses `/`, as
//! the specification's `fnmatch` does) nor of server token scopes: a name pattern is about
//! where a repository lives, and `registry.example.com/org/*` must not reach into
//! `org/team/…`.
//!
//! Matching costs at most (pattern length × name length) steps, whatever the pattern's
//! wildcards: no backtracking.

use std::borrow::Cow;

use thiserror::Error;

use crate::reference::{
    canonical_path, canonical_registry, names_registry, ReferenceError, DEFAULT_PORT,
    DEFAULT_REGISTRY, MAX_NAME_LEN,
};

/// Why a pattern could never match a canonical name ([`canonical_pattern`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern is empty.
    #[error("empty pattern")]
    Empty,
    /// A character no image name has.
    #[error(
        "{0:?} is in no image name: patterns match `registry/repository` names (no tag or \
         digest) with the wildcards *, ** and ?"
    )]
    Character(char),
    /// A host pattern with the default port, which canonical names leave out.
    #[error("canonical names leave out the default port :443; write the host pattern without it")]
    DefaultPort,
    /// The registry is not a valid `host[:port]`.
    #[error(transparent)]
    Registry(#[from] ReferenceError),
    /// A leading, trailing or doubled `/`.
    #[error("empty path component (a leading, trailing or doubled '/')")]
    EmptyComponent,
    /// A `:` (or `[`, `]`) after the registry: a tag, which names do not have.
    #[error("a ':' after the registry starts a tag: patterns match repository names only")]
    Tag,
    /// Upper-case letters in the repository path, which names never have.
    #[error("repository names are lower case: {0:?} can never match one")]
    Uppercase(String),
    /// In canonical form, the pattern matches only names longer than any name may be.
    #[error(
        "the pattern matches only names of at least {least} bytes in canonical form; \
         names are at most {max}"
    )]
    TooLong {
        /// The fewest bytes a name it matches would have (every character but `*`).
        least: usize,
        /// The longest a canonical name may be ([`MAX_NAME_LEN`]).
        max: usize,
    },
}

/// A checked pattern over canonical repository names, in canonical form.
///
/// ```
/// use vouch_tuf::pattern::NamePattern;
///
/// let p = NamePattern::parse("Registry.Example.com:443/org/*")?;
/// assert_eq!(p.as_str(), "registry.example.com/org/*");
/// assert!(p.matches("registry.example.com/org/app"));
/// assert!(!p.matches("registry.example.com/org/team/app"));
/// assert!(NamePattern::parse("registry.example.com/org/**")?.matches("registry.example.com/org/team/app"));
/// # Ok::<(), vouch_tuf::pattern::PatternError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NamePattern {
    canonical: String,
    specificity: usize,
}

impl NamePattern {
    /// Parses `pattern` into canonical form ([`canonical_pattern`]).
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let canonical = canonical_pattern(pattern)?;
        Ok(NamePattern {
            specificity: canonical
                .chars()
                .filter(|c| !matches!(c, '*' | '?'))
                .count(),
            canonical,
        })
    }

    /// The canonical form.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// True when the canonical name `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.canonical.as_bytes(), name.as_bytes())
    }

    /// How specific the pattern is: its number of literal characters. When several
    /// patterns match one name, the most specific one decides.
    pub fn specificity(&self) -> usize {
        self.specificity
    }
}

impl std::fmt::Display for NamePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// A pattern brought to the form of the canonical names it is matched against, or why it
/// could never match one.
///
/// The first component is read as a registry exactly when a reference's would be
/// ([`names_registry`]) and then canonicalised with [`canonical_registry`]
/// (`REGISTRY.EXAMPLE.COM:443` is `registry.example.com`, `index.docker.io` is `docker.io`);
/// a pattern without a registry is on `docker.io`, and a one-component path there is under
/// `library/` ([`canonical_path`]): `nginx` and `library/*` are `docker.io/library/nginx`
/// and `docker.io/library/*`. A first component with a wildcard is a host pattern: it is
/// lower-cased, and refused with the default port `:443`, which canonical names leave out.
/// A pattern that is only a `**` glob (`**`) is kept as written. Refused: upper-case
/// letters in the repository path (repository names are lower case), a tag or digest
/// (`:` or `@` after the registry), empty components, characters no name has, and a pattern
/// that only names longer than [`MAX_NAME_LEN`] could match.
///
/// ```
/// use vouch_tuf::pattern::canonical_pattern;
///
/// assert_eq!(canonical_pattern("Registry.Example.com:443/org/**")?, "registry.example.com/org/**");
/// assert_eq!(canonical_pattern("nginx")?, "docker.io/library/nginx");
/// assert_eq!(canonical_pattern("index.docker.io/*")?, "docker.io/library/*");
/// assert_eq!(canonical_pattern("org/*")?, "docker.io/org/*");
/// assert_eq!(canonical_pattern("*.Example.com/**")?, "*.example.com/**");
/// assert!(canonical_pattern("registry.example.com/Org/app").is_err());
/// assert!(canonical_pattern("nginx:1.25").is_err());
/// # Ok::<(), vouch_tuf::pattern::PatternError>(())
/// ```
pub fn canonical_pattern(pattern: &str) -> Result<String, PatternError> {
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    if let Some(c) = pattern
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-/:[]*?".contains(*c)))
    {
        return Err(PatternError::Character(c));
    }
    let wild = |s: &str| s.contains(['*', '?']);
    let (registry, path) = match pattern.split_once('/') {
        None if pattern.contains("**") => (None, pattern),
        None => (Some(DEFAULT_REGISTRY.to_owned()), pattern),
        Some((first, rest)) if wild(first) => {
            let host = first.to_ascii_lowercase();
            if host.ends_with(&format!(":{DEFAULT_PORT}")) {
                return Err(PatternError::DefaultPort);
            }
            (Some(host), rest)
        }
        Some((first, rest)) if names_registry(first) => (Some(canonical_registry(first)?), rest),
        Some(_) => (Some(DEFAULT_REGISTRY.to_owned()), pattern),
    };
    if path.split('/').any(str::is_empty) {
        return Err(PatternError::EmptyComponent);
    }
    if path.contains([':', '[', ']']) {
        return Err(PatternError::Tag);
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(PatternError::Uppercase(path.to_owned()));
    }
    let canonical = match registry {
        None => path.to_owned(),
        Some(registry) => {
            let path = if path.contains("**") {
                Cow::Borrowed(path)
            } else {
                canonical_path(&registry, path)
            };
            format!("{registry}/{path}")
        }
    };
    // Canonicalising can lengthen a pattern (`Host` is `host:443`), past what any name can
    // be: such a pattern matches nothing, and its canonical form would not read back.
    let least = canonical.bytes().filter(|&b| b != b'*').count();
    if least > MAX_NAME_LEN {
        return Err(PatternError::TooLong {
            least,
            max: MAX_NAME_LEN,
        });
    }
    Ok(canonical)
}

/// Glob match: `**` any sequence, `*` any sequence without `/`, `?` one character other
/// than `/`; everything else literally.
///
/// One pass over the pattern, keeping the set of text positions reached so far: at most
/// (pattern length + 1) × (text length + 1) steps, whatever the wildcards.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // reached[i]: the pattern so far matches text[..i].
    let mut reached = vec![false; text.len() + 1];
    reached[0] = true;
    let mut next = vec![false; text.len() + 1];
    let mut p = 0;
    while p < pattern.len() {
        next.fill(false);
        match pattern[p] {
            b'*' if pattern.get(p + 1) == Some(&b'*') => {
                p += 2;
                let mut any = false;
                for i in 0..=text.len() {
                    any |= reached[i];
                    next[i] = any;
                }
            }
            b'*' => {
                p += 1;
                for i in 0..=text.len() {
                    next[i] = reached[i] || (i > 0 && next[i - 1] && text[i - 1] != b'/');
                }
            }
            b'?' => {
                p += 1;
                for i in 0..text.len() {
                    next[i + 1] = reached[i] && text[i] != b'/';
                }
            }
            c => {
                p += 1;
                for i in 0..text.len() {
                    next[i + 1] = reached[i] && text[i] == c;
                }
            }
        }
        std::mem::swap(&mut reached, &mut next);
        if !reached.contains(&true) {
            return false;
        }
    }
    reached[text.len()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Found by the `pattern` fuzz target: an upper-case one-label registry of 254 bytes is
    /// canonically `host:443`, 258 bytes, longer than a registry may be, so the canonical
    /// form of an accepted pattern did not parse. Such a pattern matches no name; it is
    /// refused, and every accepted pattern's canonical form reads back.
    #[test]
    fn a_pattern_that_canonicalises_past_the_name_limit_is_refused() {
        let registry = "Y".repeat(254);
        let err = canonical_pattern(&format!("{registry}/c")).unwrap_err();
        assert_eq!(
            err,
            PatternError::TooLong {
                least: 254 + ":443/c".len(),
                max: MAX_NAME_LEN
            }
        );
        let fits = format!("{}/c", "Y".repeat(249));
        let canonical = canonical_pattern(&fits).unwrap();
        assert_eq!(canonical, format!("{}:443/c", "y".repeat(249)));
        assert_eq!(canonical_pattern(&canonical).unwrap(), canonical);
        // `*` matches the empty string, so only the other characters count.
        let stars = format!("example.com/{}", "*".repeat(300));
        assert!(canonical_pattern(&stars).is_ok());
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"a.io/org/*", b"a.io/org/app"));
        assert!(!glob_match(b"a.io/org/*", b"a.io/org/team/app"));
        assert!(glob_match(b"a.io/org/**", b"a.io/org/team/app"));
        assert!(glob_match(b"a.io/**", b"a.io/x"));
        assert!(glob_match(b"a.io/ap?", b"a.io/app"));
        assert!(!glob_match(b"a.io/ap?", b"a.io/ap/"));
        assert!(!glob_match(b"a.io/org/*", b"b.io/org/app"));
        assert!(glob_match(b"**", b""));
        assert!(glob_match(b"*", b""));
        assert!(!glob_match(b"?", b""));
        assert!(!glob_match(b"", b"a"));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY/c"));
        assert!(glob_match(b"a**c", b"aXX/bYY/c"));
        assert!(glob_match(b"*/library/nginx", b"docker.io/library/nginx"));
        assert!(glob_match(b"**/app", b"r.io/org/team/app"));
        assert!(!glob_match(b"**/app", b"r.io/org/team/app2"));
    }

    /// The matcher agrees with the obvious recursive definition on every pattern and text
    /// over a small alphabet, up to the lengths tried.
    #[test]
    fn glob_match_agrees_with_the_recursive_definition() {
        fn reference(p: &[u8], t: &[u8]) -> bool {
            match p.first() {
                None => t.is_empty(),
                Some(b'*') if p.get(1) == Some(&b'*') => {
                    (0..=t.len()).any(|i| reference(&p[2..], &t[i..]))
                }
                Some(b'*') => {
                    let stop = t.iter().position(|&c| c == b'/').unwrap_or(t.len());
                    (0..=stop).any(|i| reference(&p[1..], &t[i..]))
                }
                Some(b'?') => t.first().is_some_and(|&c| c != b'/') && reference(&p[1..], &t[1..]),
                Some(&c) => t.first() == Some(&c) && reference(&p[1..], &t[1..]),
            }
        }
        fn words(alphabet: &[u8], max: usize) -> Vec<Vec<u8>> {
            let mut out = vec![Vec::new()];
            let mut last = vec![Vec::new()];
            for _ in 0..max {
                let mut grown = Vec::new();
                for w in &last {
                    for &c in alphabet {
                        let mut v = w.clone();
                        v.push(c);
                        grown.push(v);
                    }
                }
                out.extend(grown.iter().cloned());
                last = grown;
            }
            out
        }
        let patterns = words(b"a/*?", 5);
        let texts = words(b"ab/", 5);
        for p in &patterns {
            for t in &texts {
                assert_eq!(
                    glob_match(p, t),
                    reference(p, t),
                    "{:?} against {:?}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(t)
                );
            }
        }
    }

    /// Many `**` against a long name that almost matches: the matcher's cost does not
    /// depend on how many ways the wildcards could be placed.
    #[test]
    fn many_wildcards_on_a_long_name_answer() {
        let pattern = "**a".repeat(40) + "b";
        let text = "a".repeat(4000);
        assert!(!glob_match(pattern.as_bytes(), text.as_bytes()));
    }

    #[test]
    fn patterns_are_canonical() {
        for (written, canonical) in [
            ("**", "**"),
            ("registry.example.com/org/**", "registry.example.com/org/**"),
            ("REGISTRY.EXAMPLE.COM/org/**", "registry.example.com/org/**"),
            (
                "Registry.Example.Com:443/org/app",
                "registry.example.com/org/app",
            ),
            (
                "registry.example.com:5000/org/*",
                "registry.example.com:5000/org/*",
            ),
            ("nginx", "docker.io/library/nginx"),
            ("*", "docker.io/library/*"),
            ("library/nginx", "docker.io/library/nginx"),
            ("org/*", "docker.io/org/*"),
            ("org/**", "docker.io/org/**"),
            ("docker.io/nginx", "docker.io/library/nginx"),
            ("docker.io/**", "docker.io/**"),
            ("index.docker.io/nginx", "docker.io/library/nginx"),
            ("registry-1.docker.io:443/library/*", "docker.io/library/*"),
            ("Foo/app", "foo:443/app"),
            ("localhost:443/app", "localhost/app"),
            ("*.Example.com/**", "*.example.com/**"),
            ("*/library/nginx", "*/library/nginx"),
            ("**/app", "**/app"),
        ] {
            assert_eq!(canonical_pattern(written).unwrap(), canonical, "{written}");
            assert_eq!(
                canonical_pattern(canonical).unwrap(),
                canonical,
                "{written}: idempotent"
            );
        }
        for bad in [
            "",
            "registry.example.com/Org/app",
            "Nginx",
            "nginx:1.25",
            "registry.example.com/app:v1",
            "registry.example.com/app@sha256:00",
            "localhost:5000",
            "registry.example.com//app",
            "registry.example.com/",
            "/app",
            "*.example.com:443/**",
            "under_score.example/app",
            "registry.example.com/org app",
        ] {
            assert!(canonical_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn specificity_counts_literal_characters() {
        let a = NamePattern::parse("r.io/org/**").unwrap();
        let b = NamePattern::parse("r.io/org/app").unwrap();
        assert!(b.specificity() > a.specificity());
        assert_eq!(a.to_string(), "r.io/org/**");
    }
}
