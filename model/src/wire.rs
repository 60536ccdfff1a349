//! The protobuf wire format's fields, walked without a schema: what the store needs to
//! tell apart the parts of a value kept whole ([`crate::ProtoValue`]), and what the
//! decoder needs to read a message as Go's decoder reads it.
//!
//! Linear in the message: every byte is looked at once, groups included (their nesting
//! is counted, not recursed into).

/// Wire type of a varint field.
pub const VARINT: u8 = 0;
/// Wire type of an 8-byte field.
pub const FIXED64: u8 = 1;
/// Wire type of a length-delimited field (bytes, strings, messages, packed scalars).
pub const LEN: u8 = 2;
/// Wire type that starts a group (a deprecated way to write a message).
pub const START_GROUP: u8 = 3;
/// Wire type that ends a group.
pub const END_GROUP: u8 = 4;
/// Wire type of a 4-byte field.
pub const FIXED32: u8 = 5;

/// One field of a message as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u64,
    pub wire_type: u8,
    /// The whole field: key and value.
    pub whole: &'a [u8],
    /// The value: a varint's or a fixed field's bytes, a length-delimited field's contents
    /// (without the length), a group's fields (without its end key).
    pub payload: &'a [u8],
}

/// A varint at the start of `input`, and the bytes it took (at most ten).
pub fn varint(input: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in input.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Appends `value` as a varint.
pub fn put_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a length-delimited field: its key, the length of `payload`, `payload`.
pub fn put_len(number: u64, payload: &[u8], out: &mut Vec<u8>) {
    put_varint(number << 3 | u64::from(LEN), out);
    put_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// The fields of `message` in order. Stops at the first field that is malformed (cut
/// short, an end of group without its start, wire type 6 or 7): what that means is the
/// decoder's to say, not the walker's.
pub fn fields(mut message: &[u8]) -> impl Iterator<Item = Field<'_>> {
    std::iter::from_fn(move || {
        let field = first_field(message)?;
        message = &message[field.whole.len()..];
        Some(field)
    })
}

fn first_field(message: &[u8]) -> Option<Field<'_>> {
    let (key, used) = varint(message)?;
    let (number, wire_type) = (key >> 3, (key & 7) as u8);
    let rest = &message[used..];
    let (payload_at, payload_len, taken) = match wire_type {
        VARINT => {
            let (_, n) = varint(rest)?;
            (0, n, n)
        }
        FIXED64 => (0, 8, 8),
        FIXED32 => (0, 4, 4),
        LEN => {
            let (len, n) = varint(rest)?;
            let len = usize::try_from(len).ok()?;
            (n, len, n.checked_add(len)?)
        }
        START_GROUP => {
            let (inner, end_key) = group_extent(rest, number)?;
            (0, inner, inner + end_key)
        }
        _ => return None,
    };
    if taken > rest.len() {
        return None;
    }
    Some(Field {
        number,
        wire_type,
        whole: &message[..used + taken],
        payload: &rest[payload_at..payload_at + payload_len],
    })
}

/// The length of a group's fields, and of its end key, in `input` (just after the start
/// key of field `number`). Nested groups are counted, so the walk is iterative.
fn group_extent(input: &[u8], number: u64) -> Option<(usize, usize)> {
    let mut open: Vec<u64> = vec![number];
    let mut at = 0usize;
    loop {
        let (key, used) = varint(&input[at..])?;
        let (n, wire_type) = (key >> 3, (key & 7) as u8);
        let after_key = at + used;
        let rest = &input[after_key..];
        let taken = match wire_type {
            VARINT => varint(rest)?.1,
            FIXED64 => 8,
            FIXED32 => 4,
            LEN => {
                let (len, n) = varint(rest)?;
                n.checked_add(usize::try_from(len).ok()?)?
            }
            START_GROUP => {
                open.push(n);
                0
            }
            END_GROUP => {
                if open.pop() != Some(n) {
                    return None;
                }
                if open.is_empty() {
                    return Some((at, used));
                }
                0
            }
            _ => return None,
        };
        if taken > rest.len() {
            return None;
        }
        at = after_key + taken;
    }
}

/// Whether `fields` (a value kept whole) holds label extras: length-delimited fields 1,
/// each a label pair's name and the fields of that pair other than its name and value
/// (see [`crate::ProtoValue`]).
pub fn has_label_extras(fields: &[u8]) -> bool {
    self::fields(fields).any(|f| f.number == 1 && f.wire_type == LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_walked_whole_groups_included() {
        // 1: varint 5; 2: "ab"; 3: group { 1: varint 1, 4: group {} }; 4: fixed32; 5: fixed64.
        let mut m = vec![0x08, 5, 0x12, 2, b'a', b'b'];
        m.extend_from_slice(&[0x1b, 0x08, 1, 0x23, 0x24, 0x1c]);
        m.extend_from_slice(&[0x25, 1, 2, 3, 4, 0x29, 1, 2, 3, 4, 5, 6, 7, 8]);
        let got: Vec<(u64, u8, usize, &[u8])> =
            fields(&m).map(|f| (f.number, f.wire_type, f.whole.len(), f.payload)).collect();
        assert_eq!(
            got,
            vec![
                (1, VARINT, 2, &[5][..]),
                (2, LEN, 4, b"ab"),
                (3, START_GROUP, 6, &[0x08, 1, 0x23, 0x24][..]),
                (4, FIXED32, 5, &[1, 2, 3, 4][..]),
                (5, FIXED64, 9, &[1, 2, 3, 4, 5, 6, 7, 8][..]),
            ]
        );
        assert_eq!(fields(&m).map(|f| f.whole.len()).sum::<usize>(), m.len());
    }

    #[test]
    fn the_walk_stops_at_what_is_malformed() {
        for bad in [&[0x12, 5, b'a'][..], &[0x1b, 0x08, 1][..], &[0x1b, 0x24][..], &[0x0e], &[0x0f], &[0x0c], &[0x80]] {
            assert_eq!(fields(bad).count(), 0, "{bad:?}");
        }
        assert_eq!(fields(&[0x08, 1, 0x0f]).count(), 1);
    }

    #[test]
    fn deep_groups_do_not_recurse() {
        let mut m = vec![0x0b; 100_000];
        m.extend(std::iter::repeat_n(0x0c, 100_000));
        assert_eq!(fields(&m).count(), 1);
    }

    #[test]
    fn written_fields_read_back() {
        let mut out = Vec::new();
        put_len(1, &[0x0a, 1, b'a', 0x18, 7], &mut out);
        put_len(300, b"x", &mut out);
        let got: Vec<(u64, &[u8])> = fields(&out).map(|f| (f.number, f.payload)).collect();
        assert_eq!(got, vec![(1, &[0x0a, 1, b'a', 0x18, 7][..]), (300, &b"x"[..])]);
        assert!(has_label_extras(&out));
        assert!(!has_label_extras(&out[7..]));
    }
}
