//! bincode 2 (serde mode, standard configuration) for everything stored or sent.
//!
//! Decoding is bounded by the input: bincode takes a length prefix at its word, so 11
//! bytes announcing a 2^60-byte string would make it allocate that much and abort the
//! process. Every decode therefore runs with a limit on what the input may claim, the
//! next of a few sizes at or above the input's length (at most 16 times it, or 64 KiB).

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("codec: {0}")]
pub struct CodecError(pub String);

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| CodecError(e.to_string()))
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Decodes one value that must take all of `bytes`, with what it may allocate bounded
/// (see the module's comment).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = decode_prefix(bytes)?;
    if read != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes", bytes.len() - read)));
    }
    Ok(value)
}

/// Decodes one value at the start of `bytes`, bounded as [`decode`]; returns it and how
/// many bytes it took.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    let config = bincode::config::standard();
    let n = bytes.len();
    if n <= 4 * KIB {
        within(bytes, config.with_limit::<{ 64 * KIB }>())
    } else if n <= 64 * KIB {
        within(bytes, config.with_limit::<{ MIB }>())
    } else if n <= MIB {
        within(bytes, config.with_limit::<{ 16 * MIB }>())
    } else if n <= 16 * MIB {
        within(bytes, config.with_limit::<{ 256 * MIB }>())
    } else if n <= 256 * MIB {
        within(bytes, config.with_limit::<{ 4096 * MIB }>())
    } else {
        within(bytes, config.with_limit::<{ 64 * 1024 * MIB }>())
    }
}

fn within<T: DeserializeOwned, C: bincode::config::Config>(bytes: &[u8], config: C) -> Result<(T, usize), CodecError> {
    bincode::serde::decode_from_slice(bytes, config).map_err(|e| CodecError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request that killed a node: a string announced as 2^60 bytes, in 11 bytes.
    /// Refused, as is a vector of 2^40 elements; the same shapes at honest sizes decode.
    #[test]
    fn lengths_beyond_the_input_are_refused_before_allocating() {
        let mut huge_string = vec![0xfd];
        huge_string.extend_from_slice(&(1u64 << 60).to_le_bytes());
        huge_string.extend_from_slice(b"ab");
        assert_eq!(huge_string.len(), 11);
        assert!(decode::<String>(&huge_string).is_err());
        assert!(decode::<(u8, String)>(&[&[1u8][..], &huge_string].concat()).is_err());
        let mut huge_vec = vec![0xfd];
        huge_vec.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<Vec<u64>>(&huge_vec).is_err());
        assert!(decode::<Vec<String>>(&huge_vec).is_err());

        let honest = encode(&("x".repeat(100_000), vec![7u64; 10_000])).unwrap();
        assert_eq!(decode::<(String, Vec<u64>)>(&honest).unwrap().1.len(), 10_000);
    }
}
