//! Plists from devices are untrusted: an enrolled device controls what NanoMDM relays. A binary
//! plist can share one object from many places (a 534-byte file can expand to 2^36 leaves), and an
//! XML plist can nest thousands deep; building a `plist::Value` from either exhausts memory or the
//! stack. This reads the plist as an event stream (which never recurses) and builds the value with
//! an explicit stack, stopping at limits on depth, objects and expanded bytes.

use std::io::Cursor;

use plist::stream::{Event, Reader};
use plist::{Dictionary, Value};

/// Bounds for one plist. Device reports Allot reads (check-ins, command results,
/// ManagedApplicationList) are a few hundred objects and a few levels deep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nesting of arrays and dictionaries.
    pub max_depth: usize,
    /// Objects once shared references are expanded.
    pub max_objects: usize,
    /// Bytes of strings, data and keys once expanded.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 32,
            max_objects: 100_000,
            max_bytes: 8 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlistError {
    #[error("the plist is nested more than {0} levels deep")]
    TooDeep(usize),
    #[error("the plist holds more than {0} objects once expanded")]
    TooManyObjects(usize),
    #[error("the plist holds more than {0} bytes of text and data once expanded")]
    TooLarge(usize),
    #[error("not a plist: {0}")]
    Invalid(String),
}

enum Frame {
    Array(Vec<Value>),
    Dict(Dictionary, Option<String>),
}

/// Parses an XML or binary plist within `limits`.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Value, PlistError> {
    // Devices write XML or binary plists; the OpenStep text form would read any text as a string.
    let xml = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(bytes)
        .trim_ascii_start()
        .starts_with(b"<");
    if !xml && !bytes.starts_with(b"bplist00") {
        return Err(PlistError::Invalid(
            "neither an XML nor a binary plist".into(),
        ));
    }
    let mut stack: Vec<Frame> = Vec::new();
    let (mut objects, mut size) = (0usize, 0usize);
    let mut events = Reader::new(Cursor::new(bytes));
    while let Some(event) = events.next() {
        let event = event.map_err(|e| PlistError::Invalid(e.to_string()))?;
        objects += 1;
        if objects > limits.max_objects {
            return Err(PlistError::TooManyObjects(limits.max_objects));
        }
        let leaf = match event {
            Event::StartArray(_) | Event::StartDictionary(_) => {
                if stack.len() >= limits.max_depth {
                    return Err(PlistError::TooDeep(limits.max_depth));
                }
                stack.push(match event {
                    Event::StartArray(_) => Frame::Array(Vec::new()),
                    _ => Frame::Dict(Dictionary::new(), None),
                });
                continue;
            }
            Event::EndCollection => match stack.pop() {
                Some(Frame::Array(items)) => Value::Array(items),
                Some(Frame::Dict(d, None)) => Value::Dictionary(d),
                Some(Frame::Dict(_, Some(_))) => {
                    return Err(PlistError::Invalid("a dictionary key has no value".into()))
                }
                None => return Err(PlistError::Invalid("unbalanced collection".into())),
            },
            Event::Boolean(b) => Value::Boolean(b),
            Event::Data(d) => {
                size += d.len();
                Value::Data(d.into_owned())
            }
            Event::Date(d) => Value::Date(d),
            Event::Integer(i) => Value::Integer(i),
            Event::Real(r) => Value::Real(r),
            Event::String(s) => {
                size += s.len();
                Value::String(s.into_owned())
            }
            Event::Uid(u) => Value::Uid(u),
            _ => return Err(PlistError::Invalid("an unknown plist element".into())),
        };
        if size > limits.max_bytes {
            return Err(PlistError::TooLarge(limits.max_bytes));
        }
        match stack.last_mut() {
            None if events.next().is_none() => return Ok(leaf),
            None => return Err(PlistError::Invalid("data after the plist's end".into())),
            Some(Frame::Array(items)) => items.push(leaf),
            Some(Frame::Dict(_, key @ None)) => match leaf {
                Value::String(k) => *key = Some(k),
                _ => {
                    return Err(PlistError::Invalid(
                        "a dictionary key is not a string".into(),
                    ))
                }
            },
            Some(Frame::Dict(d, key)) => {
                let k = key.take().expect("matched Some above");
                d.insert(k, leaf);
            }
        }
    }
    Err(PlistError::Invalid("the plist ends early".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, v).unwrap();
        out
    }

    #[test]
    fn reads_ordinary_plists_both_ways() {
        let mut d = Dictionary::new();
        d.insert("Status".into(), Value::String("Managed".into()));
        d.insert(
            "ErrorChain".into(),
            Value::Array(vec![Value::Integer(12.into())]),
        );
        let v = Value::Dictionary(d);
        assert_eq!(parse(&xml(&v), Limits::default()), Ok(v.clone()));
        let mut bin = Vec::new();
        plist::to_writer_binary(&mut bin, &v).unwrap();
        assert_eq!(parse(&bin, Limits::default()), Ok(v));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 100_000;
        let body = format!(
            r#"<?xml version="1.0"?><plist version="1.0">{}<string>x</string>{}</plist>"#,
            "<array>".repeat(depth),
            "</array>".repeat(depth)
        );
        assert_eq!(
            parse(body.as_bytes(), Limits::default()),
            Err(PlistError::TooDeep(32))
        );
    }

    #[test]
    fn shared_references_count_once_per_use() {
        let small = crate::fake::shared_reference_bomb(3);
        let v = parse(&small, Limits::default()).unwrap();
        let leaves = |v: &Value| {
            let mut n = 0;
            let mut todo = vec![v];
            while let Some(x) = todo.pop() {
                match x {
                    Value::Array(a) => todo.extend(a.iter()),
                    _ => n += 1,
                }
            }
            n
        };
        assert_eq!(leaves(&v), 8);
        let bomb = crate::fake::shared_reference_bomb(31);
        assert!(bomb.len() < 256);
        assert_eq!(
            parse(&bomb, Limits::default()),
            Err(PlistError::TooManyObjects(100_000))
        );
        let wide = Limits {
            max_depth: 64,
            max_objects: usize::MAX,
            max_bytes: 1 << 20,
        };
        assert_eq!(parse(&bomb, wide), Err(PlistError::TooLarge(1 << 20)));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(matches!(
            parse(b"not a plist", Limits::default()),
            Err(PlistError::Invalid(_))
        ));
        let v = Value::Array(vec![Value::String("a".into())]);
        let full = xml(&v);
        let cut = &full[..full.len() - 20];
        assert!(matches!(
            parse(cut, Limits::default()),
            Err(PlistError::Invalid(_))
        ));
    }
}
