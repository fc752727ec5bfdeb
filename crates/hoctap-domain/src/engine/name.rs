//! Subject names as keys of the subject index, kept inside the index's own slot when short. Finding a
//! subject then reads no other memory: with the name on the heap, every event folded paid a cache miss
//! just to compare it.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Longest name kept inline (every subject of the generated city is 12 bytes or less).
const INLINE: usize = 22;

/// A name: inline when it fits, on the heap otherwise. Hashes, compares and borrows as its `str`, so
/// the index is looked up with a plain `&str`.
#[derive(Clone)]
pub(crate) enum Name {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl From<&str> for Name {
    fn from(text: &str) -> Name {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Name::Inline { len: text.len() as u8, bytes }
        } else {
            Name::Heap(text.into())
        }
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Name::Inline { len, bytes } => std::str::from_utf8(&bytes[..*len as usize]).expect("copied from a str"),
            Name::Heap(text) => text,
        }
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        **self == **other
    }
}

impl Eq for Name {}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foldhash::{HashMap, HashMapExt};

    #[test]
    fn a_name_is_found_by_its_str_inline_or_not() {
        let long = "cit-".repeat(10);
        let names = ["", "cit-000123", "exactly-22-bytes-long!", "23-bytes-and-so-on-heap", long.as_str(), "Hà Nội"];
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            index.insert(Name::from(*name), i);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(index.get(*name), Some(&i), "{name:?}");
            assert_eq!(&*Name::from(*name), *name);
        }
        assert!(matches!(Name::from("exactly-22-bytes-long!"), Name::Inline { .. }));
        assert!(matches!(Name::from("23-bytes-and-so-on-heap"), Name::Heap(_)));
        assert_eq!(index.get("cit-00012"), None);
    }
}
