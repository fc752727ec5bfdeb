//! Bearer tokens per province, stored as their SHA-256: the source systems allowed to publish (the
//! gateway's `[[source]]` entries) and the readers allowed to ask (the API's `[[reader]]` entries).
//! Each holder is allowed one province, or all (`"*"`). One file lists one kind of holder.
//!
//! ```toml
//! [[source]]                 # [[reader]] in the API's file
//! name = "khuyenhoc-hanoi"
//! province = "01"            # or "*": a national source (the statistics office) or reader (the ministry)
//! token_sha256 = "9f86d0…"   # sha256 of the token, hex; `hash_token` computes it
//! ```

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Which provinces a holder may publish events for (a source) or read figures of (a reader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One province, by its 2-digit code.
    Province(String),
    /// Every province (`"*"`): a national source.
    All,
}

impl Scope {
    /// Whether something that belongs to `provinces` is this holder's: an event (from a source) or a
    /// unit (for a reader) belongs to every province one of its units ever lay in, and is this
    /// holder's when its province is one of them. A national holder is allowed everything.
    pub fn allows<'a>(&self, mut provinces: impl Iterator<Item = &'a str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Province(p) => provinces.any(|q| q == p),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Province(p) => f.write_str(p),
            Scope::All => f.write_str("*"),
        }
    }
}

/// Which holders a tokens file lists: the table its entries are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holders {
    /// `[[source]]`: source systems that publish to the gateway.
    Sources,
    /// `[[reader]]`: readers of the API.
    Readers,
}

impl Holders {
    /// The TOML table of one entry.
    pub fn table(self) -> &'static str {
        match self {
            Holders::Sources => "source",
            Holders::Readers => "reader",
        }
    }
}

/// A token holder (a source system or a reader), as authenticated.
#[derive(Clone, Debug)]
pub struct Holder {
    pub name: String,
    pub scope: Scope,
    token_sha256: [u8; 32],
}

/// The configured holders of one kind. Tokens themselves are never held, only their hashes.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    holders: Vec<Holder>,
}

/// The tokens file cannot be used: the gateway does not start.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the tokens file is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("{table} `{name}`: {problem}")]
    Invalid { table: &'static str, name: String, problem: String },
    #[error("the file lists [[{found}]] entries where [[{expected}]] entries are expected")]
    WrongKind { found: &'static str, expected: &'static str },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    source: Vec<Entry>,
    #[serde(default)]
    reader: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    province: String,
    token_sha256: String,
}

/// The SHA-256 of a token, as hex: what the tokens file stores.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The token in an `Authorization` header's value, when it is `Bearer <token>` (the scheme in any case).
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Tokens {
    pub fn load(path: &Path, kind: Holders) -> Result<Tokens, TokensError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokensError::Read { path: path.display().to_string(), source })?;
        Tokens::from_toml(&text, kind)
    }

    pub fn from_toml(text: &str, kind: Holders) -> Result<Tokens, TokensError> {
        let file: File = toml::from_str(text)?;
        let (entries, others, other) = match kind {
            Holders::Sources => (file.source, file.reader, Holders::Readers),
            Holders::Readers => (file.reader, file.source, Holders::Sources),
        };
        if !others.is_empty() {
            return Err(TokensError::WrongKind { found: other.table(), expected: kind.table() });
        }
        let mut sources: Vec<Holder> = Vec::with_capacity(entries.len());
        for e in entries {
            let invalid = |problem: String| TokensError::Invalid { table: kind.table(), name: e.name.clone(), problem };
            let scope = match e.province.as_str() {
                "*" => Scope::All,
                p if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => Scope::Province(p.to_owned()),
                p => return Err(invalid(format!("province must be a 2-digit code or \"*\", not {p:?}"))),
            };
            let mut hash = [0u8; 32];
            hex::decode_to_slice(e.token_sha256.to_ascii_lowercase(), &mut hash)
                .map_err(|_| invalid("token_sha256 must be 64 hex digits (the SHA-256 of the token)".into()))?;
            if sources.iter().any(|s| s.token_sha256 == hash) {
                return Err(invalid("the same token is configured for another source".into()));
            }
            if sources.iter().any(|s| s.name == e.name) {
                return Err(invalid("the name is configured twice".into()));
            }
            sources.push(Holder { name: e.name, scope, token_sha256: hash });
        }
        Ok(Tokens { holders: sources })
    }

    pub fn len(&self) -> usize {
        self.holders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }

    /// The holder whose token this is. Every configured hash is compared, each in constant time, so
    /// the time taken does not tell how close a guess came nor which entry matched.
    pub fn authenticate(&self, token: &str) -> Option<&Holder> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for source in &self.holders {
            if constant_time_eq(&presented, &source.token_sha256) {
                found = Some(source);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the compiler from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticates_by_hash_only() {
        let text = format!(
            "[[source]]\nname = \"hn\"\nprovince = \"01\"\ntoken_sha256 = \"{}\"\n\n[[source]]\nname = \"gso\"\nprovince = \"*\"\ntoken_sha256 = \"{}\"\n",
            hash_token("secret-hn"),
            hash_token("secret-gso").to_uppercase()
        );
        let tokens = Tokens::from_toml(&text, Holders::Sources).unwrap();
        let hn = tokens.authenticate("secret-hn").unwrap();
        assert_eq!((hn.name.as_str(), &hn.scope), ("hn", &Scope::Province("01".into())));
        assert_eq!(tokens.authenticate("secret-gso").unwrap().scope, Scope::All);
        assert!(tokens.authenticate("secret").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn refuses_bad_entries() {
        let bad_province = "[[source]]\nname = \"x\"\nprovince = \"1\"\ntoken_sha256 = \"00\"\n";
        assert!(matches!(Tokens::from_toml(bad_province, Holders::Sources), Err(TokensError::Invalid { .. })));
        let bad_hash = "[[source]]\nname = \"x\"\nprovince = \"01\"\ntoken_sha256 = \"plain-token\"\n";
        assert!(matches!(Tokens::from_toml(bad_hash, Holders::Sources), Err(TokensError::Invalid { .. })));
        let unknown = "[[source]]\nname = \"x\"\nprovince = \"01\"\ntoken = \"plain\"\n";
        assert!(matches!(Tokens::from_toml(unknown, Holders::Sources), Err(TokensError::Parse(_))));
        assert!(Scope::Province("01".into()).allows(["79", "01"].into_iter()));
        assert!(!Scope::Province("01".into()).allows(std::iter::empty()));
    }
}

#[cfg(test)]
mod readers {
    use super::*;

    #[test]
    fn a_file_lists_one_kind_of_holder() {
        let readers = format!(
            "[[reader]]\nname = \"so-gd-hanoi\"\nprovince = \"01\"\ntoken_sha256 = \"{}\"\n",
            hash_token("read-hn")
        );
        let tokens = Tokens::from_toml(&readers, Holders::Readers).unwrap();
        assert_eq!(tokens.authenticate("read-hn").unwrap().scope, Scope::Province("01".into()));
        // A readers file given to the gateway (or a sources file to the API) is refused, not read as empty.
        assert!(matches!(
            Tokens::from_toml(&readers, Holders::Sources),
            Err(TokensError::WrongKind { found: "reader", expected: "source" })
        ));
        let sources = readers.replace("[[reader]]", "[[source]]");
        assert!(matches!(Tokens::from_toml(&sources, Holders::Readers), Err(TokensError::WrongKind { .. })));
        let bad = "[[reader]]\nname = \"x\"\nprovince = \"Hà Nội\"\ntoken_sha256 = \"00\"\n";
        let error = Tokens::from_toml(bad, Holders::Readers).unwrap_err().to_string();
        assert!(error.starts_with("reader `x`: province must be"), "{error}");
    }

    #[test]
    fn bearer_reads_the_scheme_in_any_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("  bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
    }
}
