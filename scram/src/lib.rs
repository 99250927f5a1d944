//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: the verifier
//! kept with an account's password, and the server's side of the exchange
//! the warehouse's PostgreSQL front end runs at login.
//!
//! The verifier has PostgreSQL's own form,
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), so it
//! holds nothing a client could log in with. Passwords are normalised by
//! SASLprep (RFC 4013) first, as PostgreSQL and libpq do.
//!
//! Its own crate so that the login page (which makes a verifier whenever a
//! password is set) and the PostgreSQL front end (which checks one) share it
//! without the front end depending on the pages.
//!
//! # Layout
//!
//! - [`Verifier`]: what is kept of a password; [`Verifier::unknown`] for a
//!   name that has none.
//! - [`Exchange`]: the server's side of one SCRAM-SHA-256 exchange.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// PBKDF2 iterations of new verifiers (PostgreSQL's default).
pub const ITERATIONS: u32 = 4096;

/// The SASL mechanism's name.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// What the server keeps of a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

/// Never prints the keys.
impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{MECHANISM}${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 of one block: SCRAM's `Hi`.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut u = hmac(password.as_bytes(), &[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password.as_bytes(), &[&u]);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

impl Verifier {
    /// The verifier of `password` with a fresh random salt.
    pub fn new(password: &str) -> Verifier {
        let mut salt = vec![0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Verifier::with_salt(password, salt, ITERATIONS)
    }

    /// A verifier of no password (random keys) for `name`, a name with no
    /// usable verifier (no account, or one that may not log in here): the
    /// exchange runs as for a real one and fails at its end, without the
    /// server spending a key derivation on it. Its salt is derived from the
    /// server's `secret` and the name, so that it is the same on every
    /// attempt, as a real account's is: two handshakes do not tell a real
    /// name from a made-up one.
    pub fn unknown(name: &str, secret: &[u8]) -> Verifier {
        let salt = hmac(secret, &[b"wangban scram salt\0", name.as_bytes()])[..16].to_vec();
        let (mut stored_key, mut server_key) = ([0u8; 32], [0u8; 32]);
        let mut rng = rand::rng();
        rng.fill_bytes(&mut stored_key);
        rng.fill_bytes(&mut server_key);
        Verifier { iterations: ITERATIONS, salt, stored_key, server_key }
    }

    /// The verifier of `password` with `salt` and `iterations`. The password
    /// is normalised by SASLprep (RFC 4013) first, as PostgreSQL and its
    /// clients do; one SASLprep refuses is used as it is, as PostgreSQL does.
    pub fn with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> Verifier {
        let prepared = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
        let salted = salted_password(&prepared, &salt, iterations);
        let client_key = hmac(&salted, &[b"Client Key"]);
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, &[b"Server Key"]);
        Verifier { iterations, salt, stored_key, server_key }
    }

    /// Reads PostgreSQL's form; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Verifier> {
        let rest = text.strip_prefix(MECHANISM)?.strip_prefix('$')?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok().filter(|i| *i > 0)?;
        let salt = B64.decode(salt).ok()?;
        let stored_key = B64.decode(stored).ok()?.try_into().ok()?;
        let server_key = B64.decode(server).ok()?.try_into().ok()?;
        Some(Verifier { iterations, salt, stored_key, server_key })
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message that is not SCRAM, or asks for what is not offered.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client's proof does not match: a wrong password.
    #[error("password authentication failed")]
    WrongProof,
}

/// The server between its first message and the client's last.
#[derive(Debug)]
pub struct Exchange {
    verifier: Verifier,
    nonce: String,
    client_first_bare: String,
    server_first: String,
    gs2_header: String,
}

/// A fresh server nonce (18 random bytes, base64).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

impl Exchange {
    /// Reads the client's first message and answers the server's first.
    /// Channel binding is not offered: a client may say `n` (none) or `y`
    /// (it could, but the server did not offer it), never `p`.
    pub fn start(verifier: Verifier, client_first: &str, server_nonce: &str) -> Result<(Exchange, String), ScramError> {
        let (gs2_header, bare) = match client_first.as_bytes().first() {
            Some(b'n' | b'y') => {
                let mut parts = client_first.splitn(3, ',');
                let flag = parts.next().unwrap_or_default();
                let authzid = parts.next().ok_or(ScramError::Malformed("no GS2 header"))?;
                let bare = parts.next().ok_or(ScramError::Malformed("no client-first-message-bare"))?;
                if flag.len() != 1 || !authzid.is_empty() {
                    return Err(ScramError::Malformed("an authorization identity is not supported"));
                }
                (format!("{flag},,"), bare)
            }
            Some(b'p') => return Err(ScramError::Malformed("channel binding was not offered")),
            _ => return Err(ScramError::Malformed("no GS2 header")),
        };
        let client_nonce = bare
            .split(',')
            .find_map(|attr| attr.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or(ScramError::Malformed("no client nonce"))?;
        if bare.split(',').any(|attr| attr.starts_with("m=")) {
            return Err(ScramError::Malformed("extensions are not supported"));
        }
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&verifier.salt), verifier.iterations);
        let exchange = Exchange {
            verifier,
            nonce,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            gs2_header,
        };
        Ok((exchange, server_first))
    }

    /// Checks the client's final message: on a matching proof, the server's
    /// final message (its own signature, so the client knows the server
    /// held the verifier).
    pub fn finish(self, client_final: &str) -> Result<String, ScramError> {
        let (without_proof, proof) =
            client_final.rsplit_once(",p=").ok_or(ScramError::Malformed("no proof in client-final-message"))?;
        let mut attrs = without_proof.split(',');
        let binding =
            attrs.next().and_then(|a| a.strip_prefix("c=")).ok_or(ScramError::Malformed("no channel binding"))?;
        if B64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::Malformed("channel binding differs from the GS2 header"));
        }
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(ScramError::Malformed("no nonce"))?;
        if nonce != self.nonce {
            return Err(ScramError::Malformed("the nonce differs"));
        }
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("the proof is not 32 base64 bytes"))?;
        let auth_message = format!("{},{},{}", self.client_first_bare, self.server_first, without_proof);
        let signature = hmac(&self.verifier.stored_key, &[auth_message.as_bytes()]);
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(signature) {
            *k ^= s;
        }
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        // Compared in full whatever differs first.
        let differs = stored.iter().zip(self.verifier.stored_key).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs != 0 {
            return Err(ScramError::WrongProof);
        }
        let server_signature = hmac(&self.verifier.server_key, &[auth_message.as_bytes()]);
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: user "user", password "pencil".
    const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_verifier() -> Verifier {
        Verifier::with_salt("pencil", B64.decode(SALT).expect("salt"), 4096)
    }

    #[test]
    fn the_rfc_7677_exchange_gives_its_known_answers() {
        let (exchange, server_first) = Exchange::start(rfc_verifier(), CLIENT_FIRST, SERVER_NONCE).expect("start");
        assert_eq!(server_first, SERVER_FIRST);
        assert_eq!(exchange.finish(CLIENT_FINAL).expect("finish"), SERVER_FINAL);
    }

    #[test]
    fn a_wrong_password_or_a_tampered_message_is_refused() {
        let wrong = Verifier::with_salt("pencils", B64.decode(SALT).expect("salt"), 4096);
        let (exchange, _) = Exchange::start(wrong, CLIENT_FIRST, SERVER_NONCE).expect("start");
        assert_eq!(exchange.finish(CLIENT_FINAL), Err(ScramError::WrongProof));
        let (exchange, _) = Exchange::start(rfc_verifier(), CLIENT_FIRST, "another-nonce").expect("start");
        assert!(matches!(exchange.finish(CLIENT_FINAL), Err(ScramError::Malformed(_))));
        let (exchange, _) = Exchange::start(rfc_verifier(), CLIENT_FIRST, SERVER_NONCE).expect("start");
        assert!(matches!(exchange.finish(&CLIENT_FINAL.replace("c=biws", "c=eSws")), Err(ScramError::Malformed(_))));
        assert!(Exchange::start(rfc_verifier(), "p=tls-server-end-point,,n=,r=abc", "x").is_err());
        assert!(Exchange::start(rfc_verifier(), "n,a=admin,n=,r=abc", "x").is_err());
        assert!(Exchange::start(rfc_verifier(), "n,,n=,r=", "x").is_err());
        // A name without an account: the exchange runs, and fails at its end.
        let (exchange, _) =
            Exchange::start(Verifier::unknown("user", b"secret"), CLIENT_FIRST, SERVER_NONCE).expect("start");
        assert_eq!(exchange.finish(CLIENT_FINAL), Err(ScramError::WrongProof));
    }

    #[test]
    fn an_unknown_name_gets_the_same_salt_every_time_and_another_name_another() {
        let salt_of = |v: &Verifier| v.to_string().split('$').nth(1).map(str::to_owned);
        let first = Verifier::unknown("nobody", b"server secret");
        let again = Verifier::unknown("nobody", b"server secret");
        assert_eq!(salt_of(&first), salt_of(&again), "the same name shows the same salt, as a real account does");
        assert_ne!(first, again, "its keys are random: no password opens it");
        assert_ne!(salt_of(&first), salt_of(&Verifier::unknown("somebody", b"server secret")));
        assert_ne!(salt_of(&first), salt_of(&Verifier::unknown("nobody", b"another server")));
    }

    #[test]
    fn passwords_are_saslprepped_as_postgresql_does() {
        let salt = B64.decode(SALT).expect("salt");
        // RFC 4013: a non-ASCII space maps to a space, a soft hyphen maps to nothing.
        assert_eq!(
            Verifier::with_salt("pass\u{00A0}word", salt.clone(), 4096),
            Verifier::with_salt("pass word", salt.clone(), 4096)
        );
        assert_eq!(
            Verifier::with_salt("pass\u{00AD}word", salt.clone(), 4096),
            Verifier::with_salt("password", salt.clone(), 4096)
        );
        // A password SASLprep refuses (a prohibited character) is used as it is.
        assert_ne!(Verifier::with_salt("a\u{0007}b", salt.clone(), 4096), Verifier::with_salt("ab", salt, 4096));
    }

    #[test]
    fn verifiers_read_back_in_postgresql_form() {
        let v = rfc_verifier();
        let text = v.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"), "{text}");
        assert_eq!(Verifier::parse(&text), Some(v));
        assert_eq!(Verifier::parse("md5abc"), None);
        assert_eq!(Verifier::parse("SCRAM-SHA-256$0:AA==$AA==:AA=="), None);
        assert!(!format!("{:?}", rfc_verifier()).contains(SALT));
    }
}
