//! A minimal HTTP/1.1 client over a tokio TCP stream, for the outbox's deliveries and the
//! benchmark's load generator.
//!
//! Why not a client crate: trent-record must build in seconds without new heavy
//! dependencies, and all it needs is `POST`/`GET` of JSON to another trent over plain HTTP
//! on a trusted network or loopback (TLS belongs to a terminating proxy in front of both
//! ends). `https://` URLs are refused with an error saying so, never sent in clear.
//! Responses are read by `Content-Length` or chunked transfer coding; connections may be
//! kept alive ([`Conn`]) or used once ([`request`]).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest response body read (64 MiB).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Client errors (all transient from the sender's point of view except [`HttpError::Url`]).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host[:port]/path`.
    #[error("URL {0:?}: expected http://host[:port]/path (https: put a TLS proxy on loopback)")]
    Url(String),
    /// Connecting, sending or receiving failed.
    #[error("{doing} {addr}: {source}")]
    Io {
        /// What the client was doing.
        doing: &'static str,
        /// host:port.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("{0}: no response within the timeout")]
    Timeout(String),
    /// The response is not HTTP/1.1 as expected.
    #[error("{addr}: malformed response: {detail}")]
    Protocol {
        /// host:port.
        addr: String,
        /// What is wrong.
        detail: String,
    },
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port`.
    pub authority: String,
    /// Path and query (from `/`).
    pub path: String,
}

impl Url {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Url, HttpError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::Url(url.to_string()))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic() && b != b'@') {
            return Err(HttpError::Url(url.to_string()));
        }
        let authority = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HttpError::Url(url.to_string()));
        }
        Ok(Url {
            authority,
            path: path.to_string(),
        })
    }
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// One kept-alive connection.
#[derive(Debug)]
pub struct Conn {
    stream: BufReader<TcpStream>,
    authority: String,
}

impl Conn {
    /// Connects to `host:port`.
    pub async fn connect(authority: &str, timeout: Duration) -> Result<Conn, HttpError> {
        let s = tokio::time::timeout(timeout, TcpStream::connect(authority))
            .await
            .map_err(|_| HttpError::Timeout(authority.to_string()))?
            .map_err(|source| HttpError::Io {
                doing: "connecting to",
                addr: authority.to_string(),
                source,
            })?;
        let _ = s.set_nodelay(true);
        Ok(Conn {
            stream: BufReader::new(s),
            authority: authority.to_string(),
        })
    }

    /// Sends one request and reads its response (the connection stays usable unless the
    /// server closes it).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let addr = self.authority.clone();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        if let Some(b) = body {
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let io = |doing: &'static str| {
            let addr = addr.clone();
            move |source| HttpError::Io {
                doing,
                addr,
                source,
            }
        };
        let fut = async {
            let s = self.stream.get_mut();
            s.write_all(head.as_bytes())
                .await
                .map_err(io("sending to"))?;
            if let Some(b) = body {
                s.write_all(b).await.map_err(io("sending to"))?;
            }
            s.flush().await.map_err(io("sending to"))?;
            read_response(&mut self.stream, &addr).await
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| HttpError::Timeout(self.authority.clone()))?
    }
}

fn protocol(addr: &str, detail: impl Into<String>) -> HttpError {
    HttpError::Protocol {
        addr: addr.to_string(),
        detail: detail.into(),
    }
}

async fn read_line(r: &mut BufReader<TcpStream>, addr: &str) -> Result<String, HttpError> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(64 * 1024)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|source| HttpError::Io {
            doing: "reading from",
            addr: addr.to_string(),
            source,
        })?;
    if n == 0 {
        return Err(protocol(
            addr,
            "connection closed before a complete response",
        ));
    }
    if !line.ends_with(b"\n") {
        return Err(protocol(addr, "header line too long or truncated"));
    }
    String::from_utf8(line)
        .map(|l| l.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|_| protocol(addr, "header is not UTF-8"))
}

async fn read_response(r: &mut BufReader<TcpStream>, addr: &str) -> Result<Response, HttpError> {
    let status_line = read_line(r, addr).await?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(protocol(addr, format!("status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol(addr, format!("status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, addr).await?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| protocol(addr, format!("header line {line:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        if headers.len() > 200 {
            return Err(protocol(addr, "more than 200 headers"));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let io = |source| HttpError::Io {
        doing: "reading from",
        addr: addr.to_string(),
        source,
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_line(r, addr).await?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| protocol(addr, format!("chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !read_line(r, addr).await?.is_empty() {}
                break;
            }
            if body.len() + size > MAX_RESPONSE_BYTES {
                return Err(protocol(addr, "response body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).await.map_err(io)?;
            read_line(r, addr).await?;
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| protocol(addr, format!("Content-Length {len:?}")))?;
        if len > MAX_RESPONSE_BYTES {
            return Err(protocol(addr, "response body too large"));
        }
        body.resize(len, 0);
        r.read_exact(&mut body).await.map_err(io)?;
    } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
        (&mut *r)
            .take(MAX_RESPONSE_BYTES as u64)
            .read_to_end(&mut body)
            .await
            .map_err(io)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// One request on a fresh connection (`Connection: close`).
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let u = Url::parse(url)?;
    let mut conn = Conn::connect(&u.authority, timeout).await?;
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("Connection", "close"));
    conn.send(method, &u.path, &all, body, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/fhir").unwrap();
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.path, "/fhir");
        assert_eq!(Url::parse("http://record").unwrap().authority, "record:80");
        assert_eq!(Url::parse("http://record").unwrap().path, "/");
        assert!(matches!(
            Url::parse("https://x/fhir"),
            Err(HttpError::Url(_))
        ));
        assert!(Url::parse("http:///x").is_err());
        assert!(Url::parse("http://a b/").is_err());
    }
}
