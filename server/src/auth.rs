//! Who may do what: bearer tokens and their scopes.
//!
//! Credentials travel as `Authorization: Bearer <token>`. A static API token is configured by
//! its SHA-256 only, with scopes `GUN-GLOB:ACTIONS` (`*` in a glob matches any run of
//! characters, `/` included; `?` one character). Reads need `pull` (or nothing, when
//! anonymous pulls are on); publishing and creating or rotating online keys need `push`;
//! deleting needs `delete`; the changefeed of all repositories needs a token whose scope
//! pattern is `*` with `pull`.

use std::collections::HashMap;

use vouch_tuf::reference::Gun;

use crate::config::AuthConfig;

/// What a request wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read metadata, keys, the changefeed.
    Pull,
    /// Publish, create or rotate online keys.
    Push,
    /// Delete a repository's trust data.
    Delete,
}

impl Action {
    /// The action's name in scopes and challenges.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

/// What the request acts on.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// One repository.
    Gun(&'a Gun),
    /// Every repository (the global changefeed).
    All,
}

/// One scope of a token: a GUN glob and the actions allowed on matching repositories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pattern: String,
    actions: Vec<String>,
}

impl Scope {
    /// Parses `GUN-GLOB:ACTION[,ACTION…]`.
    ///
    /// ```
    /// use vouch_server::auth::Scope;
    /// assert!(Scope::parse("registry.example.com:5000/org/*:pull,push").is_ok());
    /// assert!(Scope::parse("org/app:fly").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, String> {
        let (pattern, actions) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("scope {s:?} must be GUN-GLOB:ACTIONS"))?;
        if pattern.is_empty() {
            return Err(format!("scope {s:?} has an empty pattern"));
        }
        let actions: Vec<String> = actions.split(',').map(|a| a.trim().to_owned()).collect();
        for a in &actions {
            if !matches!(a.as_str(), "pull" | "push" | "delete" | "*") {
                return Err(format!(
                    "scope {s:?}: unknown action {a:?} (pull, push, delete or *)"
                ));
            }
        }
        Ok(Scope {
            pattern: pattern.to_owned(),
            actions,
        })
    }

    fn allows(&self, target: Target<'_>, action: Action) -> bool {
        let action_ok = self
            .actions
            .iter()
            .any(|a| a == "*" || a == action.as_str());
        let target_ok = match target {
            Target::Gun(g) => glob(self.pattern.as_bytes(), g.as_str().as_bytes()),
            Target::All => self.pattern == "*",
        };
        action_ok && target_ok
    }
}

/// Glob match where `*` matches any run of bytes and `?` one byte.
fn glob(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == b'?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No usable credentials: answer 401 with a challenge for `scope`.
    Unauthenticated {
        /// The scope the request needed, e.g. `repository:org/app:push`.
        scope: String,
        /// Why (missing, malformed or unknown token).
        reason: &'static str,
    },
    /// Valid credentials without the needed scope: 403.
    Forbidden {
        /// The scope the request needed.
        scope: String,
    },
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// No token (anonymous pull).
    Anonymous,
    /// A configured token, by name.
    Token(String),
}

/// Decides whether requests may proceed.
#[derive(Clone, Debug)]
pub struct Authorizer {
    anonymous_pull: bool,
    realm: String,
    service: String,
    tokens: HashMap<String, (String, Vec<Scope>)>,
}

impl Authorizer {
    /// From configuration, plus the generated admin token's hash (all scopes) if any.
    pub fn new(cfg: &AuthConfig, admin_token_sha256: Option<String>) -> Result<Self, String> {
        let mut tokens = HashMap::new();
        for t in &cfg.tokens {
            let scopes = t
                .scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            tokens.insert(t.sha256.clone(), (t.name.clone(), scopes));
        }
        if let Some(h) = admin_token_sha256 {
            tokens.insert(h, ("admin".to_owned(), vec![Scope::parse("*:*")?]));
        }
        Ok(Authorizer {
            anonymous_pull: cfg.anonymous_pull,
            realm: cfg.realm.clone(),
            service: cfg.service.clone(),
            tokens,
        })
    }

    /// The `WWW-Authenticate` value for a 401 needing `scope`.
    pub fn challenge(&self, scope: &str) -> String {
        format!(
            "Bearer realm=\"{}\",service=\"{}\",scope=\"{}\"",
            self.realm, self.service, scope
        )
    }

    /// Checks the `Authorization` header value (if any) for `action` on `target`.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        target: Target<'_>,
        action: Action,
    ) -> Result<Principal, Denied> {
        let scope = match target {
            Target::Gun(g) => format!("repository:{g}:{}", action.as_str()),
            Target::All => "registry:catalog:*".to_owned(),
        };
        let Some(header) = authorization else {
            if self.anonymous_pull && action == Action::Pull && matches!(target, Target::Gun(_)) {
                return Ok(Principal::Anonymous);
            }
            return Err(Denied::Unauthenticated {
                scope,
                reason: "this request needs a bearer token",
            });
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Unauthenticated {
                scope: scope.clone(),
                reason: "the Authorization header must be \"Bearer <token>\"",
            })?;
        let hash = vouch_tuf::hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            token.as_bytes(),
        ));
        let Some((name, scopes)) = self.tokens.get(&hash) else {
            return Err(Denied::Unauthenticated {
                scope,
                reason: "unknown token",
            });
        };
        if scopes.iter().any(|s| s.allows(target, action)) {
            Ok(Principal::Token(name.clone()))
        } else {
            Err(Denied::Forbidden { scope })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;

    fn sha(t: &str) -> String {
        vouch_tuf::hex::encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()))
    }

    fn authorizer(anonymous_pull: bool) -> Authorizer {
        let cfg = AuthConfig {
            anonymous_pull,
            realm: "https://auth.example.com/token".into(),
            service: "vouch.example.com".into(),
            tokens: vec![TokenConfig {
                name: "ci".into(),
                sha256: sha("ci-token"),
                scopes: vec![
                    "example.com/org/*:pull,push".into(),
                    "example.com/other:pull".into(),
                ],
            }],
        };
        Authorizer::new(&cfg, Some(sha("admin-token"))).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob(b"*", b"a/b/c"));
        assert!(glob(b"example.com/org/*", b"example.com/org/team/app"));
        assert!(!glob(b"example.com/org/*", b"example.com/orgx/app"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"abc", b"abcd"));
    }

    #[test]
    fn decisions() {
        let a = authorizer(true);
        let app = Gun::new("example.com/org/app").unwrap();
        let other = Gun::new("example.com/other").unwrap();
        let t = |s: &str| format!("Bearer {s}");
        assert_eq!(
            a.authorize(None, Target::Gun(&app), Action::Pull),
            Ok(Principal::Anonymous)
        );
        assert!(matches!(
            a.authorize(None, Target::Gun(&app), Action::Push),
            Err(Denied::Unauthenticated { scope, .. }) if scope == "repository:example.com/org/app:push"
        ));
        assert_eq!(
            a.authorize(Some(&t("ci-token")), Target::Gun(&app), Action::Push),
            Ok(Principal::Token("ci".into()))
        );
        assert!(matches!(
            a.authorize(Some(&t("ci-token")), Target::Gun(&other), Action::Push),
            Err(Denied::Forbidden { .. })
        ));
        assert!(matches!(
            a.authorize(Some(&t("ci-token")), Target::Gun(&app), Action::Delete),
            Err(Denied::Forbidden { .. })
        ));
        assert!(matches!(
            a.authorize(Some(&t("wrong")), Target::Gun(&app), Action::Pull),
            Err(Denied::Unauthenticated { .. })
        ));
        assert!(matches!(
            a.authorize(Some("Basic abc"), Target::Gun(&app), Action::Pull),
            Err(Denied::Unauthenticated { .. })
        ));
        assert!(matches!(
            a.authorize(Some(&t("ci-token")), Target::All, Action::Pull),
            Err(Denied::Forbidden { .. })
        ));
        assert!(a
            .authorize(Some(&t("admin-token")), Target::All, Action::Pull)
            .is_ok());
        assert!(a
            .authorize(Some(&t("admin-token")), Target::Gun(&other), Action::Delete)
            .is_ok());
        assert!(matches!(
            a.authorize(None, Target::All, Action::Pull),
            Err(Denied::Unauthenticated { .. })
        ));

        let closed = authorizer(false);
        assert!(matches!(
            closed.authorize(None, Target::Gun(&app), Action::Pull),
            Err(Denied::Unauthenticated { .. })
        ));
        assert_eq!(
            closed.challenge("repository:x:pull"),
            "Bearer realm=\"https://auth.example.com/token\",service=\"vouch.example.com\",scope=\"repository:x:pull\""
        );
    }
}
