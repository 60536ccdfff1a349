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

/// What Go's `gzip.NewReader` says about the first bytes of a body, if it refuses them:
/// it reads the whole first member header (extra field, file name, comment, header
/// checksum), so a header that fails anywhere is refused before anything is decoded,
/// whatever the route.
pub fn gzip_header_error(body: &[u8]) -> Option<HttpError> {
    go_gzip_header(body).err().map(|message| HttpError::Encoding(message.to_string()))
}

/// The length of the gzip member header `body` starts with, read as Go's
/// `gzip.Reader.readHeader` reads it (its reserved flag bits ignored), or Go's error.
fn go_gzip_header(body: &[u8]) -> Result<usize, &'static str> {
    const EXTRA: u8 = 1 << 2;
    const NAME: u8 = 1 << 3;
    const COMMENT: u8 = 1 << 4;
    const HEADER_CRC: u8 = 1 << 1;
    /// Go reads a file name or comment into a 512-byte buffer, terminator included.
    const STRING_MAX: usize = 512;
    const SHORT: &str = "unexpected EOF";
    if body.is_empty() {
        return Err("EOF");
    }
    if body.len() < 10 {
        return Err(SHORT);
    }
    if body[0] != 0x1f || body[1] != 0x8b || body[2] != 8 {
        return Err("gzip: invalid header");
    }
    let flags = body[3];
    let mut at = 10;
    if flags & EXTRA != 0 {
        let len = body.get(at..at + 2).ok_or(SHORT)?;
        at += 2 + u16::from_le_bytes([len[0], len[1]]) as usize;
        if at > body.len() {
            return Err(SHORT);
        }
    }
    for flag in [NAME, COMMENT] {
        if flags & flag != 0 {
            let rest = &body[at..];
            match rest.iter().take(STRING_MAX).position(|b| *b == 0) {
                Some(nul) => at += nul + 1,
                None if rest.len() >= STRING_MAX => return Err("gzip: invalid header"),
                None => return Err(SHORT),
            }
        }
    }
    if flags & HEADER_CRC != 0 {
        let sum = body.get(at..at + 2).ok_or(SHORT)?;
        if u16::from_le_bytes([sum[0], sum[1]]) != crc32fast::hash(&body[..at]) as u16 {
            return Err("gzip: invalid header");
        }
        at += 2;
    }
    Ok(at)
}

/// Decodes `body` into at most `limit` bytes (413 beyond). The pipeline has already read
/// the raw body within the limit and, for gzip, checked its header (once, before any
/// handler, as upstream's wrapper does); what is left here is the decompression. Any
/// error of the decompression refuses the body (400): what a protobuf push gets.
pub fn decode(body: &[u8], encoding: BodyEncoding, limit: usize) -> Result<Vec<u8>, HttpError> {
    let (out, failure) = decompress(body, encoding, limit)?;
    match failure {
        Some(f) => Err(f.error),
        None => Ok(out),
    }
}

/// [`decode`] for a text push, as upstream 1.5.1 reads one: its text parser ends the input
/// without an error at any read error met at the start of a line, so a gzip body that
/// fails after a whole line pushes the lines before it, and one that fails inside a line
/// is refused with the decompression's error. Recorded against upstream 1.5.1 (`body`
/// tests). Only failures met once every byte decodable is decoded count as an end: the
/// input runs out (a cut stream, a writer flushed but never closed), the trailer's
/// checksum or size is wrong, or bytes after a member are no gzip header. Corrupt
/// deflate data is refused wherever it is: the decoder does not hand over the bytes
/// decoded before it the way Go's does, so where Go would have stopped is not known, and
/// a prefix cut elsewhere would push part of the body as if it were all. Only gzip: later
/// upstream versions, the ones that accept snappy, end the input only at its real end.
pub fn decode_text(body: &[u8], encoding: BodyEncoding, limit: usize) -> Result<Vec<u8>, HttpError> {
    let (out, failure) = decompress(body, encoding, limit)?;
    match failure {
        Some(f) if !(encoding == BodyEncoding::Gzip && f.ends_input && at_line_start(&out)) => Err(f.error),
        _ => Ok(out),
    }
}

/// Why a decompression stopped early.
struct Failure {
    error: HttpError,
    /// Met after every byte decodable was decoded (see [`decode_text`]).
    ends_input: bool,
}

/// Whether the text ends where Go's parser starts a line: nothing, or a new-line followed
/// only by blanks and tabs (it skips those before it reads on).
fn at_line_start(text: &[u8]) -> bool {
    let rest = text.iter().rposition(|b| *b != b' ' && *b != b'\t');
    rest.is_none_or(|i| text[i] == b'\n')
}

/// The decompressed body and why the decompression stopped early, if it did (the bytes
/// before are kept); 413 beyond `limit`.
fn decompress(body: &[u8], encoding: BodyEncoding, limit: usize) -> Result<(Vec<u8>, Option<Failure>), HttpError> {
    match encoding {
        BodyEncoding::Identity => Ok((body.to_vec(), None)),
        BodyEncoding::Gzip => {
            let body = without_reserved_flags(body);
            read_limited(flate2::read::MultiGzDecoder::new(&*body), limit, |e| {
                // flate2's words: a trailer that does not match (checksum or size), and
                // bytes after a member that are no header (the first was checked before).
                let message = e.to_string();
                let trailer = message == "corrupt gzip stream does not have a matching checksum";
                let after_member = message == "invalid gzip header";
                let text = if trailer { "gzip: invalid checksum".to_string() } else { format!("gzip: {message}") };
                (text, trailer || after_member)
            })
        }
        BodyEncoding::Snappy => {
            read_limited(snap::read::FrameDecoder::new(body), limit, |e| (format!("snappy: {e}"), false))
        }
    }
}

/// `body` with the reserved flag bits of its first gzip header cleared: Go ignores them,
/// the decoder here refuses them. A header checksum, already checked by
/// [`go_gzip_header`] over the bytes as sent, is dropped with them.
fn without_reserved_flags(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const RESERVED: u8 = 0xe0;
    const HEADER_CRC: u8 = 1 << 1;
    let flags = match body.get(3) {
        Some(flags) if flags & RESERVED != 0 => *flags,
        _ => return std::borrow::Cow::Borrowed(body),
    };
    let Ok(len) = go_gzip_header(body) else { return std::borrow::Cow::Borrowed(body) };
    let kept = if flags & HEADER_CRC != 0 { len - 2 } else { len };
    let mut owned = Vec::with_capacity(body.len());
    owned.extend_from_slice(&body[..kept]);
    owned[3] = flags & !(RESERVED | HEADER_CRC);
    owned.extend_from_slice(&body[len..]);
    std::borrow::Cow::Owned(owned)
}

/// Reads `reader` to its end or its first error, at most `limit` bytes; `describe` gives
/// an error's message and whether it ends the input (see [`Failure::ends_input`]).
fn read_limited(
    reader: impl Read,
    limit: usize,
    describe: impl Fn(std::io::Error) -> (String, bool),
) -> Result<(Vec<u8>, Option<Failure>), HttpError> {
    let mut out = Vec::new();
    let read = reader.take(limit as u64 + 1).read_to_end(&mut out);
    if out.len() > limit {
        return Err(HttpError::BodyTooLarge(limit));
    }
    let failure = read.err().map(|e| {
        let (message, ends_input) = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ("unexpected EOF".to_string(), true)
        } else {
            describe(e)
        };
        Failure { error: HttpError::Encoding(message), ends_input }
    });
    Ok((out, failure))
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
        let pushed: [(&str, Vec<u8>, &[u8]); 6] = [
            ("bad checksum", bad_checksum(b"m 1\n"), b"m 1\n"),
            ("trailer cut by 4", whole[..whole.len() - 4].to_vec(), b"m 1\n"),
            ("trailer cut by 8", whole[..whole.len() - 8].to_vec(), b"m 1\n"),
            ("bytes after the stream", [&whole[..], b"junk"].concat(), b"m 1\n"),
            ("flushed, never closed", flushed, b"m 1\n"),
            ("blanks after the last line", bad_checksum(b"m 1\n \t "), b"m 1\n \t "),
        ];
        for (case, body, text) in pushed {
            assert_eq!(decode_text(&body, BodyEncoding::Gzip, 100).unwrap(), text, "{case}");
            assert!(matches!(decode(&body, BodyEncoding::Gzip, 100), Err(HttpError::Encoding(_))), "{case}");
        }
        for text in [&b"m 1"[..], b"m 1\n# HELP x"] {
            let refused = decode_text(&bad_checksum(text), BodyEncoding::Gzip, 100).unwrap_err();
            assert_eq!(refused.to_string(), "gzip: invalid checksum", "{text:?}");
        }
        // Corrupt deflate data is refused even where nothing was decoded before it
        // (upstream pushes nothing there, with 200: a PUT empties the group).
        let garbage = [&whole[..10], &[0xff; 6][..]].concat();
        assert!(matches!(decode_text(&garbage, BodyEncoding::Gzip, 100), Err(HttpError::Encoding(_))));
        assert_eq!(decode_text(&whole, BodyEncoding::Gzip, 100).unwrap(), b"m 1\n");
    }

    /// Go's `gzip.NewReader` reads the whole first header; answers recorded against
    /// upstream 1.5.1 (a text `PUT`): a header that fails past its first ten bytes is
    /// refused before anything is decoded, and reserved flag bits are ignored.
    #[test]
    fn the_whole_first_gzip_header_is_read_as_go_reads_it() {
        let stream = gzip(b"a 1\n");
        let with_header = |flags: u8, fields: &[u8]| {
            [&[0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 0xff][..], fields, &stream[10..]].concat()
        };
        let refused: [(&str, Vec<u8>, &str); 5] = [
            (
                "a file name without its end",
                vec![0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 0xff, b'a', b'b', b'c'],
                "unexpected EOF",
            ),
            (
                "an extra field cut short",
                vec![0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 0x10, 0, b'a', b'b'],
                "unexpected EOF",
            ),
            ("a wrong header checksum", with_header(2, &[0, 0]), "gzip: invalid header"),
            ("a file name longer than Go reads", with_header(8, &[b'n'; 600]), "gzip: invalid header"),
            ("a comment without its end", vec![0x1f, 0x8b, 8, 16, 0, 0, 0, 0, 0, 0xff, b'c'], "unexpected EOF"),
        ];
        for (case, body, message) in refused {
            assert_eq!(gzip_header_error(&body).map(|e| e.to_string()).as_deref(), Some(message), "{case}");
        }
        let header = [0x1f, 0x8b, 8, 2 | 4 | 8 | 16, 0, 0, 0, 0, 0, 0xff, 2, 0, b'x', b'y', b'n', 0, b'c', 0];
        let sum = (crc32fast::hash(&header) as u16).to_le_bytes();
        let every_field = [&header[..], &sum, &stream[10..]].concat();
        let reserved = with_header(0xe0, &[]);
        let reserved_and_checksum = {
            let mut h = header;
            h[3] |= 0xe0;
            let sum = (crc32fast::hash(&h) as u16).to_le_bytes();
            [&h[..], &sum, &stream[10..]].concat()
        };
        for (case, body) in [
            ("every field", every_field),
            ("reserved flags", reserved),
            ("reserved flags and a header checksum", reserved_and_checksum),
        ] {
            assert!(gzip_header_error(&body).is_none(), "{case}");
            assert_eq!(decode(&body, BodyEncoding::Gzip, 100).unwrap(), b"a 1\n", "{case}");
        }
    }

    /// A back-reference before the start of the stream is corrupt input (Go: `flate: corrupt
    /// input`), not zeros: refused even where the stream then fails at a line's start.
    #[test]
    fn a_reference_before_the_start_of_a_gzip_stream_is_refused() {
        let body = hex("1f8b08000000000000ff4b5430e44aaaceb15502e773a55a05232e00");
        assert!(
            decode_text(&body, BodyEncoding::Gzip, 1000).is_err(),
            "{:?}",
            decode_text(&body, BodyEncoding::Gzip, 1000)
        );
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
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
