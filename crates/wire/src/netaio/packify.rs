//! The subset of packify (netaio's serializer) that netaio frames use: str,
//! bytes, non-negative ints, tuples and dicts, in canonical form
//! (`../shared/spec/netaio-wire.md` §3). The decoder is strict about
//! structure (exact lengths, no trailing bytes, bounded depth and counts) and
//! lenient about order, as the spec recommends.

use crate::Error;

/// A decoded packify value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `None`.
    None,
    /// `bytes` (or `bytearray`).
    Bytes(Vec<u8>),
    /// `str`.
    Str(String),
    /// A non-negative `int` (netaio never sends others in auth blocks).
    Int(u64),
    /// `tuple`.
    Tuple(Vec<Self>),
    /// `dict`, entries in wire order.
    Dict(Vec<(Self, Self)>),
}

const NONE: u8 = 0;
const BYTES: u8 = 1;
const BYTEARRAY: u8 = 2;
const STR: u8 = 3;
const INT: u8 = 4;
const TUPLE: u8 = 12;
const DICT: u8 = 13;
const MAX_DEPTH: usize = 8;

/// The smallest length category for `n`: (category bits, width in bytes).
fn category(n: usize) -> (u8, usize) {
    if n < 1 << 8 {
        (0x40, 1)
    } else if n < 1 << 16 {
        (0x80, 2)
    } else {
        (0xC0, 4)
    }
}

fn put_number(out: &mut Vec<u8>, n: usize, width: usize) {
    out.extend_from_slice(&(n as u64).to_be_bytes()[8 - width..]);
}

impl Value {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::None => out.push(NONE),
            Self::Bytes(bytes) => sized(&mut out, BYTES, bytes),
            Self::Str(text) => sized(&mut out, STR, text.as_bytes()),
            Self::Int(n) => {
                let n = *n;
                if n >= 1 << 32 {
                    let bytes: Vec<u8> = n
                        .to_be_bytes()
                        .into_iter()
                        .skip_while(|b| *b == 0)
                        .collect();
                    out.push(INT);
                    out.push(bytes.len() as u8);
                    out.extend_from_slice(&bytes);
                } else {
                    let (cat, width) = category(n as usize);
                    out.push(cat | INT);
                    put_number(&mut out, n as usize, width);
                }
            }
            Self::Tuple(items) => {
                let items: Vec<Vec<u8>> = items.iter().map(Self::encode).collect();
                container(&mut out, TUPLE, &items);
            }
            Self::Dict(entries) => {
                let mut items: Vec<Vec<u8>> = entries
                    .iter()
                    .map(|(k, v)| Self::Tuple(vec![k.clone(), v.clone()]).encode())
                    .collect();
                items.sort();
                container(&mut out, DICT, &items);
            }
        }
        out
    }

    /// Decodes exactly one value filling all of `input`.
    ///
    /// # Errors
    /// [`Error::Malformed`] for anything outside the subset, bad lengths or trailing bytes.
    pub fn decode(input: &[u8]) -> Result<Self, Error> {
        decode_at(input, 0)
    }

    /// For a dict with string keys: the value under `key` (the last one wins, as in netaio).
    pub fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Dict(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| matches!(k, Self::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

fn sized(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    let (cat, width) = category(bytes.len());
    out.push(cat | kind);
    put_number(out, bytes.len(), width);
    out.extend_from_slice(bytes);
}

fn container(out: &mut Vec<u8>, kind: u8, items: &[Vec<u8>]) {
    let (count_cat, count_width) = category(items.len());
    let largest = items.iter().map(Vec::len).max().unwrap_or(0);
    let (item_cat, item_width) = category(largest);
    out.push(count_cat | kind);
    out.push(item_cat);
    put_number(out, items.len(), count_width);
    for item in items {
        put_number(out, item.len(), item_width);
    }
    for item in items {
        out.extend_from_slice(item);
    }
}

fn malformed(what: &'static str) -> Error {
    Error::Malformed(what)
}

fn width_of(category: u8) -> Option<usize> {
    match category {
        0x40 => Some(1),
        0x80 => Some(2),
        0xC0 => Some(4),
        _ => None,
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
    if input.len() < n {
        return Err(malformed("packify value shorter than its length"));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn number(input: &mut &[u8], width: usize) -> Result<usize, Error> {
    let bytes = take(input, width)?;
    Ok(bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)))
}

fn decode_at(input: &[u8], depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(malformed("packify nesting too deep"));
    }
    let mut rest = input;
    let code = *take(&mut rest, 1)?
        .first()
        .ok_or(malformed("empty packify value"))?;
    let (cat, kind) = (code & 0xC0, code & 0x3F);
    let value = match (cat, kind) {
        (0, NONE) => Value::None,
        (0, INT) => {
            let size = usize::from(take(&mut rest, 1)?[0]);
            if size > 8 {
                return Err(malformed("packify int too large"));
            }
            let bytes = take(&mut rest, size)?;
            Value::Int(bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
        }
        (_, INT) => {
            let width = width_of(cat).ok_or(malformed("bad packify category"))?;
            Value::Int(number(&mut rest, width)? as u64)
        }
        (_, BYTES | BYTEARRAY | STR) => {
            let width = width_of(cat).ok_or(malformed("bad packify category"))?;
            let len = number(&mut rest, width)?;
            let bytes = take(&mut rest, len)?.to_vec();
            if kind == STR {
                Value::Str(
                    String::from_utf8(bytes).map_err(|_| malformed("packify str is not UTF-8"))?,
                )
            } else {
                Value::Bytes(bytes)
            }
        }
        (_, TUPLE | DICT) => {
            let count_width = width_of(cat).ok_or(malformed("bad packify category"))?;
            let item_width = width_of(
                *take(&mut rest, 1)?
                    .first()
                    .ok_or(malformed("short container"))?,
            )
            .ok_or(malformed("bad packify item category"))?;
            let count = number(&mut rest, count_width)?;
            // Every item takes at least one byte: a count beyond the input is a lie.
            if count > rest.len() {
                return Err(malformed("packify count exceeds the input"));
            }
            let lengths = (0..count)
                .map(|_| number(&mut rest, item_width))
                .collect::<Result<Vec<_>, _>>()?;
            let mut items = Vec::with_capacity(count);
            for len in lengths {
                items.push(decode_at(take(&mut rest, len)?, depth + 1)?);
            }
            if kind == TUPLE {
                Value::Tuple(items)
            } else {
                let entries = items
                    .into_iter()
                    .map(|item| match item {
                        Value::Tuple(mut pair) if pair.len() == 2 => {
                            let value = pair.pop().unwrap_or(Value::None);
                            let key = pair.pop().unwrap_or(Value::None);
                            Ok((key, value))
                        }
                        _ => Err(malformed("packify dict entry is not a pair")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Dict(entries)
            }
        }
        _ => return Err(malformed("packify type outside netaio's subset")),
    };
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after a packify value"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netaio::hex;

    #[test]
    fn the_spec_examples_encode_exactly() {
        assert_eq!(Value::Dict(vec![]).encode(), hex("4d 40 00"));
        let fields = Value::Dict(vec![
            (Value::Str("nonce".into()), Value::Bytes((0..16).collect())),
            (Value::Str("ts".into()), Value::Bytes(hex("65000000"))),
            (
                Value::Str("hmac".into()),
                Value::Bytes(hex(
                    "e8f654be3fb6133830eb2ef6bb9731ee0609e5d64da8031acdf78764ac1b7798",
                )),
            ),
        ]);
        let expected = hex(
            "4d40030f2d1e 4c40020406 43027473 410465000000
             4c40020622 4304686d6163 4120 e8f654be3fb6133830eb2ef6bb9731ee0609e5d64da8031acdf78764ac1b7798
             4c40020712 43056e6f6e6365 4110 000102030405060708090a0b0c0d0e0f",
        );
        assert_eq!(fields.encode(), expected);
        assert_eq!(
            Value::decode(&expected).unwrap().get("ts"),
            Some(&Value::Bytes(hex("65000000")))
        );
        // The peer record of the captured advertisement.
        let name = Value::Dict(vec![(Value::Str("name".into()), Value::Str("A".into()))]);
        assert_eq!(
            name.encode(),
            hex("4d 40 01 0e 4c 40 02 06 03 43 04 6e 61 6d 65 43 01 41")
        );
        assert_eq!(
            Value::Int(u64::from(u32::MAX) + 1).encode(),
            hex("04 05 01 00 00 00 00")
        );
    }

    #[test]
    fn decoding_is_strict_about_structure() {
        for bad in [
            "",
            "4d4000 00",
            "41 05 0102",
            "4d 40 05",
            "0a 00",
            "43 01 ff",
            "4d 40 01 03 41 01 00",
        ] {
            assert!(Value::decode(&hex(bad)).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Ok(value) = Value::decode(&bytes) {
                let _ = value.encode();
            }
        }
    }
}
