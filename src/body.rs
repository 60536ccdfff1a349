//! Request bodies: the size limit and `Content-Encoding`.
//!
//! Upstream wraps every non-API request whose `Content-Encoding` is `gzip` in a gzip
//! reader, which reads the gzip header at once: an empty body answers 400 `EOF` even on
//! a GET. The header is matched case-insensitively, as upstream 1.6 and later do (1.5.1
//! matched it exactly). `snappy` (framed) is accepted as later upstream versions do.
//! Decompression stops at the size limit, so a small compressed body cannot expand into
//! unbounded memory.

use std::io::Read;

use crate::error::HttpError;

/// The encodings a request body may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    Identity,
    Gzip,
    Snappy,
}

impl BodyEncoding {
    /// From the `Content-Encoding` header, matched case-insensitively as upstream 1.6+
    /// does (`strings.ToLower`); anything else is the identity, as upstream has it.
    pub fn from_header(value: Option<&[u8]>) -> BodyEncoding {
        match value {
            Some(v) if v.eq_ignore_ascii_case(b"gzip") => BodyEncoding::Gzip,
            Some(v) if v.eq_ignore_ascii_case(b"snappy") => BodyEncoding::Snappy,
            _ => BodyEncoding::Identity,
        }
    }
}

/// What Go's `gzip.NewReader` says about the first bytes of a body, if it refuses them.
pub fn gzip_header_error(body: &[u8]) -> Option<HttpError> {
    let message = if body.is_empty() {
        "EOF"
    } else if body.len() < 10 {
        "unexpected EOF"
    } else if body[0] != 0x1f || body[1] != 0x8b || body[2] != 8 {
        "gzip: invalid header"
    } else {
        return None;
    };
    Some(HttpError::Encoding(message.to_string()))
}

/// Decodes `body` into at most `limit` bytes (413 beyond). The pipeline has already read
/// the raw body within the limit and, for gzip, checked its header (once, before any
/// handler, as upstream's wrapper does); what is left here is the decompression.
pub fn decode(body: &[u8], encoding: BodyEncoding, limit: usize) -> Result<Vec<u8>, HttpError> {
    match encoding {
        BodyEncoding::Identity => Ok(body.to_vec()),
        BodyEncoding::Gzip => read_limited(flate2::read::MultiGzDecoder::new(body), limit, |e| format!("gzip: {e}")),
        BodyEncoding::Snappy => read_limited(snap::read::FrameDecoder::new(body), limit, |e| format!("snappy: {e}")),
    }
}

fn read_limited(
    reader: impl Read,
    limit: usize,
    describe: impl Fn(std::io::Error) -> String,
) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    let read = reader.take(limit as u64 + 1).read_to_end(&mut out);
    if let Err(e) = read {
        let message =
            if e.kind() == std::io::ErrorKind::UnexpectedEof { "unexpected EOF".to_string() } else { describe(e) };
        return Err(HttpError::Encoding(message));
    }
    if out.len() > limit {
        return Err(HttpError::BodyTooLarge(limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_roundtrip_and_bomb() {
        assert_eq!(decode(&gzip(b"m 1\n"), BodyEncoding::Gzip, 100).unwrap(), b"m 1\n");
        // 10 MB of zeros compress to ~10 kB: refused at the limit, not after inflating.
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 100_000);
        assert!(matches!(decode(&bomb, BodyEncoding::Gzip, 1 << 20), Err(HttpError::BodyTooLarge(_))));
    }

    #[test]
    fn the_encoding_is_matched_case_insensitively_as_upstream_1_6_does() {
        for gzip in [&b"gzip"[..], b"GZIP", b"Gzip"] {
            assert_eq!(BodyEncoding::from_header(Some(gzip)), BodyEncoding::Gzip);
        }
        assert_eq!(BodyEncoding::from_header(Some(b"SNAPPY")), BodyEncoding::Snappy);
        for other in [&b"deflate"[..], b"gzip, br", b" gzip", b""] {
            assert_eq!(BodyEncoding::from_header(Some(other)), BodyEncoding::Identity);
        }
        assert_eq!(BodyEncoding::from_header(None), BodyEncoding::Identity);
    }

    #[test]
    fn gzip_header_errors() {
        assert_eq!(gzip_header_error(b"").unwrap().to_string(), "EOF");
        assert_eq!(gzip_header_error(b"gm 1\n").unwrap().to_string(), "unexpected EOF");
        assert_eq!(gzip_header_error(b"not gzip at all\n").unwrap().to_string(), "gzip: invalid header");
    }

    #[test]
    fn snappy_framed() {
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(b"m 1\n").unwrap();
        let body = w.into_inner().unwrap();
        assert_eq!(decode(&body, BodyEncoding::Snappy, 100).unwrap(), b"m 1\n");
        assert!(decode(b"garbage", BodyEncoding::Snappy, 100).is_err());
    }
}
