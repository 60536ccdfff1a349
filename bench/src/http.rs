//! A minimal HTTP/1.1 client over one keep-alive connection, so that the load generator
//! costs the machine as little as possible (the server under test shares its two cores).
//! It reads the status and the body's length (Content-Length or chunked), nothing more.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One persistent connection; reconnects after the server closes it.
pub struct Connection {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

/// What came back: status and body size in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Response {
    pub status: u16,
    pub body_bytes: usize,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Self {
        Connection { addr, stream: None }
    }

    fn stream(&mut self) -> std::io::Result<&mut BufReader<TcpStream>> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(120)))?;
            self.stream = Some(BufReader::with_capacity(64 * 1024, stream));
        }
        Ok(self.stream.as_mut().expect("connected above"))
    }

    /// Sends one request and reads the whole response. On an I/O error the connection is
    /// dropped (the next request reconnects) and the error returned.
    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Response> {
        let result = self.exchange(method, path, body);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Response> {
        let host = self.addr;
        let stream = self.stream()?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        if !body.is_empty() || method != "GET" {
            head.push_str(&format!("Content-Type: text/plain\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        stream.get_mut().write_all(&request)?;

        let mut line = String::new();
        read_line(stream, &mut line)?;
        let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad(&line))?;
        let (mut length, mut chunked, mut close) = (0usize, false, false);
        loop {
            line.clear();
            read_line(stream, &mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else { continue };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().map_err(|_| bad(header))?,
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let body_bytes = if chunked { skip_chunked(stream)? } else { skip(stream, length)? };
        if close {
            self.stream = None;
        }
        Ok(Response { status, body_bytes })
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad response line {what:?}"))
}

fn read_line(stream: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<()> {
    if stream.read_line(line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    Ok(())
}

fn skip(stream: &mut BufReader<TcpStream>, mut n: usize) -> std::io::Result<usize> {
    let total = n;
    while n > 0 {
        let available = stream.fill_buf()?;
        if available.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "body cut short"));
        }
        let take = available.len().min(n);
        stream.consume(take);
        n -= take;
    }
    Ok(total)
}

fn skip_chunked(stream: &mut BufReader<TcpStream>) -> std::io::Result<usize> {
    let mut total = 0;
    let mut line = String::new();
    loop {
        line.clear();
        read_line(stream, &mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| bad(&line))?;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                line.clear();
                read_line(stream, &mut line)?;
                if line.trim().is_empty() {
                    return Ok(total);
                }
            }
        }
        total += skip(stream, size)?;
        let mut crlf = [0u8; 2];
        stream.read_exact(&mut crlf)?;
    }
}
