//! A reader of Go's `encoding/gob` streams, as much of the format as upstream's
//! persistence file uses: the type definitions the stream carries, then one value of
//! any type built from booleans, integers, floats, strings, byte slices, arrays,
//! slices, maps, structs and values a type encodes itself (`GobEncoder`,
//! `BinaryMarshaler`, `TextMarshaler`: kept as their bytes). Interface and complex
//! values are refused.
//!
//! The input is untrusted (a file an operator hands over, or a request body): every
//! length is checked against the bytes that remain before anything is allocated, every
//! value consumes at least one byte (so decoding is linear in the input), and nesting
//! is bounded by [`MAX_DEPTH`].
//!
//! The wire format (Go's `encoding/gob` documentation): a stream of messages, each an
//! unsigned length and that many bytes; a message starts with a signed type id, and a
//! negative id defines type `-id` (a `wireType`), a positive one carries a value of that
//! type. Unsigned numbers below 128 are one byte, larger ones a byte holding the negated
//! count of big-endian bytes that follow; a signed number is shifted left once with its
//! sign (complemented) in the lowest bit; a float is its IEEE bits byte-reversed. A
//! struct is a list of (field-number delta, value) ended by a zero delta, without its
//! zero-valued fields; a top-level value that is not a struct is preceded by a zero.

use std::collections::HashMap;
use std::rc::Rc;

/// Deepest nesting of values (a map of structs of maps is 3 deep) this reader follows.
pub const MAX_DEPTH: usize = 64;

/// Most values decoded per byte of input, as a divisor: a value takes at least one byte
/// on the wire but some 40 in memory, so without this bound a stream of one-byte values
/// would grow forty-fold. Upstream's files hold one value per 20 bytes or more (each
/// family is an encoded blob of dozens of bytes, each group carries its two timestamp
/// families).
const BYTES_PER_VALUE: usize = 8;

/// Values any stream may hold whatever its size (a small file of empty groups).
const VALUES_ALWAYS_ALLOWED: usize = 4096;

/// A decoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum GobValue {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    /// A byte slice, or a string that is not UTF-8.
    Bytes(Vec<u8>),
    String(String),
    /// An array or a slice.
    List(Vec<GobValue>),
    /// A map's entries, in stream order.
    Map(Vec<(GobValue, GobValue)>),
    /// A struct's fields that were sent (zero-valued fields are not), by name (shared with
    /// the type definition: one copy however many values).
    Struct(Vec<(Rc<str>, GobValue)>),
    /// The bytes of a value that encodes itself (`GobEncode`, `MarshalBinary`, `MarshalText`).
    Encoded(Vec<u8>),
}

impl GobValue {
    /// The field `name` of a struct; `None` for an absent (zero) field or another kind.
    pub fn field(&self, name: &str) -> Option<&GobValue> {
        match self {
            GobValue::Struct(fields) => fields.iter().find(|(n, _)| &**n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why a stream could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GobError {
    #[error("gob: the data ends inside a value")]
    Truncated,
    #[error("gob: {0}")]
    Corrupt(String),
    #[error("gob: values of kind {0} are not supported")]
    Unsupported(&'static str),
    #[error("gob: more values than a stream of this size holds (one per {BYTES_PER_VALUE} bytes)")]
    TooManyValues,
}

/// Type ids Go predefines (`encoding/gob/type.go`).
const BOOL: i64 = 1;
const INT: i64 = 2;
const UINT: i64 = 3;
const FLOAT: i64 = 4;
const BYTES: i64 = 5;
const STRING: i64 = 6;
const COMPLEX: i64 = 7;
const INTERFACE: i64 = 8;
/// The lowest id a stream may define; below are Go's own.
const FIRST_USER_ID: i64 = 64;

/// A type as the stream defined it.
#[derive(Clone, Debug)]
enum WireType {
    Array { elem: i64, len: u64 },
    Slice { elem: i64 },
    Map { key: i64, elem: i64 },
    Struct { fields: Vec<(Rc<str>, i64)> },
    Encoded,
}

/// Reads the first value of a gob stream, with the type definitions before it.
pub fn decode_value(input: &[u8]) -> Result<GobValue, GobError> {
    let mut types: HashMap<i64, WireType> = HashMap::new();
    let budget = VALUES_ALWAYS_ALLOWED + input.len() / BYTES_PER_VALUE;
    let mut stream = Reader { input, depth: 0, values_left: budget };
    loop {
        if stream.input.is_empty() {
            return Err(GobError::Corrupt("no value in the stream".into()));
        }
        let len = stream.uint()?;
        let len = usize::try_from(len).map_err(|_| GobError::Truncated)?;
        let message = stream.take(len)?;
        let mut message = Reader { input: message, depth: 0, values_left: stream.values_left };
        let id = message.int()?;
        if id < 0 {
            let id = id.checked_neg().ok_or_else(|| GobError::Corrupt("a type id out of range".into()))?;
            if id < FIRST_USER_ID {
                return Err(GobError::Corrupt(format!("the stream redefines predefined type {id}")));
            }
            let wire = message.wire_type()?;
            types.insert(id, wire);
            continue;
        }
        let is_struct = matches!(types.get(&id), Some(WireType::Struct { .. }));
        if !is_struct && message.uint()? != 0 {
            return Err(GobError::Corrupt("non-zero delta before a singleton value".into()));
        }
        return message.value(id, &types);
    }
}

struct Reader<'a> {
    input: &'a [u8],
    depth: usize,
    /// Values this stream may still decode (see [`BYTES_PER_VALUE`]).
    values_left: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], GobError> {
        if n > self.input.len() {
            return Err(GobError::Truncated);
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn uint(&mut self) -> Result<u64, GobError> {
        let first = *self.take(1)?.first().ok_or(GobError::Truncated)?;
        if first < 0x80 {
            return Ok(first as u64);
        }
        let n = (first as i8).unsigned_abs() as usize;
        if n > 8 {
            return Err(GobError::Corrupt(format!("an unsigned number of {n} bytes")));
        }
        Ok(self.take(n)?.iter().fold(0u64, |v, b| (v << 8) | *b as u64))
    }

    fn int(&mut self) -> Result<i64, GobError> {
        let u = self.uint()?;
        Ok(if u & 1 == 1 { !((u >> 1) as i64) } else { (u >> 1) as i64 })
    }

    /// A count of elements, each of which takes at least one byte.
    fn count(&mut self) -> Result<usize, GobError> {
        let n = self.uint()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.input.len() => Ok(n),
            _ => Err(GobError::Truncated),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, GobError> {
        let n = self.uint()?;
        let n = usize::try_from(n).map_err(|_| GobError::Truncated)?;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Result<String, GobError> {
        String::from_utf8(self.bytes()?).map_err(|_| GobError::Corrupt("a type or field name that is not UTF-8".into()))
    }

    /// The fields of a struct as `(field number, reader positioned at its value)`,
    /// decoded by `field`, until the zero delta.
    fn fields(&mut self, mut field: impl FnMut(&mut Self, usize) -> Result<(), GobError>) -> Result<(), GobError> {
        let mut number: i64 = -1;
        loop {
            let delta = self.uint()?;
            if delta == 0 {
                return Ok(());
            }
            number = number
                .checked_add(i64::try_from(delta).map_err(|_| GobError::Corrupt("a field delta too large".into()))?)
                .ok_or_else(|| GobError::Corrupt("a field delta too large".into()))?;
            field(self, number as usize)?;
        }
    }

    /// `CommonType{Name string; Id typeId}`: only checked for shape.
    fn common_type(&mut self) -> Result<(), GobError> {
        self.fields(|r, n| match n {
            0 => r.string().map(drop),
            1 => r.int().map(drop),
            _ => Err(GobError::Corrupt(format!("CommonType has no field {n}"))),
        })
    }

    /// A `wireType`: one of its pointer fields set, each a struct starting with a `CommonType`.
    fn wire_type(&mut self) -> Result<WireType, GobError> {
        let mut found = None;
        self.fields(|r, n| {
            let (mut elem, mut key, mut len, mut fields) = (0i64, 0i64, 0i64, Vec::new());
            r.fields(|r, f| match (n, f) {
                (_, 0) => r.common_type(),
                (0 | 1, 1) | (3, 2) => r.int().map(|v| elem = v),
                // arrayType.Len is a Go int.
                (0, 2) => r.int().map(|v| len = v),
                (3, 1) => r.int().map(|v| key = v),
                (2, 1) => {
                    let count = r.count()?;
                    for _ in 0..count {
                        let (mut name, mut id) = (String::new(), 0i64);
                        r.fields(|r, g| match g {
                            0 => r.string().map(|v| name = v),
                            1 => r.int().map(|v| id = v),
                            _ => Err(GobError::Corrupt(format!("fieldType has no field {g}"))),
                        })?;
                        fields.push((Rc::from(name), id));
                    }
                    Ok(())
                }
                _ => Err(GobError::Corrupt(format!("wire type {n} has no field {f}"))),
            })?;
            found = Some(match n {
                0 => WireType::Array {
                    elem,
                    len: u64::try_from(len).map_err(|_| GobError::Corrupt("an array of negative length".into()))?,
                },
                1 => WireType::Slice { elem },
                2 => WireType::Struct { fields },
                3 => WireType::Map { key, elem },
                4..=6 => WireType::Encoded,
                _ => return Err(GobError::Corrupt(format!("wireType has no field {n}"))),
            });
            Ok(())
        })?;
        found.ok_or_else(|| GobError::Corrupt("an empty type definition".into()))
    }

    /// A value of type `id`.
    fn value(&mut self, id: i64, types: &HashMap<i64, WireType>) -> Result<GobValue, GobError> {
        if self.depth >= MAX_DEPTH {
            return Err(GobError::Corrupt(format!("values nested deeper than {MAX_DEPTH}")));
        }
        self.values_left = self.values_left.checked_sub(1).ok_or(GobError::TooManyValues)?;
        self.depth += 1;
        let value = self.value_inner(id, types);
        self.depth -= 1;
        value
    }

    fn value_inner(&mut self, id: i64, types: &HashMap<i64, WireType>) -> Result<GobValue, GobError> {
        Ok(match id {
            BOOL => GobValue::Bool(self.uint()? != 0),
            INT => GobValue::Int(self.int()?),
            UINT => GobValue::Uint(self.uint()?),
            FLOAT => GobValue::Float(f64::from_bits(self.uint()?.swap_bytes())),
            BYTES => GobValue::Bytes(self.bytes()?),
            // Go strings are bytes: one that is not UTF-8 (upstream's grouping keys hold
            // byte 255 as a separator) is answered as bytes.
            STRING => match String::from_utf8(self.bytes()?) {
                Ok(s) => GobValue::String(s),
                Err(e) => GobValue::Bytes(e.into_bytes()),
            },
            COMPLEX => return Err(GobError::Unsupported("complex")),
            INTERFACE => return Err(GobError::Unsupported("interface")),
            _ => match types.get(&id) {
                None => return Err(GobError::Corrupt(format!("a value of undefined type {id}"))),
                Some(WireType::Encoded) => GobValue::Encoded(self.bytes()?),
                Some(WireType::Array { elem, len }) => {
                    let n = self.count()?;
                    if n as u64 != *len {
                        return Err(GobError::Corrupt(format!("an array of {len} sent with {n} elements")));
                    }
                    GobValue::List((0..n).map(|_| self.value(*elem, types)).collect::<Result<_, _>>()?)
                }
                Some(WireType::Slice { elem }) => {
                    let n = self.count()?;
                    GobValue::List((0..n).map(|_| self.value(*elem, types)).collect::<Result<_, _>>()?)
                }
                Some(WireType::Map { key, elem }) => {
                    let n = self.count()?;
                    // Reserved up to a bound: the count is the sender's word.
                    let mut entries = Vec::with_capacity(n.min(VALUES_ALWAYS_ALLOWED));
                    for _ in 0..n {
                        let k = self.value(*key, types)?;
                        entries.push((k, self.value(*elem, types)?));
                    }
                    GobValue::Map(entries)
                }
                Some(WireType::Struct { fields }) => {
                    let mut out = Vec::new();
                    self.fields(|r, n| {
                        let (name, field_type) = fields
                            .get(n)
                            .ok_or_else(|| GobError::Corrupt(format!("struct type {id} has no field {n}")))?;
                        out.push((name.clone(), r.value(*field_type, types)?));
                        Ok(())
                    })?;
                    GobValue::Struct(out)
                }
            },
        })
    }
}

/// A Go `time.Time` from its `MarshalBinary` bytes (what `GobEncode` writes): version 1
/// or 2, seconds since January 1 of year 1 (UTC), nanoseconds, and a zone offset this
/// reader ignores (the instant does not depend on it). Answers nanoseconds since the
/// Unix epoch; `None` for bytes of another shape or an instant outside the `i64` range.
pub fn go_time_unix_nanos(bytes: &[u8]) -> Option<i64> {
    /// Seconds from January 1 of year 1 to the Unix epoch (Go's `unixToInternal`).
    const UNIX_TO_INTERNAL: i64 = 62_135_596_800;
    let expected = match bytes.first()? {
        1 => 15,
        2 => 16,
        _ => return None,
    };
    if bytes.len() != expected {
        return None;
    }
    let sec = i64::from_be_bytes(bytes[1..9].try_into().ok()?);
    let nsec = i32::from_be_bytes(bytes[9..13].try_into().ok()?);
    sec.checked_sub(UNIX_TO_INTERNAL)?.checked_mul(1_000_000_000)?.checked_add(nsec as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uint(v: u64, out: &mut Vec<u8>) {
        if v < 0x80 {
            out.push(v as u8);
        } else {
            let bytes = v.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push((-((8 - skip) as i8)) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }

    fn int(v: i64, out: &mut Vec<u8>) {
        uint(if v < 0 { (!(v as u64) << 1) | 1 } else { (v as u64) << 1 }, out)
    }

    fn message(body: Vec<u8>, out: &mut Vec<u8>) {
        uint(body.len() as u64, out);
        out.extend(body);
    }

    /// Defines type 65 as `map[string]int` and sends `{"a": -3, "b": 300}`.
    fn map_stream() -> Vec<u8> {
        map_stream_claiming(2)
    }

    /// [`map_stream`] with a map whose count says `count` (its entries are still two).
    fn map_stream_claiming(count: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut def = Vec::new();
        int(-65, &mut def);
        // wireType field 3 (MapT): delta 4; mapType{CommonType{Name, Id}, Key, Elem}.
        def.extend([4, 1, 1]);
        uint(14, &mut def);
        def.extend(b"map[string]int");
        def.push(1);
        int(65, &mut def);
        def.push(0); // end of CommonType
        def.push(1);
        int(STRING, &mut def);
        def.push(1);
        int(INT, &mut def);
        def.extend([0, 0]); // end of mapType, end of wireType
        message(def, &mut out);
        let mut value = Vec::new();
        int(65, &mut value);
        value.push(0); // singleton
        uint(count, &mut value);
        for (k, v) in [("a", -3), ("b", 300)] {
            uint(1, &mut value);
            value.extend(k.as_bytes());
            int(v, &mut value);
        }
        message(value, &mut out);
        out
    }

    #[test]
    fn a_defined_map_is_read_back() {
        let v = decode_value(&map_stream()).unwrap();
        assert_eq!(
            v,
            GobValue::Map(vec![
                (GobValue::String("a".into()), GobValue::Int(-3)),
                (GobValue::String("b".into()), GobValue::Int(300)),
            ])
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let stream = map_stream();
        for end in 0..stream.len() {
            assert!(decode_value(&stream[..end]).is_err(), "a stream cut at {end} was accepted");
        }
    }

    #[test]
    fn a_count_larger_than_the_input_allocates_nothing() {
        assert_eq!(decode_value(&map_stream_claiming(1 << 40)), Err(GobError::Truncated));
        assert_eq!(decode_value(&map_stream_claiming(3)), Err(GobError::Truncated));
    }

    #[test]
    fn a_stream_of_tiny_values_is_refused_before_it_grows_in_memory() {
        // Type 65 = []bool, then a slice of `n` one-byte booleans.
        let stream = |n: u64| {
            let mut out = Vec::new();
            let mut def = Vec::new();
            int(-65, &mut def);
            def.extend([2, 1, 2]); // wireType.SliceT; sliceType.CommonType; CommonType.Id
            int(65, &mut def);
            def.extend([0, 1]); // end of CommonType; sliceType.Elem
            int(BOOL, &mut def);
            def.extend([0, 0]);
            message(def, &mut out);
            let mut value = Vec::new();
            int(65, &mut value);
            value.push(0);
            uint(n, &mut value);
            value.extend(std::iter::repeat_n(1u8, n as usize));
            message(value, &mut out);
            out
        };
        assert!(matches!(decode_value(&stream(1000)), Ok(GobValue::List(v)) if v.len() == 1000));
        assert_eq!(decode_value(&stream(200_000)), Err(GobError::TooManyValues));
    }

    #[test]
    fn go_times_become_unix_nanos() {
        // time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC).MarshalBinary()
        let mut b = vec![1];
        b.extend((1_577_934_245i64 + 62_135_596_800).to_be_bytes());
        b.extend(6i32.to_be_bytes());
        b.extend((-1i16).to_be_bytes());
        assert_eq!(go_time_unix_nanos(&b), Some(1_577_934_245_000_000_006));
        assert_eq!(go_time_unix_nanos(&b[..14]), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = decode_value(&input);
        }
    }
}
