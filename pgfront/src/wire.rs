//! The PostgreSQL frontend/backend protocol, version 3.0: reading the
//! client's messages and writing the server's, as the protocol chapter of
//! PostgreSQL's documentation lays them out. Nothing here knows SQL.

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// The largest message a client may send once logged in (a query text, a Bind's values).
pub const MAX_MESSAGE: usize = 16 << 20;

/// The largest message a client may send before it has logged in (a
/// startup packet, a SASL message): a few KiB, so that a connection that
/// claims a huge one costs nothing.
pub const MAX_PRELOGIN_MESSAGE: usize = 8 << 10;

/// Startup-phase request codes.
pub const SSL_REQUEST: i32 = 80_877_103;
/// GSSAPI encryption request (always refused).
pub const GSSENC_REQUEST: i32 = 80_877_104;
/// A cancel request.
pub const CANCEL_REQUEST: i32 = 80_877_102;
/// Protocol 3.0.
pub const PROTOCOL_3: i32 = 196_608;

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// A message the protocol does not allow.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

/// The first message of a connection.
#[derive(Debug)]
pub enum Startup {
    /// `SSLRequest`.
    Ssl,
    /// `GSSENCRequest`.
    GssEnc,
    /// `CancelRequest` for a backend's process id and secret.
    Cancel {
        /// The backend's id.
        pid: i32,
        /// Its secret.
        secret: i32,
    },
    /// `StartupMessage`: protocol version and parameters.
    Start {
        /// The version asked for.
        version: i32,
        /// `user`, `database`, `application_name`, …
        params: Vec<(String, String)>,
    },
}

/// Reads the first message (no type byte).
pub async fn read_startup<R: AsyncRead + Unpin>(r: &mut R) -> Result<Startup, WireError> {
    let len = r.read_i32().await?;
    if !(8..=MAX_PRELOGIN_MESSAGE as i32).contains(&len) {
        return Err(WireError::Protocol(format!("startup packet of {len} bytes")));
    }
    let mut body = vec![0u8; len as usize - 4];
    r.read_exact(&mut body).await?;
    let mut b = Body::new(&body);
    let code = b.i32()?;
    Ok(match code {
        SSL_REQUEST => Startup::Ssl,
        GSSENC_REQUEST => Startup::GssEnc,
        CANCEL_REQUEST => Startup::Cancel { pid: b.i32()?, secret: b.i32()? },
        version => {
            let mut params = Vec::new();
            loop {
                let name = b.cstr()?;
                if name.is_empty() {
                    break;
                }
                params.push((name, b.cstr()?));
            }
            Startup::Start { version, params }
        }
    })
}

/// A message after startup: its type byte and body.
#[derive(Debug)]
pub struct Message {
    /// The type byte (`Q`, `P`, `B`, …).
    pub tag: u8,
    /// The body, without type and length.
    pub body: Vec<u8>,
}

/// Reads one message of at most [`MAX_MESSAGE`] bytes; `None` at a clean end of the connection.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Message>, WireError> {
    read_message_within(r, MAX_MESSAGE).await
}

/// Reads one message of at most `max` bytes; a longer one is refused before
/// any of its body is read.
pub async fn read_message_within<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Message>, WireError> {
    let tag = match r.read_u8().await {
        Ok(tag) => tag,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = r.read_i32().await?;
    if len < 4 || len as usize > max {
        return Err(WireError::Protocol(format!("message {:?} of {len} bytes", tag as char)));
    }
    let mut body = vec![0u8; len as usize - 4];
    r.read_exact(&mut body).await?;
    Ok(Some(Message { tag, body }))
}

/// A cursor over a message body.
#[derive(Debug)]
pub struct Body<'a> {
    bytes: &'a [u8],
}

fn short() -> WireError {
    WireError::Protocol("message shorter than its fields".into())
}

impl<'a> Body<'a> {
    /// A cursor at the body's start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Body { bytes }
    }

    /// Reads `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(short());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// Reads a big-endian Int16.
    pub fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian Int32.
    pub fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a NUL-terminated UTF-8 string.
    pub fn cstr(&mut self) -> Result<String, WireError> {
        let end = self.bytes.iter().position(|b| *b == 0).ok_or_else(short)?;
        let text = std::str::from_utf8(&self.bytes[..end])
            .map_err(|_| WireError::Protocol("a string that is not UTF-8".into()))?
            .to_owned();
        self.bytes = &self.bytes[end + 1..];
        Ok(text)
    }

    /// The rest of the body.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// A column of a `RowDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Its name.
    pub name: String,
    /// The type's OID.
    pub type_oid: u32,
    /// The type's size (`-1` variable).
    pub type_len: i16,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// The server's messages, written into one buffer and sent at a flush.
#[derive(Debug, Default)]
pub struct Out {
    /// The bytes not yet sent.
    pub buf: Vec<u8>,
}

impl Out {
    fn begin(&mut self, tag: u8) -> usize {
        self.buf.push(tag);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    fn cstr(&mut self, s: &str) {
        // A NUL inside would end the string early; it cannot come from our texts.
        self.buf.extend(s.bytes().filter(|b| *b != 0));
        self.buf.push(0);
    }

    /// `Authentication*`: `code` and its data.
    pub fn authentication(&mut self, code: i32, data: &[u8]) {
        let at = self.begin(b'R');
        self.buf.extend_from_slice(&code.to_be_bytes());
        self.buf.extend_from_slice(data);
        self.end(at);
    }

    /// `NegotiateProtocolVersion`: the newest version spoken, and the
    /// protocol options (`_pq_.…`) asked for that are not known.
    pub fn negotiate_protocol_version(&mut self, version: i32, unknown_options: &[&str]) {
        let at = self.begin(b'v');
        self.buf.extend_from_slice(&version.to_be_bytes());
        self.buf.extend_from_slice(&(unknown_options.len() as i32).to_be_bytes());
        for option in unknown_options {
            self.cstr(option);
        }
        self.end(at);
    }

    /// `ParameterStatus`.
    pub fn parameter_status(&mut self, name: &str, value: &str) {
        let at = self.begin(b'S');
        self.cstr(name);
        self.cstr(value);
        self.end(at);
    }

    /// `BackendKeyData`.
    pub fn backend_key(&mut self, pid: i32, secret: i32) {
        let at = self.begin(b'K');
        self.buf.extend_from_slice(&pid.to_be_bytes());
        self.buf.extend_from_slice(&secret.to_be_bytes());
        self.end(at);
    }

    /// `ReadyForQuery` (always idle: the front end keeps no transaction).
    pub fn ready(&mut self) {
        let at = self.begin(b'Z');
        self.buf.push(b'I');
        self.end(at);
    }

    /// `ErrorResponse` or `NoticeResponse` (`tag` `E` or `N`).
    pub fn notice_or_error(&mut self, tag: u8, severity: &str, code: &str, message: &str, hint: Option<&str>) {
        let at = self.begin(tag);
        for (field, value) in [(b'S', severity), (b'V', severity), (b'C', code), (b'M', message)] {
            self.buf.push(field);
            self.cstr(value);
        }
        if let Some(hint) = hint {
            self.buf.push(b'H');
            self.cstr(hint);
        }
        self.buf.push(0);
        self.end(at);
    }

    /// `RowDescription`.
    pub fn row_description(&mut self, fields: &[FieldDescription]) {
        let at = self.begin(b'T');
        self.buf.extend_from_slice(&(fields.len() as i16).to_be_bytes());
        for f in fields {
            self.cstr(&f.name);
            self.buf.extend_from_slice(&0i32.to_be_bytes()); // table OID
            self.buf.extend_from_slice(&0i16.to_be_bytes()); // column number
            self.buf.extend_from_slice(&f.type_oid.to_be_bytes());
            self.buf.extend_from_slice(&f.type_len.to_be_bytes());
            self.buf.extend_from_slice(&(-1i32).to_be_bytes()); // type modifier
            self.buf.extend_from_slice(&f.format.to_be_bytes());
        }
        self.end(at);
    }

    /// Starts a `DataRow` of `columns` values; each value follows with
    /// [`Out::value`] or [`Out::null`], then [`Out::end_row`].
    pub fn begin_row(&mut self, columns: usize) -> usize {
        let at = self.begin(b'D');
        self.buf.extend_from_slice(&(columns as i16).to_be_bytes());
        at
    }

    /// A value of the row being written: its length, then its bytes (written by `write`).
    pub fn value(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        write(&mut self.buf);
        let len = (self.buf.len() - at - 4) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// A NULL of the row being written.
    pub fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// Ends the row begun at `at`.
    pub fn end_row(&mut self, at: usize) {
        self.end(at);
    }

    /// `CommandComplete` with its tag (`SELECT 5`, `SET`, …).
    pub fn command_complete(&mut self, tag: &str) {
        let at = self.begin(b'C');
        self.cstr(tag);
        self.end(at);
    }

    /// A message without a body: `1` ParseComplete, `2` BindComplete,
    /// `3` CloseComplete, `n` NoData, `I` EmptyQueryResponse, `s` PortalSuspended.
    pub fn empty(&mut self, tag: u8) {
        let at = self.begin(tag);
        self.end(at);
    }

    /// `ParameterDescription`.
    pub fn parameter_description(&mut self, oids: &[u32]) {
        let at = self.begin(b't');
        self.buf.extend_from_slice(&(oids.len() as i16).to_be_bytes());
        for oid in oids {
            self.buf.extend_from_slice(&oid.to_be_bytes());
        }
        self.end(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_startup_message_reads_its_parameters() {
        let mut packet = Vec::new();
        let body = b"\x00\x03\x00\x00user\0qc\0database\0wangban\0\0";
        packet.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        packet.extend_from_slice(body);
        match read_startup(&mut packet.as_slice()).await.expect("startup") {
            Startup::Start { version, params } => {
                assert_eq!(version, PROTOCOL_3);
                assert_eq!(params, [("user".into(), "qc".into()), ("database".into(), "wangban".into())]);
            }
            other => panic!("{other:?}"),
        }
        let ssl = [0, 0, 0, 8, 4, 210, 22, 47];
        assert!(matches!(read_startup(&mut ssl.as_slice()).await, Ok(Startup::Ssl)));
        let huge = [0x7f, 0, 0, 0, 0, 0, 0, 0];
        assert!(read_startup(&mut huge.as_slice()).await.is_err());
    }

    #[test]
    fn messages_carry_their_own_length() {
        let mut out = Out::default();
        out.command_complete("SELECT 1");
        assert_eq!(out.buf, b"C\x00\x00\x00\x0dSELECT 1\0");
        let mut out = Out::default();
        let row = out.begin_row(2);
        out.value(|b| b.extend_from_slice(b"42"));
        out.null();
        out.end_row(row);
        assert_eq!(out.buf, b"D\x00\x00\x00\x10\x00\x02\x00\x00\x00\x0242\xff\xff\xff\xff");
        let mut out = Out::default();
        out.negotiate_protocol_version(PROTOCOL_3, &["_pq_.x"]);
        assert_eq!(out.buf, b"v\x00\x00\x00\x13\x00\x03\x00\x00\x00\x00\x00\x01_pq_.x\0");
    }
}
