//! What a 401 or 403 from the server means.
//!
//! The server answers 401 with a `WWW-Authenticate: Bearer …` challenge when a request
//! carries no token or one it does not accept, and 403 when the token is valid but does not
//! grant the action; a registry-format token without the grant may also get 401 with
//! `error="insufficient_scope"` in the challenge. [`AuthRefusal::classify`] is the one
//! reading of those answers, from the status, the challenge and whether a token was sent;
//! clients word the advice.

/// Why the server refused a request for its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthRefusal {
    /// No token was sent, and the server wants one.
    NoToken,
    /// The token sent is unknown to the server, expired or revoked.
    TokenRefused,
    /// The token does not grant the action on the repository (403, or 401 with
    /// `insufficient_scope`).
    LacksGrant,
}

/// The challenge parameter that says a token lacks the grant.
const INSUFFICIENT_SCOPE: &str = "insufficient_scope";

impl AuthRefusal {
    /// The refusal an answer with `status` means, `challenge` being its `WWW-Authenticate`
    /// header and `sent_token` whether the request carried a token; `None` for a status
    /// other than 401 and 403.
    ///
    /// ```
    /// use vouch_tuf::api::AuthRefusal;
    /// assert_eq!(AuthRefusal::classify(401, None, false), Some(AuthRefusal::NoToken));
    /// assert_eq!(AuthRefusal::classify(401, None, true), Some(AuthRefusal::TokenRefused));
    /// assert_eq!(AuthRefusal::classify(403, None, true), Some(AuthRefusal::LacksGrant));
    /// assert_eq!(AuthRefusal::classify(404, None, true), None);
    /// ```
    pub fn classify(status: u16, challenge: Option<&str>, sent_token: bool) -> Option<Self> {
        if status != 401 && status != 403 {
            None
        } else if status == 403 || challenge.is_some_and(|c| c.contains(INSUFFICIENT_SCOPE)) {
            Some(AuthRefusal::LacksGrant)
        } else if sent_token {
            Some(AuthRefusal::TokenRefused)
        } else {
            Some(AuthRefusal::NoToken)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal() {
        let bearer = Some(r#"Bearer realm="vouch",service="vouch",scope="repository:x:push""#);
        let scope =
            Some(r#"Bearer realm="a",error="insufficient_scope",scope="repository:x:pull""#);
        let cases = [
            (401, bearer, false, Some(AuthRefusal::NoToken)),
            (401, None, false, Some(AuthRefusal::NoToken)),
            (401, bearer, true, Some(AuthRefusal::TokenRefused)),
            (401, scope, true, Some(AuthRefusal::LacksGrant)),
            (401, scope, false, Some(AuthRefusal::LacksGrant)),
            (403, None, true, Some(AuthRefusal::LacksGrant)),
            (403, None, false, Some(AuthRefusal::LacksGrant)),
            (400, bearer, true, None),
            (404, None, false, None),
            (500, scope, true, None),
        ];
        for (status, challenge, sent, want) in cases {
            assert_eq!(
                AuthRefusal::classify(status, challenge, sent),
                want,
                "{status} {challenge:?} {sent}"
            );
        }
    }
}
