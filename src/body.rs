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
/// handler, as upstream's wrapper does); what is left here is the decompression. Any
/// error of the decompression refuses the body (400): what a protobuf push gets.
pub fn decode(body: &[u8], encoding: BodyEncoding, limit: usize) -> Result<Vec<u8>, HttpError> {
    let (out, error) = decompress(body, encoding, limit)?;
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// [`decode`] for a text push, as upstream 1.5.1 reads one: its text parser ends the input
/// without an error at any read error met at the start of a line, so a gzip stream that
/// fails after a whole line (a bad checksum, a cut or missing trailer, a writer flushed but
/// never closed, bytes after the stream) pushes the lines before it, and one that fails
/// inside a line is refused with the decompression's error. Recorded against upstream
/// 1.5.1 (`tests/it` and `body` tests). Only gzip: later upstream versions, the ones that
/// accept snappy, end the input only at its real end.
pub fn decode_text(body: &[u8], encoding: BodyEncoding, limit: usize) -> Result<Vec<u8>, HttpError> {
    let (out, error) = decompress(body, encoding, limit)?;
    match error {
        Some(e) if !(encoding == BodyEncoding::Gzip && at_line_start(&out)) => Err(e),
        _ => Ok(out),
    }
}

/// Whether the text ends where Go's parser starts a line: nothing, or a new-line followed
/// only by blanks and tabs (it skips those before it reads on).
fn at_line_start(text: &[u8]) -> bool {
    let rest = text.iter().rposition(|b| *b != b' ' && *b != b'\t');
    rest.is_none_or(|i| text[i] == b'\n')
}

/// The decompressed body and the error that ended the decompression, if one did (the
/// bytes before it are kept); 413 beyond `limit`.
fn decompress(body: &[u8], encoding: BodyEncoding, limit: usize) -> Result<(Vec<u8>, Option<HttpError>), HttpError> {
    match encoding {
        BodyEncoding::Identity => Ok((body.to_vec(), None)),
        BodyEncoding::Gzip => read_limited(flate2::read::MultiGzDecoder::new(body), limit, |e| {
            // Go's words for the one error both name alike.
            if e.to_string().contains("checksum") {
                "gzip: invalid checksum".to_string()
            } else {
                format!("gzip: {e}")
            }
        }),
        BodyEncoding::Snappy => read_limited(snap::read::FrameDecoder::new(body), limit, |e| format!("snappy: {e}")),
    }
}

fn read_limited(
    reader: impl Read,
    limit: usize,
    describe: impl Fn(std::io::Error) -> String,
) -> Result<(Vec<u8>, Option<HttpError>), HttpError> {
    let mut out = Vec::new();
    let read = reader.take(limit as u64 + 1).read_to_end(&mut out);
    if out.len() > limit {
        return Err(HttpError::BodyTooLarge(limit));
    }
    let error = read.err().map(|e| {
        let message =
            if e.kind() == std::io::ErrorKind::UnexpectedEof { "unexpected EOF".to_string() } else { describe(e) };
        HttpError::Encoding(message)
    });
    Ok((out, error))
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

    /// Each case answered by upstream 1.5.1 to a text `PUT` with that gzip body: 200 with
    /// the lines before a failure met at the start of a line, 400 with the error met inside
    /// one. A protobuf push is refused in every case.
    #[test]
    fn a_gzip_text_body_that_fails_after_a_whole_line_pushes_the_lines_before() {
        let whole = gzip(b"m 1\n");
        let bad_checksum = |text: &[u8]| {
            let mut z = gzip(text);
            let at = z.len() - 8;
            z[at] ^= 0xff;
            z
        };
        let flushed = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"m 1\n").unwrap();
            e.flush().unwrap();
            e.get_ref().clone()
        };
        let pushed: [(&str, Vec<u8>, &[u8]); 7] = [
            ("bad checksum", bad_checksum(b"m 1\n"), b"m 1\n"),
            ("trailer cut by 4", whole[..whole.len() - 4].to_vec(), b"m 1\n"),
            ("trailer cut by 8", whole[..whole.len() - 8].to_vec(), b"m 1\n"),
            ("bytes after the stream", [&whole[..], b"junk"].concat(), b"m 1\n"),
            ("flushed, never closed", flushed, b"m 1\n"),
            ("blanks after the last line", bad_checksum(b"m 1\n \t "), b"m 1\n \t "),
            ("a header, then no stream", [&whole[..10], &[0xff; 6][..]].concat(), b""),
        ];
        for (case, body, text) in pushed {
            assert_eq!(decode_text(&body, BodyEncoding::Gzip, 100).unwrap(), text, "{case}");
            assert!(matches!(decode(&body, BodyEncoding::Gzip, 100), Err(HttpError::Encoding(_))), "{case}");
        }
        for text in [&b"m 1"[..], b"m 1\n# HELP x"] {
            let refused = decode_text(&bad_checksum(text), BodyEncoding::Gzip, 100).unwrap_err();
            assert_eq!(refused.to_string(), "gzip: invalid checksum", "{text:?}");
        }
        assert_eq!(decode_text(&whole, BodyEncoding::Gzip, 100).unwrap(), b"m 1\n");
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
