//! The source systems allowed to publish: one bearer token per source, stored as its SHA-256, each
//! allowed one province.
//!
//! ```toml
//! [[source]]
//! name = "khuyenhoc-hanoi"
//! province = "01"            # or "*" for a national source (the statistics office's geography feed)
//! token_sha256 = "9f86d0…"   # sha256 of the token, hex; `hoctap_gateway::hash_token` computes it
//! ```

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Which provinces a source may publish events for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One province, by its 2-digit code.
    Province(String),
    /// Every province (`"*"`): a national source.
    All,
}

impl Scope {
    /// Whether an event that belongs to `provinces` may come from this source. An event belongs to
    /// every province one of its units ever lay in; it is allowed when this source's province is one
    /// of them.
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

/// A source system, as authenticated.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub scope: Scope,
    token_sha256: [u8; 32],
}

/// The configured sources. Tokens themselves are never held, only their hashes.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    sources: Vec<Source>,
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
    #[error("source `{name}`: {problem}")]
    Invalid { name: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    source: Vec<Entry>,
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

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokensError::Read { path: path.display().to_string(), source })?;
        Tokens::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Tokens, TokensError> {
        let file: File = toml::from_str(text)?;
        let mut sources: Vec<Source> = Vec::with_capacity(file.source.len());
        for e in file.source {
            let invalid = |problem: String| TokensError::Invalid { name: e.name.clone(), problem };
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
            sources.push(Source { name: e.name, scope, token_sha256: hash });
        }
        Ok(Tokens { sources })
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The source whose token this is. Every configured hash is compared, each in constant time, so
    /// the time taken does not tell how close a guess came nor which entry matched.
    pub fn authenticate(&self, token: &str) -> Option<&Source> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for source in &self.sources {
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
        let tokens = Tokens::from_toml(&text).unwrap();
        let hn = tokens.authenticate("secret-hn").unwrap();
        assert_eq!((hn.name.as_str(), &hn.scope), ("hn", &Scope::Province("01".into())));
        assert_eq!(tokens.authenticate("secret-gso").unwrap().scope, Scope::All);
        assert!(tokens.authenticate("secret").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn refuses_bad_entries() {
        let bad_province = "[[source]]\nname = \"x\"\nprovince = \"1\"\ntoken_sha256 = \"00\"\n";
        assert!(matches!(Tokens::from_toml(bad_province), Err(TokensError::Invalid { .. })));
        let bad_hash = "[[source]]\nname = \"x\"\nprovince = \"01\"\ntoken_sha256 = \"plain-token\"\n";
        assert!(matches!(Tokens::from_toml(bad_hash), Err(TokensError::Invalid { .. })));
        let unknown = "[[source]]\nname = \"x\"\nprovince = \"01\"\ntoken = \"plain\"\n";
        assert!(matches!(Tokens::from_toml(unknown), Err(TokensError::Parse(_))));
        assert!(Scope::Province("01".into()).allows(["79", "01"].into_iter()));
        assert!(!Scope::Province("01".into()).allows(std::iter::empty()));
    }
}
