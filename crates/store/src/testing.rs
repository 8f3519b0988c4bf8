//! Fresh, throw-away databases for tests: a temporary SQLite file, or a new PostgreSQL database
//! (dropped when the guard goes) on the server named by `ALLOT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`).

use crate::{Store, StoreError};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Keeps a test database alive; removes it when dropped.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let path =
            std::env::temp_dir().join(format!("allot-test-{}.db", uuid::Uuid::new_v4().simple()));
        let url = path.to_string_lossy().into_owned();
        let store = Store::connect(&url)
            .await
            .expect("a SQLite file in the temp dir");
        Self {
            store,
            url,
            cleanup: Cleanup::File(path),
        }
    }

    pub async fn postgres() -> Self {
        let admin_url = std::env::var("ALLOT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
        let name = format!("allot_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {admin_url} is needed for this test (scripts/test starts it): {e}"
            )
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("CREATE DATABASE");
        admin.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("ALLOT_TEST_POSTGRES_URL needs a database path"),
        };
        let store = Store::connect(&url).await.expect("the new test database");
        Self {
            store,
            url,
            cleanup: Cleanup::Database { admin_url, name },
        }
    }

    /// Both backends, for conformance tests.
    pub async fn both() -> Vec<TestDb> {
        vec![Self::sqlite().await, Self::postgres().await]
    }

    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(p) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
                }
            }
            Cleanup::Database { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside an async test: do the async clean-up on a thread of its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let admin = sqlx::PgPool::connect(&admin_url).await.ok()?;
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&admin)
                            .await
                            .ok()
                    })
                })
                .join();
            }
        }
    }
}

/// Opens the store a test database holds, again (as a restarted process would).
pub async fn reopen(db: &TestDb) -> Result<Store, StoreError> {
    Store::connect(&db.url).await
}
