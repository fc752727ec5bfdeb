//! Integer keys for (place, measure), the dimension every count row refers to (`count_keys`). A city
//! has a few tens of thousands of them, so every reader and writer holds them all in memory.

use crate::codec::{measure_from_text, measure_to_text, place_from_text, place_to_text};
use crate::error::db;
use crate::{Schema, StoreError};
use hoctap_domain::{Measure, Place};
use std::collections::HashMap;
use tokio_postgres::GenericClient;

/// What a key stands for.
pub(crate) type KeyOf = (Place, Measure);

/// Every key of one generation, both ways.
#[derive(Clone, Debug, Default)]
pub(crate) struct Keys {
    of: HashMap<i32, KeyOf>,
    ids: HashMap<KeyOf, i32>,
}

impl Keys {
    /// Reads every key of `schema`.
    pub(crate) async fn load(client: &impl GenericClient, schema: &Schema) -> Result<Keys, StoreError> {
        let rows = client
            .query(
                &format!("SELECT key, place_kind, place_code, commune, measure FROM {}.count_keys", schema.ident()),
                &[],
            )
            .await
            .map_err(db("reading the count keys"))?;
        let mut keys = Keys::default();
        for row in rows {
            let (key, kind, code, commune, measure): (i32, &str, &str, &str, &str) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            let corrupt = |detail: String| StoreError::Corrupt { schema: schema.to_string(), detail };
            let place =
                place_from_text(kind, code, commune).ok_or_else(|| corrupt(format!("unknown place kind `{kind}`")))?;
            let measure = measure_from_text(measure).ok_or_else(|| corrupt(format!("unknown measure `{measure}`")))?;
            keys.insert(key, (place, measure));
        }
        Ok(keys)
    }

    fn insert(&mut self, key: i32, of: KeyOf) {
        self.ids.insert(of.clone(), key);
        self.of.insert(key, of);
    }

    pub(crate) fn of(&self, key: i32) -> Option<&KeyOf> {
        self.of.get(&key)
    }

    pub(crate) fn id(&self, of: &KeyOf) -> Option<i32> {
        self.ids.get(of).copied()
    }

    /// The keys whose measure `keep` admits.
    pub(crate) fn filter(&self, keep: impl Fn(&Measure) -> bool) -> Vec<i32> {
        let mut keys: Vec<i32> = self.of.iter().filter(|(_, (_, m))| keep(m)).map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys
    }

    /// Gives every one of `wanted` that has no key yet one, inside `tx` (another member may insert the
    /// same one concurrently: the unique constraint makes one wait, and both read the same key).
    /// Returns the keys added; add them to `self` only once `tx` committed.
    pub(crate) async fn assign<'a>(
        &self,
        tx: &impl GenericClient,
        schema: &Schema,
        wanted: impl Iterator<Item = (&'a Place, &'a Measure)>,
    ) -> Result<Keys, StoreError> {
        let mut missing: Vec<KeyOf> =
            wanted.map(|(p, m)| (p.clone(), *m)).filter(|k| !self.ids.contains_key(k)).collect();
        missing.sort();
        missing.dedup();
        let mut added = Keys::default();
        if missing.is_empty() {
            return Ok(added);
        }
        let texts: Vec<(&str, &str, &str)> = missing.iter().map(|(p, _)| place_to_text(p)).collect();
        let kinds: Vec<&str> = texts.iter().map(|t| t.0).collect();
        let codes: Vec<&str> = texts.iter().map(|t| t.1).collect();
        let communes: Vec<&str> = texts.iter().map(|t| t.2).collect();
        let measures: Vec<String> = missing.iter().map(|(_, m)| measure_to_text(*m)).collect();
        let s = schema.ident();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&kinds, &codes, &communes, &measures];
        tx.execute(
            &format!(
                "INSERT INTO {s}.count_keys (place_kind, place_code, commune, measure)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) ORDER BY 1, 2, 3, 4
                 ON CONFLICT DO NOTHING"
            ),
            &params,
        )
        .await
        .map_err(db("adding count keys"))?;
        let rows = tx
            .query(
                &format!(
                    "SELECT k.key, w.i FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
                         WITH ORDINALITY AS w(place_kind, place_code, commune, measure, i)
                     JOIN {s}.count_keys k USING (place_kind, place_code, commune, measure)"
                ),
                &params,
            )
            .await
            .map_err(db("reading count keys"))?;
        for row in rows {
            let (key, i): (i32, i64) = (row.get(0), row.get(1));
            added.insert(key, missing[i as usize - 1].clone());
        }
        Ok(added)
    }

    /// Adds the keys of `other` (after the transaction that assigned them committed).
    pub(crate) fn extend(&mut self, other: Keys) {
        for (key, of) in other.of {
            self.insert(key, of);
        }
    }
}
