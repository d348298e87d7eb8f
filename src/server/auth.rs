//! Who may call: HS256 JWT verification (and minting, for `callgate token`), the origin
//! allowlist, and where a token may come from on the upgrade request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp`: client and server clocks differ a little.
const LEEWAY: Duration = Duration::from_secs(30);

/// The claims callgate reads. Other claims are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id; recorded with the call and used for per-user limits.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch (required).
    pub exp: u64,
}

/// Why a token was refused. The message is for logs and the `error` event's `message`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token anywhere it may be given.
    #[error("a token is required: Authorization: Bearer, ?access_token= or session.start token")]
    Missing,
    /// Bad signature, wrong algorithm, expired, malformed, or no `exp`/`sub`.
    #[error("token rejected: {0}")]
    Invalid(String),
}

/// The server's shared secret; `None` means authentication is off.
#[derive(Clone, Default)]
pub struct Authenticator {
    secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Authenticator")
            .field("enabled", &self.secret.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Authentication with this secret, or off when `None` or empty.
    pub fn new(secret: Option<&str>) -> Self {
        Self {
            secret: secret
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec()),
        }
    }

    /// Whether calls need a token.
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// Verifies `token`: HS256 only, `exp` required (with a small leeway), `sub` non-empty.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let Some(secret) = &self.secret else {
            return Err(AuthError::Invalid(
                "authentication is not configured".into(),
            ));
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY.as_secs();
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
                .map_err(|e| AuthError::Invalid(e.to_string()))?;
        if data.claims.sub.trim().is_empty() {
            return Err(AuthError::Invalid("sub is empty".into()));
        }
        Ok(data.claims)
    }
}

/// Mints an HS256 token for `sub` valid for `ttl` (for `callgate token` and tests).
pub fn mint(secret: &str, sub: &str, ttl: Duration) -> Result<String, AuthError> {
    mint_with(secret.as_bytes(), sub, ttl)
}

/// How long a token one node mints for another (a relayed resume) is valid.
const VOUCH_TTL: Duration = Duration::from_secs(60);

fn mint_with(secret: &[u8], sub: &str, ttl: Duration) -> Result<String, AuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: sub.to_owned(),
        exp: now + ttl.as_secs(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// The token of an upgrade request: `Authorization: Bearer ...` first, then the
/// `access_token` query parameter (browsers cannot set headers on a WebSocket).
pub fn request_token<'a>(authorization: Option<&'a str>, query: Option<&'a str>) -> Option<String> {
    if let Some(value) = authorization {
        let mut parts = value.splitn(2, ' ');
        if parts
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
        {
            return parts
                .next()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty());
        }
    }
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "access_token")
        .map(|(_, v)| percent_decode(v))
        .filter(|t| !t.is_empty())
}

/// Decodes `%XX` escapes (JWTs are URL-safe, but a client may still escape them).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether an upgrade from `origin` may proceed: no allowlist allows all; with one, a
/// browser's `Origin` must be on it. Requests without `Origin` are not from a browser page
/// (CLI clients, the benchmark) and are let through: the allowlist guards against other
/// sites' pages, not against programs, which the token guards against.
pub fn origin_allowed(allowlist: &[String], origin: Option<&str>) -> bool {
    match origin {
        _ if allowlist.is_empty() => true,
        None => true,
        Some(o) => allowlist.iter().any(|a| {
            a == "*"
                || a.trim_end_matches('/')
                    .eq_ignore_ascii_case(o.trim_end_matches('/'))
        }),
    }
}

pub use crate::call::registry::constant_time_eq;

impl crate::call::admission::TokenVerifier for Authenticator {
    fn enabled(&self) -> bool {
        Authenticator::enabled(self)
    }

    fn verify(&self, token: Option<&str>) -> Result<String, String> {
        let token = token.ok_or(AuthError::Missing).map_err(|e| e.to_string())?;
        Authenticator::verify(self, token)
            .map(|claims| claims.sub)
            .map_err(|e| e.to_string())
    }

    fn vouch(&self, user: &str) -> Option<String> {
        mint_with(self.secret.as_deref()?, user, VOUCH_TTL).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_others_do_not() {
        let auth = Authenticator::new(Some("s3cret"));
        let token = mint("s3cret", "ada", Duration::from_secs(60)).expect("mint");
        assert_eq!(auth.verify(&token).expect("valid").sub, "ada");
        let other = mint("another", "ada", Duration::from_secs(60)).expect("mint");
        assert!(matches!(auth.verify(&other), Err(AuthError::Invalid(_))));
        assert!(auth.verify("not.a.jwt").is_err());
        // Expired beyond the leeway.
        let claims = Claims {
            sub: "ada".into(),
            exp: 1_000,
        };
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .expect("encode");
        assert!(auth.verify(&old).is_err());
        // No exp at all.
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub":"ada"}),
            &EncodingKey::from_secret(b"s3cret"),
        )
        .expect("encode");
        assert!(auth.verify(&no_exp).is_err());
        // Another algorithm with the same secret.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                sub: "ada".into(),
                exp: u64::MAX / 2,
            },
            &EncodingKey::from_secret(b"s3cret"),
        )
        .expect("encode");
        assert!(auth.verify(&hs512).is_err());
    }

    #[test]
    fn token_comes_from_header_then_query() {
        assert_eq!(
            request_token(Some("Bearer abc"), Some("access_token=def")),
            Some("abc".into())
        );
        assert_eq!(
            request_token(None, Some("x=1&access_token=d%2Eef")),
            Some("d.ef".into())
        );
        assert_eq!(request_token(Some("Basic xyz"), None), None);
        assert_eq!(request_token(None, Some("access_token=")), None);
    }

    #[test]
    fn origin_allowlist() {
        let list = vec!["https://app.example.com".to_string()];
        assert!(origin_allowed(&[], Some("https://evil.example")));
        assert!(origin_allowed(&list, Some("https://app.example.com")));
        assert!(!origin_allowed(&list, Some("https://evil.example")));
        assert!(origin_allowed(&list, None));
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
