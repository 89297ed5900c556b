//! A minimal HTTP/1.1 client on a blocking socket, for one request only —
//! the bench's blocking invoke, written out once and sent again and again on
//! one keep-alive connection.
//!
//! It is the bench's measure of its own client: the same invoke timed
//! through `reqwest` (an async client on a Tokio runtime) and through this
//! (a `write` and a `read` on the calling thread) shows how much of a
//! row's latency is the client's, not the server's. It reads what axum
//! answers — a status line, headers, a `Content-Length` or chunked body —
//! and nothing more (no redirects, no `100 Continue`, no TLS).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use anyhow::{Context, Result, bail, ensure};

/// One keep-alive connection that sends one prepared request.
pub(super) struct RawConn {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
    line: String,
}

impl RawConn {
    /// Connects to `base` (`http://host:port`) and prepares a `POST` of
    /// `body` (JSON) to `path` with the `Authorization` value `auth`.
    pub(super) fn connect(base: &str, path: &str, auth: &str, body: &str) -> Result<RawConn> {
        let host = base
            .strip_prefix("http://")
            .with_context(|| format!("not an http:// URL: {base}"))?
            .trim_end_matches('/');
        let stream = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Ok(RawConn {
            reader: BufReader::new(stream),
            request: request.into_bytes(),
            line: String::new(),
        })
    }

    /// Sends the request and reads the answer into `body` (cleared first);
    /// returns the status code.
    pub(super) fn send(&mut self, body: &mut Vec<u8>) -> Result<u16> {
        body.clear();
        self.reader
            .get_mut()
            .write_all(&self.request)
            .context("sending the request")?;
        let status = self.status_line()?;
        let mut length = None;
        let mut chunked = false;
        loop {
            self.read_line()?;
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                bail!("a malformed header: {line:?}");
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().context("a bad Content-Length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                ensure!(
                    !value.eq_ignore_ascii_case("close"),
                    "the server closes the connection"
                );
            }
        }
        if chunked {
            self.chunks(body)?;
        } else {
            let length = length.context("neither Content-Length nor chunked")?;
            body.resize(length, 0);
            self.reader.read_exact(body).context("reading the body")?;
        }
        Ok(status)
    }

    fn read_line(&mut self) -> Result<()> {
        self.line.clear();
        let n = self
            .reader
            .read_line(&mut self.line)
            .context("reading the answer")?;
        ensure!(n > 0, "the server closed the connection");
        Ok(())
    }

    /// `HTTP/1.1 200 OK` → 200.
    fn status_line(&mut self) -> Result<u16> {
        self.read_line()?;
        self.line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("a malformed status line: {:?}", self.line))
    }

    /// A chunked body: `{hex size}\r\n{data}\r\n` until size 0, then the
    /// (empty) trailer.
    fn chunks(&mut self, body: &mut Vec<u8>) -> Result<()> {
        loop {
            self.read_line()?;
            let size = self.line.trim_end();
            let size = size.split(';').next().unwrap_or(size);
            let size = usize::from_str_radix(size.trim(), 16).context("a bad chunk size")?;
            if size == 0 {
                loop {
                    self.read_line()?;
                    if self.line.trim_end().is_empty() {
                        return Ok(());
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            let chunk = body.get_mut(start..).context("chunk bounds")?;
            self.reader.read_exact(chunk).context("reading a chunk")?;
            self.read_line()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves `answers`, one per request, on one connection.
    fn serve(answers: Vec<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            for answer in answers {
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                assert_eq!(body, br#"{"a":1}"#);
                reader.get_mut().write_all(answer.as_bytes()).unwrap();
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn reads_sized_and_chunked_bodies_on_one_connection() {
        let base = serve(vec![
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            "HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ]);
        let mut conn = RawConn::connect(&base, "/x", "Basic eDp5", r#"{"a":1}"#).unwrap();
        let mut body = Vec::new();
        assert_eq!(conn.send(&mut body).unwrap(), 200);
        assert_eq!(body, b"hello");
        assert_eq!(conn.send(&mut body).unwrap(), 502);
        assert_eq!(body, b"abcde");
        assert!(conn.send(&mut body).is_err());
    }
}
