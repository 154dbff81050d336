//! Authentication primitives: passwords, sessions, OAuth2 client credentials.
//!
//! What this module guarantees, so that the HTTP layer cannot get it wrong:
//!
//! - **Passwords** are hashed with Argon2id (RFC 9106) at the OWASP Password Storage Cheat
//!   Sheet minimum — m = 19 MiB (19 456 KiB), t = 2, p = 1 — with a 16-byte random salt,
//!   stored as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Verification
//!   recomputes with the stored parameters and compares in constant time; an unknown account
//!   is verified against a dummy hash so that timing does not reveal which accounts exist.
//! - **Password policy** (NIST SP 800-63B §5.1.1.2): at least 12 and at most 128
//!   characters, no composition rules, not a common password (a built-in list, also with
//!   digits or symbols appended), not containing the account name.
//! - **Secrets handed to clients** (session tokens, OAuth2 client secrets, access tokens)
//!   are 256 bits from the operating system's generator, given out once as 64 hex
//!   characters and stored only as their SHA-256 hash. A slow hash adds nothing for a
//!   256-bit random secret (no dictionary to try); a stolen table of hashes cannot be
//!   replayed.
//! - **Sessions** expire absolutely (default 8 hours) and after idleness (default 15
//!   minutes), after OWASP Session Management Cheat Sheet guidance for sensitive data.
//! - **Access tokens** from the client-credentials grant (RFC 6749 §4.4) carry only
//!   `system/` scopes that the client's registration covers, and live 5 minutes by default
//!   (the SMART Backend Services guidance for `expires_in`).

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::model::{Principal, Role, UserId};
use crate::scopes::{ResourceScope, Scope, ScopeContext, format_scopes, parse_scopes};

/// Argon2 memory cost in KiB (19 MiB: OWASP minimum for Argon2id).
pub const ARGON2_M_KIB: u32 = 19_456;
/// Argon2 iterations (OWASP minimum with 19 MiB).
pub const ARGON2_T: u32 = 2;
/// Argon2 parallelism.
pub const ARGON2_P: u32 = 1;
/// Largest memory cost accepted from a stored hash (256 MiB), so a corrupted or hostile
/// stored hash cannot make verification exhaust memory.
const MAX_STORED_M_KIB: u32 = 262_144;
/// Largest iteration count accepted from a stored hash.
const MAX_STORED_T: u32 = 16;
/// Largest parallelism accepted from a stored hash.
const MAX_STORED_P: u32 = 8;

/// What went wrong in authentication machinery (not a failed login, which is `Ok(false)`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The operating system's random generator failed.
    #[error("random generator failed: {0}")]
    Random(String),
    /// A stored password hash is not a PHC string this module accepts.
    #[error("stored password hash is not usable: {0}")]
    BadStoredHash(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 of `data` as 64 lower-case hex characters.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .expect("the constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with Argon2id at the module's parameters; returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt_bytes: [u8; 16] = random_bytes()?;
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Hashing(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

fn parse_stored(phc: &str) -> Result<PasswordHash<'_>, AuthError> {
    let parsed = PasswordHash::new(phc).map_err(|e| AuthError::BadStoredHash(e.to_string()))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(AuthError::BadStoredHash(format!(
            "algorithm {} (only argon2id is accepted)",
            parsed.algorithm
        )));
    }
    let params = Params::try_from(&parsed).map_err(|e| AuthError::BadStoredHash(e.to_string()))?;
    if params.m_cost() > MAX_STORED_M_KIB
        || params.t_cost() > MAX_STORED_T
        || params.p_cost() > MAX_STORED_P
    {
        return Err(AuthError::BadStoredHash(format!(
            "parameters m={},t={},p={} exceed the accepted maximum m={MAX_STORED_M_KIB},t={MAX_STORED_T},p={MAX_STORED_P}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        )));
    }
    Ok(parsed)
}

/// Checks a password against a stored PHC string. `Ok(false)` for a wrong password; an
/// error only if the stored hash is unusable. The comparison is constant-time.
pub fn verify_password(password: &str, stored_phc: &str) -> Result<bool, AuthError> {
    let parsed = parse_stored(stored_phc)?;
    match argon2().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(AuthError::Hashing(e.to_string())),
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // A random password nobody knows; if the generator fails, a fixed one still costs
        // the same time, which is all the dummy is for.
        let secret = random_bytes::<16>()
            .map(|b| hex(&b))
            .unwrap_or_else(|_| "dummy".into());
        hash_password(&secret).unwrap_or_default()
    })
}

/// Verifies a login attempt whether or not the account exists: with `None` (unknown
/// account) the password is checked against a dummy hash, costing the same time, and the
/// answer is `false`.
pub fn verify_password_or_dummy(
    password: &str,
    stored_phc: Option<&str>,
) -> Result<bool, AuthError> {
    match stored_phc {
        Some(phc) => verify_password(password, phc),
        None => {
            let _ = verify_password(password, dummy_hash());
            Ok(false)
        }
    }
}

/// Whether a stored hash should be replaced at the next successful login (weaker
/// parameters or an older Argon2 version than current).
pub fn needs_rehash(stored_phc: &str) -> Result<bool, AuthError> {
    let parsed = parse_stored(stored_phc)?;
    let params = Params::try_from(&parsed).map_err(|e| AuthError::BadStoredHash(e.to_string()))?;
    Ok(parsed.version != Some(Version::V0x13 as u32)
        || params.m_cost() < ARGON2_M_KIB
        || params.t_cost() < ARGON2_T
        || params.p_cost() < ARGON2_P)
}

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PasswordRejection {
    /// Fewer characters than the minimum.
    #[error("password has {got} characters; at least {min} are needed")]
    TooShort {
        /// The minimum.
        min: usize,
        /// The password's length in characters.
        got: usize,
    },
    /// More characters than the maximum.
    #[error("password is longer than {max} characters")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// A common password, or one with only digits or symbols appended.
    #[error("password is too common")]
    Common,
    /// The password contains the account name.
    #[error("password contains the account name")]
    ContainsAccountName,
}

/// Common passwords and stems, lower case. A password is refused if, in lower case, it is
/// one of these or one of these followed only by digits and symbols (so `Password1234!`
/// and `Summer2025!!!` are refused). Written for trent from the patterns that recur in
/// published breach-frequency lists; the length rule already refuses anything shorter.
const COMMON_PASSWORDS: [&str; 56] = [
    "password",
    "passw0rd",
    "p@ssword",
    "p@ssw0rd",
    "qwerty",
    "qwertyuiop",
    "qwertyuiop[]",
    "asdfghjkl",
    "zxcvbnm",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "qazwsxedc",
    "qwerty123456",
    "123456789012",
    "1234567890",
    "0987654321",
    "111111111111",
    "000000000000",
    "abc123",
    "abcdefghijkl",
    "letmein",
    "welcome",
    "welcometo",
    "iloveyou",
    "admin",
    "administrator",
    "changeme",
    "default",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "superman",
    "batman",
    "trustno1",
    "master",
    "shadow",
    "starwars",
    "whatever",
    "secret",
    "spring",
    "summer",
    "autumn",
    "winter",
    "january",
    "december",
    "nottingham",
    "nottinghamshire",
    "nhs",
    "hospital",
    "doctor",
    "nurse",
    "trent",
    "thisismypassword",
];

/// The rules for a new password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in characters (Unicode scalar values).
    pub min_chars: usize,
    /// Maximum length in characters (long enough for passphrases).
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_chars: 12,
            max_chars: 128,
        }
    }
}

impl PasswordPolicy {
    /// Checks a proposed password for an account.
    pub fn check(&self, password: &str, account_name: &str) -> Result<(), PasswordRejection> {
        let n = password.chars().count();
        if n < self.min_chars {
            return Err(PasswordRejection::TooShort {
                min: self.min_chars,
                got: n,
            });
        }
        if n > self.max_chars {
            return Err(PasswordRejection::TooLong {
                max: self.max_chars,
            });
        }
        let lower = password.to_lowercase();
        let stem = lower
            .trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ');
        if COMMON_PASSWORDS.iter().any(|p| *p == lower || *p == stem) {
            return Err(PasswordRejection::Common);
        }
        let account = account_name.to_lowercase();
        if account.chars().count() >= 3 && lower.contains(&account) {
            return Err(PasswordRejection::ContainsAccountName);
        }
        Ok(())
    }
}

/// A secret handed to a client once: a session token, client secret or access token.
/// `Debug` does not show it, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    fn generate() -> Result<Self, AuthError> {
        Ok(Secret(hex(&random_bytes::<32>()?)))
    }

    /// The secret, to send to the client. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 hash under which the secret is stored.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn presented_matches(presented: &str, stored_hash: &str) -> bool {
    constant_time_eq(
        sha256_hex(presented.as_bytes()).as_bytes(),
        stored_hash.as_bytes(),
    )
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Lifetime from sign-in, whatever the activity.
    pub absolute: Duration,
    /// Longest gap between requests.
    pub idle: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            absolute: Duration::hours(8),
            idle: Duration::minutes(15),
        }
    }
}

/// A session as stored: the token's hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the token, hex (the store's lookup key).
    pub token_hash: String,
    /// The signed-in account.
    pub user: UserId,
    /// Sign-in time.
    pub created: DateTime<Utc>,
    /// Time of the last accepted request.
    pub last_seen: DateTime<Utc>,
    /// Absolute expiry.
    pub expires: DateTime<Utc>,
}

/// Why a presented session or access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TokenRejection {
    /// The token does not match.
    #[error("token is not valid")]
    Invalid,
    /// Past the absolute expiry.
    #[error("token has expired")]
    Expired,
    /// Unused for longer than the idle timeout.
    #[error("session timed out after inactivity")]
    IdleTimeout,
}

impl Session {
    /// Starts a session: returns the token for the client and the record to store.
    pub fn start(
        user: UserId,
        now: DateTime<Utc>,
        policy: &SessionPolicy,
    ) -> Result<(Secret, Session), AuthError> {
        let token = Secret::generate()?;
        let session = Session {
            token_hash: token.hash(),
            user,
            created: now,
            last_seen: now,
            expires: now + policy.absolute,
        };
        Ok((token, session))
    }

    /// Checks a presented token against this session at `now`, and on success records the
    /// activity (the caller stores the updated `last_seen`). Expiry instants are exclusive.
    pub fn validate(
        &mut self,
        presented: &str,
        now: DateTime<Utc>,
        policy: &SessionPolicy,
    ) -> Result<(), TokenRejection> {
        if !presented_matches(presented, &self.token_hash) {
            return Err(TokenRejection::Invalid);
        }
        if now >= self.expires {
            return Err(TokenRejection::Expired);
        }
        if now >= self.last_seen + policy.idle {
            return Err(TokenRejection::IdleTimeout);
        }
        self.last_seen = self.last_seen.max(now);
        Ok(())
    }
}

/// An OAuth2 error from the token endpoint, with the RFC 6749 §5.2 error code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OAuthError {
    /// Client authentication failed.
    #[error("invalid_client: client authentication failed")]
    InvalidClient,
    /// A requested scope is malformed, not allowed for this grant, or beyond the client's
    /// registration.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// Machinery failed (random generator).
    #[error("server_error: {0}")]
    Server(#[from] AuthError),
}

impl OAuthError {
    /// The `error` value of the RFC 6749 error response.
    pub fn error_code(&self) -> &'static str {
        match self {
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::Server(_) => "server_error",
        }
    }
}

fn system_scopes(scopes: &[Scope]) -> Result<Vec<ResourceScope>, OAuthError> {
    scopes
        .iter()
        .map(|s| match s {
            Scope::Resource(r) if r.context == ScopeContext::System => Ok(*r),
            other => Err(OAuthError::InvalidScope(format!(
                "{other} is not a system/ scope; the client-credentials grant carries system/ scopes only"
            ))),
        })
        .collect()
}

/// A registered OAuth2 client (a backend system), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRegistration {
    /// The client id.
    pub client_id: UserId,
    /// SHA-256 of the client secret, hex.
    pub secret_hash: String,
    /// The scopes the client may be granted (all `system/`).
    pub allowed: Vec<ResourceScope>,
}

/// An access token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The client it was issued to.
    pub client_id: UserId,
    /// The granted scopes.
    pub scopes: Vec<Scope>,
    /// Issue time.
    pub issued: DateTime<Utc>,
    /// Expiry (exclusive).
    pub expires: DateTime<Utc>,
}

/// Default access-token lifetime (SMART Backend Services: at most five minutes).
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 300;

impl ClientRegistration {
    /// Registers a client with the scopes it may be granted (a space-separated list of
    /// `system/` scopes). Returns the client secret, shown once, and the record to store.
    pub fn register(
        client_id: UserId,
        allowed_scopes: &str,
    ) -> Result<(Secret, ClientRegistration), OAuthError> {
        let scopes =
            parse_scopes(allowed_scopes).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
        let allowed = system_scopes(&scopes)?;
        if allowed.is_empty() {
            return Err(OAuthError::InvalidScope(
                "a client needs at least one scope".into(),
            ));
        }
        let secret = Secret::generate()?;
        let registration = ClientRegistration {
            client_id,
            secret_hash: secret.hash(),
            allowed,
        };
        Ok((secret, registration))
    }

    /// Whether the presented secret is this client's (constant-time).
    pub fn authenticate(&self, presented_secret: &str) -> bool {
        presented_matches(presented_secret, &self.secret_hash)
    }

    /// The client-credentials grant: authenticates the client, checks the requested scopes
    /// (empty = everything the registration allows; otherwise each must be covered by the
    /// registration) and issues a token valid for `ttl`.
    pub fn issue_token(
        &self,
        presented_secret: &str,
        requested_scopes: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(Secret, AccessToken), OAuthError> {
        if !self.authenticate(presented_secret) {
            return Err(OAuthError::InvalidClient);
        }
        let requested =
            parse_scopes(requested_scopes).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
        let requested = system_scopes(&requested)?;
        let granted = if requested.is_empty() {
            self.allowed.clone()
        } else {
            if let Some(beyond) = requested
                .iter()
                .find(|r| !self.allowed.iter().any(|a| a.covers(r)))
            {
                return Err(OAuthError::InvalidScope(format!(
                    "{beyond} is beyond this client's registration"
                )));
            }
            requested
        };
        let token = Secret::generate()?;
        let record = AccessToken {
            token_hash: token.hash(),
            client_id: self.client_id.clone(),
            scopes: granted.into_iter().map(Scope::Resource).collect(),
            issued: now,
            expires: now + ttl,
        };
        Ok((token, record))
    }
}

impl AccessToken {
    /// Checks a presented bearer token at `now`.
    pub fn validate(&self, presented: &str, now: DateTime<Utc>) -> Result<(), TokenRejection> {
        if !presented_matches(presented, &self.token_hash) {
            return Err(TokenRejection::Invalid);
        }
        if now >= self.expires {
            return Err(TokenRejection::Expired);
        }
        Ok(())
    }

    /// The granted scopes as a space-separated string (the token response's `scope`).
    pub fn scope_string(&self) -> String {
        format_scopes(&self.scopes)
    }

    /// The principal the token stands for: a system with the granted scopes.
    pub fn principal(&self) -> Principal {
        let mut p = Principal::new(self.client_id.clone(), Role::System);
        p.scopes = Some(self.scopes.clone());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn argon2id_round_trip_and_wrong_password() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc).unwrap());
        assert!(!verify_password("correct horse battery stapler", &phc).unwrap());
        assert!(!verify_password("", &phc).unwrap());
        assert!(!needs_rehash(&phc).unwrap());
        // Two hashes of one password differ (random salt).
        assert_ne!(phc, hash_password("correct horse battery staple").unwrap());
    }

    #[test]
    fn stored_hash_problems_are_errors_not_false() {
        assert!(matches!(
            verify_password("x", "not a phc string"),
            Err(AuthError::BadStoredHash(_))
        ));
        // argon2i is refused even though the library could verify it.
        let weak = "$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA";
        let e = verify_password("x", weak).unwrap_err();
        assert!(e.to_string().contains("only argon2id"), "{e}");
        let huge = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA";
        assert!(
            verify_password("x", huge)
                .unwrap_err()
                .to_string()
                .contains("exceed")
        );
    }

    #[test]
    fn weaker_parameters_need_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let phc = weak
            .hash_password(b"a long passphrase", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("a long passphrase", &phc).unwrap());
        assert!(needs_rehash(&phc).unwrap());
    }

    #[test]
    fn unknown_account_costs_a_verification_and_fails() {
        assert!(!verify_password_or_dummy("anything at all", None).unwrap());
    }

    #[test]
    fn password_policy() {
        let p = PasswordPolicy::default();
        assert_eq!(
            p.check("short", "amy"),
            Err(PasswordRejection::TooShort { min: 12, got: 5 })
        );
        // Characters, not bytes: 11 two-byte characters are still too short.
        assert!(matches!(
            p.check(&"é".repeat(11), "amy"),
            Err(PasswordRejection::TooShort { got: 11, .. })
        ));
        assert_eq!(
            p.check(&"a".repeat(129), "amy"),
            Err(PasswordRejection::TooLong { max: 128 })
        );
        for common in [
            "Password1234",
            "password1234!",
            "QWERTYUIOP123",
            "Summer2025!!!",
            "123456789012",
            "Nottingham2024",
            "Welcome2025!!!",
        ] {
            assert_eq!(
                p.check(common, "amy"),
                Err(PasswordRejection::Common),
                "{common}"
            );
        }
        assert_eq!(
            p.check("xx-amy.jones-xx", "Amy.Jones"),
            Err(PasswordRejection::ContainsAccountName)
        );
        assert_eq!(p.check("lantern orbit velvet pier", "amy"), Ok(()));
        assert_eq!(p.check("password manager vault", "amy"), Ok(()));
    }

    #[test]
    fn sessions_expire_absolutely_and_when_idle() {
        let policy = SessionPolicy::default();
        let t0 = t("2025-03-01T09:00:00Z");
        let (token, mut s) = Session::start(UserId::new("u").unwrap(), t0, &policy).unwrap();
        assert_eq!(token.expose().len(), 64);
        assert_eq!(s.token_hash, sha256_hex(token.expose().as_bytes()));
        assert!(!format!("{token:?}").contains(token.expose()));
        assert_eq!(
            s.validate("nope", t0, &policy),
            Err(TokenRejection::Invalid)
        );
        // Active every 14 minutes for almost 8 hours: fine; then the absolute limit.
        let mut now = t0;
        while now + Duration::minutes(14) < t0 + Duration::hours(8) {
            now += Duration::minutes(14);
            assert_eq!(s.validate(token.expose(), now, &policy), Ok(()));
        }
        assert_eq!(
            s.validate(token.expose(), t0 + Duration::hours(8), &policy),
            Err(TokenRejection::Expired)
        );
        let (token, mut s) = Session::start(UserId::new("u").unwrap(), t0, &policy).unwrap();
        assert_eq!(
            s.validate(token.expose(), t0 + Duration::minutes(15), &policy),
            Err(TokenRejection::IdleTimeout)
        );
    }

    #[test]
    fn client_credentials_grant() {
        let now = t("2025-03-01T09:00:00Z");
        let (secret, client) = ClientRegistration::register(
            UserId::new("gp-feed").unwrap(),
            "system/*.rs system/Observation.cu",
        )
        .unwrap();
        assert!(client.authenticate(secret.expose()));
        assert!(!client.authenticate("0".repeat(64).as_str()));
        let ttl = Duration::seconds(ACCESS_TOKEN_TTL_SECONDS);
        assert_eq!(
            client.issue_token("wrong", "", now, ttl).unwrap_err(),
            OAuthError::InvalidClient
        );
        let (tok, rec) = client
            .issue_token(
                secret.expose(),
                "system/Patient.r system/Observation.c",
                now,
                ttl,
            )
            .unwrap();
        assert_eq!(rec.scope_string(), "system/Patient.r system/Observation.c");
        assert_eq!(
            rec.validate(tok.expose(), now + Duration::seconds(299)),
            Ok(())
        );
        assert_eq!(
            rec.validate(tok.expose(), now + Duration::seconds(300)),
            Err(TokenRejection::Expired)
        );
        assert_eq!(rec.validate("x", now), Err(TokenRejection::Invalid));
        let p = rec.principal();
        assert_eq!(p.role, Role::System);
        let (_, all) = client.issue_token(secret.expose(), "", now, ttl).unwrap();
        assert_eq!(all.scope_string(), "system/*.rs system/Observation.cu");
        let e = client
            .issue_token(secret.expose(), "system/Patient.c", now, ttl)
            .unwrap_err();
        assert_eq!(e.error_code(), "invalid_scope");
        assert!(e.to_string().contains("system/Patient.c"), "{e}");
        let e = client
            .issue_token(secret.expose(), "patient/*.rs", now, ttl)
            .unwrap_err();
        assert_eq!(e.error_code(), "invalid_scope");
        let e = client
            .issue_token(secret.expose(), "system/Patient.rx", now, ttl)
            .unwrap_err();
        assert!(e.to_string().contains("unknown permission"), "{e}");
        assert!(ClientRegistration::register(UserId::new("x").unwrap(), "user/*.rs").is_err());
        assert!(ClientRegistration::register(UserId::new("x").unwrap(), "").is_err());
    }
}
