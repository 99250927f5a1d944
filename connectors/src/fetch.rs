//! HTTP GET and POST with retries: timeouts, transport errors, 5xx and 429 are
//! retried with exponential backoff and jitter, honouring `Retry-After`; a
//! body that ends early is an error like any other, so a caller never acts on
//! half a page. Other 4xx answers are not retried: they are the caller's bug.

use std::time::Duration;

use rand::Rng;

/// TLS for https partners beyond the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// Extra trusted CAs, PEM (a private CA of the government network).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and its key, PEM, for partners that ask for one.
    pub identity_pem: Option<Vec<u8>>,
}

static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();

/// Why the partner client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file is not PEM certificates.
    #[error("CA file: {0}")]
    Ca(reqwest::Error),
    /// The CA file holds no certificate.
    #[error("CA file: no CERTIFICATE block")]
    NoCa,
    /// The client certificate or its key is unusable.
    #[error("client certificate: {0}")]
    Identity(reqwest::Error),
    /// The TLS stack refused the configuration.
    #[error("HTTP client: {0}")]
    Build(reqwest::Error),
    /// [`configure_client`] was called twice.
    #[error("the partner HTTP client was already built")]
    AlreadyBuilt,
}

/// Builds the partner client once per process with `tls` (call it before the
/// first [`client`]; a second call is refused). rustls, with the aws-lc-rs
/// provider, verifies servers against the system's roots plus `tls.ca_pem`.
pub fn configure_client(tls: &ClientTls) -> Result<(), ClientError> {
    let client = build_client(tls)?;
    CLIENT.set(client).map_err(|_| ClientError::AlreadyBuilt)
}

/// A client with `tls` (what [`configure_client`] installs).
pub fn build_client(tls: &ClientTls) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder();
    if let Some(pem) = &tls.ca_pem {
        let cas = reqwest::Certificate::from_pem_bundle(pem).map_err(ClientError::Ca)?;
        if cas.is_empty() {
            return Err(ClientError::NoCa);
        }
        for ca in cas {
            builder = builder.add_root_certificate(ca);
        }
    }
    if let Some(pem) = &tls.identity_pem {
        builder = builder.identity(reqwest::Identity::from_pem(pem).map_err(ClientError::Identity)?);
    }
    builder.build().map_err(ClientError::Build)
}

/// The partner HTTP client: the configured one, or one with the system's roots.
/// Clones share one connection pool.
pub fn client() -> reqwest::Client {
    CLIENT.get_or_init(reqwest::Client::new).clone()
}

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled each retry, with up to 50% jitter.
    pub base_delay: Duration,
    /// Longest wait between attempts (also caps `Retry-After`).
    pub max_delay: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a fetch failed for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Every attempt failed; the last reason.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    /// The partner refused the request (4xx other than 429).
    #[error("partner answered {status}: {body}")]
    Refused { status: u16, body: String },
    /// The answer is larger than [`MAX_ANSWER_BYTES`]: not retried, never read whole.
    #[error("partner's answer is larger than {limit} bytes: refused (a page or file this large is a partner fault)")]
    TooLarge { limit: usize },
}

/// The largest answer read from a partner. A page of 5,000 case records is about
/// 5 MB and a day's housing file less; the cap keeps a misbehaving partner from
/// exhausting memory.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// The largest error body read from a partner (only its start is reported).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How long a `Retry-After` asks to wait: delay-seconds, or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`; a date already past means now).
pub fn retry_after_wait(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&chrono::Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

/// Reads a body up to `limit` bytes; `Ok(None)` when it is larger.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |n| n as usize));
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// How a request authenticates. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Not at all.
    None,
    /// `Authorization: Bearer …`.
    Bearer(String),
    /// HTTP basic: user and password.
    Basic(String, String),
    /// Our HMAC (docs/court-api.md § Authentication), as a partner: `X-Partner-Id`
    /// and `X-Signature` over the request path, signed afresh on each attempt.
    Hmac {
        /// Our id at the partner.
        partner_id: String,
        /// The shared secret.
        secret: String,
        /// Also an HMAC-SM3 signature.
        sm3: bool,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
            Self::Basic(user, _) => write!(f, "Basic({user:?}, ***)"),
            Self::Hmac { partner_id, sm3, .. } => write!(f, "Hmac({partner_id:?}, ***, sm3: {sm3})"),
        }
    }
}

/// GETs `url` (with a bearer token if given) and returns the whole body.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    policy: &RetryPolicy,
) -> Result<Vec<u8>, FetchError> {
    let auth = bearer.map_or(Auth::None, |t| Auth::Bearer(t.to_owned()));
    send(client, url, &auth, None, policy).await
}

/// GETs `url` authenticated by `auth` and returns the whole body.
pub async fn get_with(
    client: &reqwest::Client,
    url: &str,
    auth: &Auth,
    policy: &RetryPolicy,
) -> Result<Vec<u8>, FetchError> {
    send(client, url, auth, None, policy).await
}

/// POSTs `body` with its content type to `url` and returns the whole answer.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    policy: &RetryPolicy,
) -> Result<Vec<u8>, FetchError> {
    send(client, url, &Auth::None, Some((content_type, body)), policy).await
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    auth: &Auth,
    body: Option<(&str, Vec<u8>)>,
    policy: &RetryPolicy,
) -> Result<Vec<u8>, FetchError> {
    let mut last = String::new();
    for attempt in 1..=policy.attempts.max(1) {
        let mut request = match &body {
            None => client.get(url),
            Some((content_type, bytes)) => {
                client.post(url).header(reqwest::header::CONTENT_TYPE, *content_type).body(bytes.clone())
            }
        }
        .timeout(policy.timeout);
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => request = request.bearer_auth(token),
            Auth::Basic(user, password) => request = request.basic_auth(user, Some(password)),
            Auth::Hmac { partner_id, secret, sm3 } => {
                let path = reqwest::Url::parse(url).map(|u| u.path().to_owned()).unwrap_or_default();
                let signature = signing::sign(secret, chrono::Utc::now().timestamp(), path.as_bytes(), *sm3);
                request = request.header("X-Partner-Id", partner_id).header("X-Signature", signature);
            }
        }
        let mut retry_after = None;
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after_wait(v, chrono::Utc::now()));
                if status.is_success() {
                    match read_capped(response, MAX_ANSWER_BYTES).await {
                        Ok(Some(body)) => return Ok(body),
                        Ok(None) => return Err(FetchError::TooLarge { limit: MAX_ANSWER_BYTES }),
                        Err(e) => last = format!("body cut short or unreadable: {e}"),
                    }
                } else if status.is_server_error() || status.as_u16() == 429 {
                    last = format!("partner answered {status}");
                } else {
                    // An error body is read with a cap like any other answer.
                    let body = match read_capped(response, MAX_ERROR_BODY_BYTES).await {
                        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                        Ok(None) => format!("(an error body over {MAX_ERROR_BODY_BYTES} bytes, not read)"),
                        Err(e) => format!("(error body unreadable: {e})"),
                    };
                    return Err(FetchError::Refused {
                        status: status.as_u16(),
                        body: body.chars().take(500).collect(),
                    });
                }
            }
            Err(e) => last = format!("request failed: {e}"),
        }
        if attempt < policy.attempts {
            let backoff = policy.base_delay.saturating_mul(1 << (attempt - 1).min(16));
            let jitter = backoff.mul_f64(rand::rng().random_range(0.0..0.5));
            let wait = retry_after.unwrap_or(backoff + jitter).min(policy.max_delay);
            tracing::warn!(message = "fetch failed; retrying", url, attempt, wait_ms = wait.as_millis() as u64, reason = %last);
            tokio::time::sleep(wait).await;
        }
    }
    Err(FetchError::Exhausted { attempts: policy.attempts.max(1), last })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = chrono::Utc.with_ymd_and_hms(2015, 10, 21, 7, 27, 30).single().expect("time");
        assert_eq!(retry_after_wait("1", now), Some(Duration::from_secs(1)));
        assert_eq!(retry_after_wait(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after_wait("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after_wait("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO), "already past");
        assert_eq!(retry_after_wait("soon", now), None);
    }
}
