//! Write speed of the store: 1,000,000 assignments upserted in pages of 1,000, as a full sync
//! does, then again (the next full sync refreshes every row). On SQLite, first the ceiling: the
//! same rows into a bare table of the same key (no other index, no conflict clause), through the
//! same driver, in the same run.
//!
//!     cargo run --release -p allot-store --example store_bench -- [postgres://…]

use std::time::Instant;

use allot_domain::{Claim, Program};
use allot_store::{AssignmentRow, Holder, NewToken, Store};

fn token(name: &str, uid: &str) -> NewToken {
    NewToken {
        name: name.into(),
        description: String::new(),
        categories: vec![],
        apple_account: String::new(),
        program: Program::Business,
        uid: uid.into(),
        org_name: "Bench".into(),
        location_name: String::new(),
        country: String::new(),
        secret: vec![0; 48],
        notification_secret: None,
        expires_at: i64::MAX,
        claim: Claim::Ours,
        other_mdm: None,
    }
}

/// The SQLite ceiling: the same rows into a bare WITHOUT ROWID table keyed like `assignments`
/// (no other index, no conflict clause, no generation to compare), the fastest way this driver
/// offers — 5,000 rows a statement as one JSON parameter, ten pages a transaction, as the store
/// now writes them.
async fn raw_ceiling(
    dir: &std::path::Path,
    page: &impl Fn(usize) -> Vec<AssignmentRow>,
) -> Result<(), Box<dyn std::error::Error>> {
    use allot_store::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let opts = SqliteConnectOptions::new()
        .filename(dir.join("raw.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("cache_size", "-16384");
    let pool = allot_store::sqlx::SqlitePool::connect_with(opts).await?;
    allot_store::sqlx::query(
        "CREATE TABLE raw (token_id INTEGER NOT NULL, adam_id TEXT NOT NULL, pricing TEXT NOT NULL, \
         holder_kind TEXT NOT NULL, holder TEXT NOT NULL, generation INTEGER NOT NULL, \
         PRIMARY KEY (token_id, adam_id, pricing, holder_kind, holder)) WITHOUT ROWID",
    )
    .execute(&pool)
    .await?;
    let started = Instant::now();
    for w in 0..100 {
        let rows: Vec<AssignmentRow> = (w * 10..(w + 1) * 10).flat_map(page).collect();
        let mut tx = pool.begin().await?;
        for chunk in rows.chunks(5_000) {
            let json: Vec<[&str; 4]> = chunk
                .iter()
                .map(|a| {
                    [
                        a.adam_id.as_str(),
                        a.pricing.as_str(),
                        a.holder.kind(),
                        a.holder.id(),
                    ]
                })
                .collect();
            allot_store::sqlx::query(
                "INSERT INTO raw (token_id, adam_id, pricing, holder_kind, holder, generation) \
                 SELECT 1, j.value->>0, j.value->>1, j.value->>2, j.value->>3, 1000 FROM json_each($1) AS j",
            )
            .bind(serde_json::to_string(&json)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sqlite ceiling (bare table of the same key, JSON rows, 10 pages a transaction): 1,000,000 rows in {secs:.1} s ({:.0} rows/s)",
        1e6 / secs
    );
    pool.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("allot-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| dir.join("bench.db").to_string_lossy().into_owned());
    let store = Store::connect(&url).await?;
    let t = store
        .insert_token(
            &token(
                &format!("bench-{}", std::process::id()),
                &format!("9{}", std::process::id()),
            ),
            0,
        )
        .await?;
    let page = |p: usize| -> Vec<AssignmentRow> {
        (0..1000)
            .map(|i| {
                let n = p * 1000 + i;
                AssignmentRow {
                    adam_id: format!("{}", 1_000_000_000 + n % 500),
                    pricing: "STDQ".into(),
                    holder: if n.is_multiple_of(4) {
                        Holder::User(format!("u-7-{:07}", n / 500))
                    } else {
                        Holder::Device(format!("G7{:09}", n / 500))
                    },
                }
            })
            .collect()
    };
    if store.backend() == "sqlite" {
        raw_ceiling(&dir, &page).await?;
    }
    // As the sync writes (ALLOT's AssignmentSink): Apple's pages of 1,000 gathered into writes of
    // `PAGES_A_WRITE` pages, one transaction each (pages of a full sync land in a few hundred
    // places of the key, so fewer, larger transactions rewrite each B-tree page less often).
    let per_write: usize = std::env::var("PAGES_A_WRITE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(allot_store::ASSIGNMENT_PAGES_A_WRITE);
    println!("{} writes of {per_write} pages", store.backend());
    for (round, gen) in [
        ("first full sync (inserts)", 1000),
        ("next full sync (refreshes)", 2000),
    ] {
        let started = Instant::now();
        for w in 0..1000 / per_write {
            let rows: Vec<AssignmentRow> = (w * per_write..(w + 1) * per_write)
                .flat_map(&page)
                .collect();
            store.upsert_assignments(t.id, &rows, gen).await?;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{} {round}: 1,000,000 rows in {secs:.1} s ({:.0} rows/s)",
            store.backend(),
            1e6 / secs
        );
    }
    let started = Instant::now();
    let removed = store.delete_stale_assignments(t.id, 2000).await?;
    println!(
        "{} stale deletion (none stale) {removed} rows in {:.2} s",
        store.backend(),
        started.elapsed().as_secs_f64()
    );
    store.delete_token(t.id).await?;

    // Thousands of tokens: what listing them costs (the token list in the API and console).
    let started = Instant::now();
    for i in 0..3000 {
        let mut nt = token(&format!("many-{i:04}"), &format!("8{i:08}"));
        nt.org_name = "Many".into();
        let t = store.insert_token(&nt, 0).await?;
        let run = store.start_sync_run(t.id, "full", "bench", 0).await?;
        store
            .finish_sync_run(run, "succeeded", Default::default(), None, 1)
            .await?;
    }
    println!(
        "{} 3,000 tokens with a sync run each stored in {:.1} s",
        store.backend(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let tokens = store.tokens().await?;
    let ids: Vec<i64> = tokens.iter().map(|t| t.id).collect();
    let runs = store.latest_sync_runs_of(&ids).await?;
    println!(
        "{} listing 3,000 tokens and their latest runs: {} + {} rows in {:.0} ms",
        store.backend(),
        tokens.len(),
        runs.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    for t in tokens {
        store.delete_token(t.id).await?;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
