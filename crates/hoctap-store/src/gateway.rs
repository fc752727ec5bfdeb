//! What the gateway remembers of the events topic, in its own schema (`<deployment>_gateway`): the ids
//! it accepted with their content digest and subject, the communes its subjects were placed in, how far
//! the topic is folded, and the writer lease that lets one gateway at a time stamp and publish.
//! Memory stays bounded by the batch being judged; a start reads only the topic's tail.
//! Design: docs/design/2026-11-30-bounded-gateway.md.

use crate::error::db;
use crate::migrate::{GATEWAY_MIGRATIONS, migrate_with};
use crate::{Schema, StoreError};
use hoctap_domain::ContentDigest;
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

/// One connection to the gateway's schema. Cheap to hold; every method is one round trip or one
/// transaction.
#[derive(Debug)]
pub struct GatewayState {
    client: Client,
    schema: Schema,
}

/// An event of the events topic as the gateway remembers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remembered {
    pub id: Uuid,
    pub digest: ContentDigest,
    pub subject: String,
}

/// What the tables hold about one batch: the events among the ids asked for, and the communes of the
/// subjects asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    pub events: Vec<Remembered>,
    /// (subject, commune), every commune a subject's events named.
    pub placements: Vec<(String, String)>,
}

/// What one request (or one chunk of the topic's tail) adds: written in one transaction, fenced by the
/// lease's epoch.
#[derive(Clone, Debug, Default)]
pub struct Folded<'a> {
    pub events: Vec<(Uuid, ContentDigest, &'a str)>,
    /// (subject, commune).
    pub placements: Vec<(&'a str, &'a str)>,
    /// The next offset to fold, per (topic, partition): the offset after the last record written.
    pub next_offsets: HashMap<(&'a str, i32), i64>,
    /// The latest `recordedtime` among them (UTC microseconds).
    pub last_recorded: i64,
}

/// The writer lease as taken: its epoch (the fencing token) and the last `recordedtime` stamped by any
/// holder before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub epoch: i64,
    pub last_recorded: i64,
}

/// Who holds the writer lease, for messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Holder {
    pub holder: String,
    pub epoch: i64,
    /// Seconds until it expires (negative: expired).
    pub expires_in: f64,
}

impl GatewayState {
    /// Connects to `postgres` (a URL or libpq-style settings) and creates or upgrades `schema`.
    pub async fn connect(postgres: &str, schema: Schema) -> Result<GatewayState, StoreError> {
        let (mut client, connection) =
            tokio_postgres::connect(postgres, NoTls).await.map_err(db("connecting for the gateway's state"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the gateway's PostgreSQL connection closed");
            }
        });
        migrate_with(&mut client, &schema, GATEWAY_MIGRATIONS).await?;
        Ok(GatewayState { client, schema })
    }

    /// Whether the connection is gone (the caller connects again).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The events among `ids` and the placements of `subjects`, in two indexed lookups.
    pub async fn known(&self, ids: &[Uuid], subjects: &[&str]) -> Result<Known, StoreError> {
        let s = self.schema.ident();
        let events_sql = format!("SELECT id, digest, subject FROM {s}.accepted WHERE id = ANY($1)");
        let placements_sql = format!("SELECT subject, commune FROM {s}.placements WHERE subject = ANY($1)");
        let (events, placements) = futures_util::future::try_join(
            self.client.query(&events_sql, &[&ids]),
            self.client.query(&placements_sql, &[&subjects]),
        )
        .await
        .map_err(db("looking up the batch's ids and subjects"))?;
        let events = events
            .iter()
            .map(|row| {
                let digest: &[u8] = row.get(1);
                let digest = <[u8; 16]>::try_from(digest).map_err(|_| StoreError::Corrupt {
                    schema: self.schema.to_string(),
                    detail: format!("the digest of event {} is {} bytes, not 16", row.get::<_, Uuid>(0), digest.len()),
                })?;
                Ok(Remembered { id: row.get(0), digest: ContentDigest(digest), subject: row.get(2) })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let placements = placements.iter().map(|row| (row.get(0), row.get(1))).collect();
        Ok(Known { events, placements })
    }

    /// Writes what `folded` adds, in one transaction, if the lease of `epoch` is still the current one
    /// (else [`StoreError::Fenced`], nothing written). Idempotent: an id or placement already there is
    /// kept, offsets and the last stamp only grow.
    pub async fn record(&mut self, epoch: i64, folded: &Folded<'_>) -> Result<(), StoreError> {
        let s = self.schema.ident();
        let tx = self.client.transaction().await.map_err(db("beginning the gateway's write"))?;
        // Locks the lease row: a taker waits until this commits, and this fails if one took it before.
        let current: Option<i64> = tx
            .query_opt(&format!("SELECT epoch FROM {s}.writer FOR UPDATE"), &[])
            .await
            .map_err(db("locking the writer lease"))?
            .map(|row| row.get(0));
        if current != Some(epoch) {
            return Err(StoreError::Fenced { epoch, current });
        }
        if !folded.events.is_empty() {
            let ids: Vec<Uuid> = folded.events.iter().map(|e| e.0).collect();
            let digests: Vec<&[u8]> = folded.events.iter().map(|e| &e.1.0[..]).collect();
            let subjects: Vec<&str> = folded.events.iter().map(|e| e.2).collect();
            tx.execute(
                &format!(
                    "INSERT INTO {s}.accepted (id, digest, subject)
                     SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[]) ON CONFLICT (id) DO NOTHING"
                ),
                &[&ids, &digests, &subjects],
            )
            .await
            .map_err(db("writing accepted ids"))?;
        }
        if !folded.placements.is_empty() {
            let subjects: Vec<&str> = folded.placements.iter().map(|p| p.0).collect();
            let communes: Vec<&str> = folded.placements.iter().map(|p| p.1).collect();
            tx.execute(
                &format!(
                    "INSERT INTO {s}.placements (subject, commune)
                     SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING"
                ),
                &[&subjects, &communes],
            )
            .await
            .map_err(db("writing placements"))?;
        }
        if !folded.next_offsets.is_empty() {
            let topics: Vec<&str> = folded.next_offsets.keys().map(|k| k.0).collect();
            let partitions: Vec<i32> = folded.next_offsets.keys().map(|k| k.1).collect();
            let offsets: Vec<i64> = folded.next_offsets.values().copied().collect();
            tx.execute(
                &format!(
                    "INSERT INTO {s}.folded (topic, partition, next_offset)
                     SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[])
                     ON CONFLICT (topic, partition)
                     DO UPDATE SET next_offset = GREATEST(folded.next_offset, EXCLUDED.next_offset)"
                ),
                &[&topics, &partitions, &offsets],
            )
            .await
            .map_err(db("writing folded offsets"))?;
        }
        tx.execute(
            &format!("UPDATE {s}.writer SET last_recorded = GREATEST(last_recorded, $1)"),
            &[&folded.last_recorded],
        )
        .await
        .map_err(db("writing the last recordedtime"))?;
        tx.commit().await.map_err(db("committing the gateway's write"))
    }

    /// The next offset to fold of each partition of `topic` (a partition not listed: from its beginning).
    pub async fn folded(&self, topic: &str) -> Result<HashMap<i32, i64>, StoreError> {
        let s = self.schema.ident();
        let rows = self
            .client
            .query(&format!("SELECT partition, next_offset FROM {s}.folded WHERE topic = $1"), &[&topic])
            .await
            .map_err(db("reading folded offsets"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Takes the writer lease for `ttl` if nobody holds it (never taken, expired or released); `None`
    /// when another gateway holds it. Each taking gets a larger epoch.
    pub async fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        let s = self.schema.ident();
        let row = self
            .client
            .query_opt(
                &format!(
                    "INSERT INTO {s}.writer AS w (holder, epoch, expires_at, last_recorded)
                     VALUES ($1, 1, now() + make_interval(secs => $2), 0)
                     ON CONFLICT (one) DO UPDATE
                        SET holder = EXCLUDED.holder, epoch = w.epoch + 1, expires_at = EXCLUDED.expires_at
                        WHERE w.expires_at < now()
                     RETURNING epoch, last_recorded"
                ),
                &[&holder, &ttl.as_secs_f64()],
            )
            .await
            .map_err(db("taking the writer lease"))?;
        Ok(row.map(|row| Lease { epoch: row.get(0), last_recorded: row.get(1) }))
    }

    /// Extends the lease of `epoch` by `ttl` from now; `false` when another gateway took it since.
    pub async fn renew(&self, holder: &str, epoch: i64, ttl: Duration) -> Result<bool, StoreError> {
        let s = self.schema.ident();
        let n = self
            .client
            .execute(
                &format!(
                    "UPDATE {s}.writer SET expires_at = now() + make_interval(secs => $3)
                     WHERE holder = $1 AND epoch = $2"
                ),
                &[&holder, &epoch, &ttl.as_secs_f64()],
            )
            .await
            .map_err(db("renewing the writer lease"))?;
        Ok(n == 1)
    }

    /// Gives the lease of `epoch` up at once (a graceful stop), so that a standby takes it without
    /// waiting for it to expire.
    pub async fn release(&self, holder: &str, epoch: i64) -> Result<(), StoreError> {
        let s = self.schema.ident();
        self.client
            .execute(
                &format!(
                    "UPDATE {s}.writer SET expires_at = now() - interval '1 second' WHERE holder = $1 AND epoch = $2"
                ),
                &[&holder, &epoch],
            )
            .await
            .map_err(db("releasing the writer lease"))?;
        Ok(())
    }

    /// Who holds the lease now, if it was ever taken.
    pub async fn holder(&self) -> Result<Option<Holder>, StoreError> {
        let s = self.schema.ident();
        let row = self
            .client
            .query_opt(
                &format!("SELECT holder, epoch, extract(epoch FROM expires_at - now())::float8 FROM {s}.writer"),
                &[],
            )
            .await
            .map_err(db("reading the writer lease"))?;
        Ok(row.map(|row| Holder { holder: row.get(0), epoch: row.get(1), expires_in: row.get(2) }))
    }

    /// Drops the schema and everything in it (tests, starting over).
    pub async fn drop_schema(postgres: &str, schema: &Schema) -> Result<(), StoreError> {
        let (client, connection) =
            tokio_postgres::connect(postgres, NoTls).await.map_err(db("connecting for the gateway's state"))?;
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", schema.ident()))
            .await
            .map_err(db("dropping the gateway's schema"))?;
        drop(client);
        let _ = connection.await;
        Ok(())
    }

    /// Bytes of the schema's tables and indexes on disk, for benchmarks.
    pub async fn total_bytes(&self) -> Result<i64, StoreError> {
        crate::stats::size_bytes(&self.client, &self.schema).await
    }

    /// Rows in `accepted` and `placements`, for benchmarks and tests.
    pub async fn sizes(&self) -> Result<(i64, i64), StoreError> {
        let s = self.schema.ident();
        let row = self
            .client
            .query_one(
                &format!("SELECT (SELECT count(*) FROM {s}.accepted), (SELECT count(*) FROM {s}.placements)"),
                &[],
            )
            .await
            .map_err(db("counting the gateway's rows"))?;
        Ok((row.get(0), row.get(1)))
    }
}
