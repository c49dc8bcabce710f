//! Who may do what: bearer tokens and their scopes.
//!
//! Credentials travel as `Authorization: Bearer <token>`. A static API token is configured by
//! its SHA-256 only, with scopes `GUN-GLOB:ACTIONS` (`*` in a glob matches any run of
//! characters, `/` included; `?` one character). Reads need `pull` (or nothing, when
//! anonymous pulls are on); publishing and creating or rotating online keys need `push`;
//! deleting needs `delete`; the changefeed of all repositories needs a token whose scope
//! pattern is `*` with `pull`.
//!
//! Registry-format JWTs ([`crate::jwt`]) are accepted beside static tokens when configured:
//! their `access` claim grants actions on exactly named repositories (`type` `repository`),
//! and the global changefeed needs `registry:catalog:*`. As a registry does, a valid JWT that
//! lacks the needed grant gets a 401 whose challenge says `error="insufficient_scope"` and
//! names the scope, so a client asks its auth server for a token with that scope; a static
//! token without the scope gets 403 (no auth server can widen it).

use std::collections::HashMap;

use vouch_tuf::reference::Gun;

use crate::config::AuthConfig;
use crate::jwt::{self, TokenPolicy};

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
    pattern: ScopeGlob,
    actions: Vec<String>,
}

/// The GUN pattern of a token scope. Its dialect is deliberately the widest of vouch's
/// three: `*` matches any run of characters **including `/`** (a scope
/// `registry.example.com/org/*` grants every repository below `org/`, however deep, as
/// registries' own scope grants do), `?` one character, everything else itself, byte for
/// byte (GUNs are canonical, so no case folding). Compare [`vouch_tuf::pattern::NamePattern`]
/// (admission rules and trust pins: `*` stays within one path component) and TUF
/// delegation paths ([`vouch_tuf::metadata::path_pattern_matches`]: shell-style per path
/// component). Matching backtracks to the last `*` only, so it costs at most
/// (pattern length × name length) steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeGlob(String);

impl ScopeGlob {
    /// A pattern of this dialect (webhook subscriptions name the repositories they follow
    /// with it); an empty one is refused.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("an empty repository pattern".into());
        }
        Ok(ScopeGlob(pattern.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `gun` matches.
    pub fn matches(&self, gun: &str) -> bool {
        glob(self.0.as_bytes(), gun.as_bytes())
    }

    /// True for the pattern `*`, which alone covers every repository (and so the global
    /// changefeed).
    pub fn is_everything(&self) -> bool {
        self.0 == "*"
    }
}

impl Scope {
    /// Parses `GUN-GLOB:ACTION[,ACTION…]`: the last `:` ends the pattern, so a registry
    /// port stays in it (`registry.example.com:5000/org/*:pull,push`); an action other than
    /// `pull`, `push`, `delete` or `*` is refused.
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
            pattern: ScopeGlob(pattern.to_owned()),
            actions,
        })
    }

    fn allows(&self, target: Target<'_>, action: Action) -> bool {
        let action_ok = self
            .actions
            .iter()
            .any(|a| a == "*" || a == action.as_str());
        let target_ok = match target {
            Target::Gun(g) => self.pattern.matches(g.as_str()),
            Target::All => self.pattern.is_everything(),
        };
        action_ok && target_ok
    }
}

/// Glob match where `*` matches any run of bytes (`/` included) and `?` one byte: the
/// dialect of [`ScopeGlob`].
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
        /// Why (missing, malformed, unknown, expired, badly signed token …).
        reason: String,
        /// The challenge's `error` (`invalid_token`), when a token was presented.
        error: Option<&'static str>,
    },
    /// A valid registry JWT without the needed grant: 401 with
    /// `error="insufficient_scope"`, so the client fetches a token for `scope`.
    InsufficientScope {
        /// The scope the request needed.
        scope: String,
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
    /// A registry JWT, by subject, accepted until the Unix second `valid_until`.
    Jwt {
        /// The token's `sub`.
        subject: String,
        /// When the token stops being accepted (its `exp` plus the leeway).
        valid_until: i64,
    },
}

impl Principal {
    /// The Unix second after which the credential is no longer accepted (a JWT's expiry);
    /// `None` for credentials that do not expire.
    pub fn valid_until(&self) -> Option<i64> {
        match self {
            Principal::Jwt { valid_until, .. } => Some(*valid_until),
            _ => None,
        }
    }

    /// How the audit trail names the caller: `token:NAME`, `jwt:SUBJECT` or `anonymous`.
    pub fn identity(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".to_owned(),
            Principal::Token(name) => format!("token:{name}"),
            Principal::Jwt { subject, .. } if subject.is_empty() => "jwt:(no subject)".to_owned(),
            Principal::Jwt { subject, .. } => format!("jwt:{subject}"),
        }
    }
}

/// Decides whether requests may proceed.
#[derive(Clone, Debug)]
pub struct Authorizer {
    anonymous_pull: bool,
    realm: String,
    service: String,
    tokens: HashMap<String, (String, Vec<Scope>)>,
    jwt: Option<TokenPolicy>,
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
        let jwt = match &cfg.jwt {
            Some(j) => Some(j.policy(&cfg.service).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Authorizer {
            anonymous_pull: cfg.anonymous_pull,
            realm: cfg.realm.clone(),
            service: cfg.service.clone(),
            tokens,
            jwt,
        })
    }

    /// The `WWW-Authenticate` value for a 401 needing `scope`, with an RFC 6750 `error`
    /// (`invalid_token`, `insufficient_scope`) when a token was presented.
    pub fn challenge(&self, scope: &str, error: Option<&str>) -> String {
        let mut c = format!(
            "Bearer realm=\"{}\",service=\"{}\",scope=\"{}\"",
            self.realm, self.service, scope
        );
        if let Some(e) = error {
            c.push_str(&format!(",error=\"{e}\""));
        }
        c
    }

    /// Checks the `Authorization` header value (if any) for `action` on `target`, now.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        target: Target<'_>,
        action: Action,
    ) -> Result<Principal, Denied> {
        let now = vouch_tuf::clock::Clock::now(&vouch_tuf::clock::SystemClock).unix();
        self.authorize_at(authorization, target, action, now)
    }

    /// [`Self::authorize`] at unix time `now` (for token expiry).
    pub fn authorize_at(
        &self,
        authorization: Option<&str>,
        target: Target<'_>,
        action: Action,
        now: i64,
    ) -> Result<Principal, Denied> {
        // Formatted only for a refusal: an allowed request (most of them) does not need it.
        let scope = || match target {
            Target::Gun(g) => format!("repository:{g}:{}", action.as_str()),
            Target::All => "registry:catalog:*".to_owned(),
        };
        let Some(header) = authorization else {
            if self.anonymous_pull && action == Action::Pull && matches!(target, Target::Gun(_)) {
                return Ok(Principal::Anonymous);
            }
            return Err(Denied::Unauthenticated {
                scope: scope(),
                reason: "this request needs a bearer token".into(),
                error: None,
            });
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Denied::Unauthenticated {
                scope: scope(),
                reason: "the Authorization header must be \"Bearer <token>\"".into(),
                error: Some("invalid_request"),
            })?;
        if let Some(policy) = self.jwt.as_ref().filter(|_| jwt::looks_like_jwt(token)) {
            let claims = jwt::verify(token, policy, now).map_err(|e| Denied::Unauthenticated {
                scope: scope(),
                reason: e.to_string(),
                error: Some("invalid_token"),
            })?;
            let granted = claims.access.iter().any(|a| {
                let action_ok = a.actions.iter().any(|x| x == "*" || x == action.as_str());
                let target_ok = match target {
                    Target::Gun(g) => a.kind == "repository" && a.name == g.as_str(),
                    Target::All => {
                        a.kind == "registry"
                            && a.name == "catalog"
                            && a.actions.iter().any(|x| x == "*")
                    }
                };
                action_ok && target_ok
            });
            return if granted {
                Ok(Principal::Jwt {
                    subject: claims.subject,
                    valid_until: claims.valid_until,
                })
            } else {
                Err(Denied::InsufficientScope { scope: scope() })
            };
        }
        let hash = vouch_tuf::hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            token.as_bytes(),
        ));
        let Some((name, scopes)) = self.tokens.get(&hash) else {
            return Err(Denied::Unauthenticated {
                scope: scope(),
                reason: "unknown token".into(),
                error: Some("invalid_token"),
            });
        };
        if scopes.iter().any(|s| s.allows(target, action)) {
            Ok(Principal::Token(name.clone()))
        } else {
            Err(Denied::Forbidden { scope: scope() })
        }
    }
}

#[cfg(test)]
mod tests;
