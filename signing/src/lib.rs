//! The court API's request signatures (docs/court-api.md § Authentication):
//! `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>[,sm3=<hex HMAC-SM3>]`
//! over `"<t>.<signed content>"` (the raw body for POST, the path for GET).
//! Any one valid signature from any currently valid secret of the partner is
//! enough, so old and new keys both work during rotation. Comparison is
//! constant-time (`Mac::verify_slice`).
//!
//! This crate is the one place that signs and verifies: the gateway checks
//! pushes with it and the simulator's court client signs with it. Both are
//! held to the published known-answer vectors in
//! `contracts/court-push/signature-vectors.json`, computed outside this code.
//!
//! # Layout
//!
//! One file: [`SignatureHeader`] (parse and verify), [`sign`], [`SignatureError`]
//! (each a 401 at the gateway), and the tests against the vectors.

use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sm3::Sm3;

/// How far a signature's timestamp may be from the server's clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a signature was refused (each becomes a 401 with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Signature header")]
    Missing,
    #[error("X-Signature must look like t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    #[error("signature timestamp is more than five minutes from the server's time")]
    Stale,
    #[error("no signature matches any valid secret of this partner")]
    Mismatch,
}

/// The parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// Timestamp, unix seconds.
    pub timestamp: i64,
    /// HMAC-SHA256 signatures.
    pub v1: Vec<Vec<u8>>,
    /// HMAC-SM3 signatures.
    pub sm3: Vec<Vec<u8>>,
}

impl SignatureHeader {
    /// Parses `t=…,v1=…,sm3=…`; unknown schemes are ignored (forward compatible).
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let mut timestamp = None;
        let (mut v1, mut sm3) = (Vec::new(), Vec::new());
        for part in header.split(',') {
            let (key, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
            match key {
                "t" => timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
                "v1" => v1.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
                "sm3" => sm3.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if v1.is_empty() && sm3.is_empty() {
            return Err(SignatureError::Malformed);
        }
        Ok(Self { timestamp, v1, sm3 })
    }

    /// Checks the timestamp against `now` and the signatures against `secrets`.
    pub fn verify<'a>(
        &self,
        signed: &[u8],
        secrets: impl IntoIterator<Item = &'a str>,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        // abs_diff: a timestamp at either end of i64 is stale, not an overflow.
        if now.timestamp().abs_diff(self.timestamp) > TOLERANCE_SECONDS.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        for secret in secrets {
            let (t, secret) = (self.timestamp, secret.as_bytes());
            if self.v1.iter().any(|c| verifies::<Hmac<Sha256>>(secret, t, signed, c))
                || self.sm3.iter().any(|c| verifies::<Hmac<Sm3>>(secret, t, signed, c))
            {
                return Ok(());
            }
        }
        Err(SignatureError::Mismatch)
    }
}

/// The `X-Signature` value a partner sends: `t=…,v1=…` (and `sm3=…` when asked).
pub fn sign(secret: &str, timestamp: i64, signed: &[u8], with_sm3: bool) -> String {
    let secret = secret.as_bytes();
    let mut header = format!("t={timestamp}");
    if let Some(v1) = hex_signature::<Hmac<Sha256>>(secret, timestamp, signed) {
        header.push_str(&format!(",v1={v1}"));
    }
    if with_sm3 && let Some(sm3) = hex_signature::<Hmac<Sm3>>(secret, timestamp, signed) {
        header.push_str(&format!(",sm3={sm3}"));
    }
    header
}

/// The MAC `M` keyed with `secret`, over `"<timestamp>.<signed>"`.
fn keyed<M: Mac + KeyInit>(secret: &[u8], timestamp: i64, signed: &[u8]) -> Option<M> {
    let mut mac = <M as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(signed);
    Some(mac)
}

/// Whether `candidate` is the MAC `M` of the signed content (constant-time).
fn verifies<M: Mac + KeyInit>(secret: &[u8], timestamp: i64, signed: &[u8], candidate: &[u8]) -> bool {
    keyed::<M>(secret, timestamp, signed).is_some_and(|mac| mac.verify_slice(candidate).is_ok())
}

/// The MAC `M` of the signed content, in hex.
fn hex_signature<M: Mac + KeyInit>(secret: &[u8], timestamp: i64, signed: &[u8]) -> Option<String> {
    keyed::<M>(secret, timestamp, signed).map(|mac| hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_728_000_000, 0).single().expect("time")
    }

    #[test]
    fn a_fresh_signature_with_a_valid_secret_verifies() {
        let header = SignatureHeader::parse(&sign("secret-a", 1_728_000_000, b"body", false)).expect("parse");
        assert_eq!(header.verify(b"body", ["secret-a"], now()), Ok(()));
        assert_eq!(header.verify(b"body!", ["secret-a"], now()), Err(SignatureError::Mismatch));
        assert_eq!(header.verify(b"body", ["secret-b"], now()), Err(SignatureError::Mismatch));
    }

    #[test]
    fn sm3_signatures_verify_alone() {
        let full = sign("secret-a", 1_728_000_000, b"body", true);
        let sm3_only = full.split(',').filter(|p| !p.starts_with("v1=")).collect::<Vec<_>>().join(",");
        let header = SignatureHeader::parse(&sm3_only).expect("parse");
        assert_eq!(header.sm3.len(), 1);
        assert_eq!(header.verify(b"body", ["secret-a"], now()), Ok(()));
    }

    /// The vectors published in docs/court-api.md, computed with Python's hmac over OpenSSL.
    fn vectors() -> Vec<(String, i64, Vec<u8>, String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/court-push");
        let text = std::fs::read_to_string(dir.join("signature-vectors.json")).expect("vectors");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        doc["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .map(|v| {
                let signed = match v["signed_file"].as_str() {
                    Some(file) => std::fs::read(dir.join(file)).expect("signed file"),
                    None => v["signed"].as_str().expect("signed").as_bytes().to_vec(),
                };
                let text = |k: &str| v[k].as_str().expect(k).to_owned();
                (text("secret"), v["t"].as_i64().expect("t"), signed, text("v1"), text("sm3"))
            })
            .collect()
    }

    #[test]
    fn signatures_equal_the_published_known_answer_vectors() {
        let vectors = vectors();
        assert_eq!(vectors.len(), 3);
        for (secret, t, signed, v1, sm3) in vectors {
            assert_eq!(sign(&secret, t, &signed, true), format!("t={t},v1={v1},sm3={sm3}"));
            let at = Utc.timestamp_opt(t, 0).single().expect("time");
            for header in [format!("t={t},v1={v1}"), format!("t={t},sm3={sm3}")] {
                let parsed = SignatureHeader::parse(&header).expect("parse");
                assert_eq!(parsed.verify(&signed, [secret.as_str()], at), Ok(()), "{header}");
                assert_eq!(parsed.verify(b"other", [secret.as_str()], at), Err(SignatureError::Mismatch));
            }
        }
    }

    #[test]
    fn an_extreme_timestamp_is_stale_not_an_overflow() {
        for t in [i64::MIN, i64::MAX, i64::MIN + 1] {
            let header = SignatureHeader::parse(&format!("t={t},v1=00")).expect("parse");
            assert_eq!(header.verify(b"body", ["s"], now()), Err(SignatureError::Stale), "t={t}");
        }
    }

    #[test]
    fn any_valid_secret_works_during_rotation() {
        let header = SignatureHeader::parse(&sign("old", 1_728_000_000, b"body", false)).expect("parse");
        assert_eq!(header.verify(b"body", ["new", "old"], now()), Ok(()));
    }

    #[test]
    fn stale_and_malformed_headers_are_refused() {
        let header = SignatureHeader::parse(&sign("s", 1_728_000_000 - 301, b"body", false)).expect("parse");
        assert_eq!(header.verify(b"body", ["s"], now()), Err(SignatureError::Stale));
        assert_eq!(SignatureHeader::parse("v1=abcd"), Err(SignatureError::Malformed));
        assert_eq!(SignatureHeader::parse("t=1,v1=zz"), Err(SignatureError::Malformed));
        assert_eq!(SignatureHeader::parse("t=1"), Err(SignatureError::Malformed));
    }
}
