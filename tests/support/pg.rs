//! The machine's PostgreSQL, for the tests that need it (database `test`, trust authentication).

use tokio_postgres::{Client, NoTls};

/// Where the tests' PostgreSQL is.
pub const PG_URL: &str = "postgresql://postgres@127.0.0.1:5432/test";

/// A connection to [`PG_URL`]; panics with how to start PostgreSQL when it is not reachable (the tests
/// that need it never skip). Call it inside a Tokio runtime.
pub async fn pg_connect() -> Client {
    pg_connect_to(PG_URL).await
}

/// A connection to the PostgreSQL at `url`, like [`pg_connect`].
pub async fn pg_connect_to(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at `{url}` ({e}). These tests need it: run `scripts/services.sh` or \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )
    });
    tokio::spawn(async move {
        // Ends when the client is dropped or the server closes the connection (a test may kill it).
        let _ = connection.await;
    });
    client
}
