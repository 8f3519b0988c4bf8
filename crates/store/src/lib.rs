//! Allot's storage contract and its two implementations: SQLite (the default: one file, no
//! set-up) and PostgreSQL (several Allot instances behind a load balancer). Each backend has its
//! own migrations; the queries are shared (see `queries.rs`), and [`Store`] dispatches to the
//! backend so that generics do not spread through the server.

mod alert_queries;
mod app_list_queries;
mod console_queries;
mod declarative_queries;
mod deployment_queries;
pub mod inventory;
mod inventory_queries;
mod postgres;
mod queries;
mod sqlite;
mod subscription_queries;
mod target_queries;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;

pub use inventory::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
/// The database library, for callers that classify its errors.
pub use sqlx;
pub use types::*;

/// How many of Apple's pages of assignments (1,000 rows) a full sync writes in one transaction
/// (measured in `examples/store_bench.rs`; see docs/performance.md).
pub const ASSIGNMENT_PAGES_A_WRITE: usize = 10;

/// A device whose serial number, name or model contains `$1` (a `like_contains` pattern).
/// The people list's search as a scan: a substring of the name or e-mail, on `$1`.
pub(crate) const PERSON_LIKE: &str =
    "(LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(COALESCE(email, '')) LIKE $1 ESCAPE '\\')";
pub(crate) const DEVICE_LIKE: &str = "(LOWER(serial_number) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(model) LIKE $1 ESCAPE '\\')";

/// An asset row whose search text contains `$2` (`assets.search_key` is lower-cased): PostgreSQL's
/// trigram index serves it; SQLite uses it for searches shorter than a trigram (else its FTS5).
pub(crate) const ASSET_LIKE: &str = "a.search_key LIKE $2 ESCAPE '\\'";

/// `column IN (ids)` for a list of ids written into the SQL (numbers only, so nothing to
/// escape); `None`: no condition; an empty list: nothing matches.
pub fn ids_in(column: &str, ids: Option<&[i64]>) -> String {
    match ids {
        None => "TRUE".into(),
        Some([]) => "FALSE".into(),
        Some(ids) => format!(
            "{column} IN ({})",
            ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (token name, location, key) exists already.
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    fn from_insert(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(d.message().to_owned())
            }
            _ => StoreError::Database(e),
        }
    }
}

/// Generations per sync run: rows written by step `k` of run `r` carry `r * 1000 + k`, so a run
/// can replace part of the data (one asset's assignments) with a later step, and rows from
/// notifications (step 999) are never older than the run in progress.
pub const GENERATION_STEPS: i64 = 1000;

/// `s` for a `LIKE` pattern, its `%`, `_` and backslash matched as themselves (the queries say
/// `ESCAPE` with a backslash).
pub fn like_escape(s: &str) -> String {
    let mut p = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}

/// A `LIKE` pattern for text that contains `s`, lower-cased.
pub fn like_contains(s: &str) -> String {
    format!("%{}%", like_escape(&s.to_lowercase()))
}

pub fn generation(run: i64, step: i64) -> i64 {
    run * GENERATION_STEPS + step
}

/// The sqlx database a backend is, for helpers the query macros write once for both.
pub(crate) trait Backend {
    type Db: sqlx::Database;
}

impl Backend for SqliteStore {
    type Db = sqlx::Sqlite;
}

impl Backend for PgStore {
    type Db = sqlx::Postgres;
}

/// The store, whichever backend holds it.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// `postgres://…` selects PostgreSQL; anything else is a SQLite file path (or
    /// `sqlite::memory:`). Migrations run before the store is handed out.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::connect(url).await?))
        } else {
            Ok(Store::Sqlite(SqliteStore::connect(url).await?))
        }
    }

    /// A consistent copy of a SQLite database into a new file while the server may be running
    /// (`VACUUM INTO` reads one snapshot). PostgreSQL has its own tools (`pg_dump`).
    pub async fn backup_into(&self, path: &std::path::Path) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.backup_into(path).await,
            Store::Postgres(_) => Err(StoreError::Config(
                "the database is PostgreSQL: back it up with pg_dump (and keep the secret key with it)".into(),
            )),
        }
    }

    /// Keeps the query planner's statistics current: SQLite's `PRAGMA optimize`; PostgreSQL's
    /// `ANALYZE` of the tables that changed much (and, where autovacuum is off, `VACUUM` of those
    /// it would vacuum). The store analyzes as it opens; the server runs this at start-up and
    /// hourly, in the background.
    pub async fn optimize(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.optimize().await,
            Store::Postgres(s) => s.optimize().await,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )*) => {
        impl Store {
            $(
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    fn setting(&self, key: &str) -> Option<String>;
    fn setting_or_insert(&self, key: &str, value: &str) -> String;
    fn insert_token(&self, t: &NewToken, now: i64) -> TokenRow;
    fn token(&self, id: i64) -> Option<TokenRow>;
    fn token_by_uid(&self, uid: &str) -> Option<TokenRow>;
    fn token_by_name(&self, name: &str) -> Option<TokenRow>;
    fn tokens(&self) -> Vec<TokenRow>;
    fn token_labels(&self) -> Vec<TokenLabel>;
    fn token_labels_of(&self, ids: &[i64]) -> Vec<TokenLabel>;
    fn token_names_like(&self, search: &str, ids_in: Option<&[i64]>, limit: i64) -> Vec<String>;
    fn token_categories(&self, ids_in: Option<&[i64]>) -> Vec<String>;
    fn token_briefs(&self) -> Vec<TokenBrief>;
    fn token_briefs_needing_attention(&self, expiring_before: i64, stale_before: i64) -> Vec<TokenBrief>;
    fn tokens_by_ids(&self, ids: &[i64]) -> Vec<TokenRow>;
    fn tokens_page(&self, ids_in: Option<&[i64]>, limit: i64, offset: i64) -> (Vec<TokenRow>, i64);
    fn latest_sync_statuses(&self) -> std::collections::HashMap<i64, String>;
    fn latest_sync_runs_of(&self, ids: &[i64]) -> Vec<SyncRun>;
    fn renew_token(&self, id: i64, secret: &[u8], expires_at: i64, org_name: &str, now: i64) -> ();
    fn set_claim(&self, id: i64, claim: allot_domain::Claim, other_mdm: Option<&str>, now: i64) -> ();
    fn set_location(&self, id: i64, location_name: &str, country: &str) -> ();
    fn set_notification_secret(&self, id: i64, secret: Option<&[u8]>) -> ();
    fn set_auth_error(&self, id: i64, number: Option<i32>, now: i64) -> ();
    fn set_last_error(&self, id: i64, error: Option<&str>, now: i64) -> ();
    fn set_full_sync_wanted(&self, id: i64, wanted: bool) -> ();
    fn mark_synced(&self, id: i64, full: bool, assignments_version: Option<&str>, users_version: Option<&str>, serial: i64, now: i64) -> ();
    fn delete_token(&self, id: i64) -> bool;
    fn try_lease(&self, id: i64, owner: &str, now: i64, until: i64) -> bool;
    fn release_lease(&self, id: i64, owner: &str) -> ();
    fn release_leases_of_instance(&self, instance: &str) -> u64;
    fn upsert_assets(&self, token_id: i64, rows: &[AssetRow], generation: i64, now: i64) -> ();
    fn delete_stale_assets(&self, token_id: i64, generation: i64) -> u64;
    fn assets(&self, token_id: i64) -> Vec<AssetRow>;
    fn asset_holdings(&self, adam_id: &str, pricing: &str) -> Vec<(i64, AssetRow)>;
    fn adjust_asset_total(&self, token_id: i64, adam_id: &str, pricing: &str, delta: i64, now: i64) -> bool;
    fn upsert_assignments(&self, token_id: i64, rows: &[AssignmentRow], generation: i64) -> ();
    fn delete_stale_assignments(&self, token_id: i64, generation: i64) -> u64;
    fn delete_stale_asset_assignments(&self, token_id: i64, adam_id: &str, pricing: &str, generation: i64) -> u64;
    fn set_sync_run_kind(&self, run: i64, kind: &str, reason: &str) -> ();
    fn count_assignments(&self, token_id: i64) -> i64;
    fn assignment_counts(&self, token_id: i64) -> Vec<(String, String, i64)>;
    fn add_assignment(&self, token_id: i64, a: &AssignmentRow, generation: i64) -> bool;
    fn add_assignments(&self, token_id: i64, rows: &[AssignmentRow], generation: i64, now: i64) -> u64;
    fn remove_assignments(&self, token_id: i64, rows: &[AssignmentRow]) -> u64;
    fn remove_assignment(&self, token_id: i64, a: &AssignmentRow) -> bool;
    fn assignments(&self, token_id: i64) -> Vec<AssignmentRow>;
    fn current_generation(&self, token_id: i64) -> i64;
    fn upsert_users(&self, token_id: i64, rows: &[UserRow], generation: i64) -> ();
    fn delete_stale_users(&self, token_id: i64, generation: i64) -> u64;
    fn users(&self, token_id: i64) -> Vec<UserRow>;
    fn upsert_metadata(&self, rows: &[MetadataRow], now: i64) -> ();
    fn metadata_due(&self, token_id: i64, older_than: i64) -> Vec<(String, String)>;
    fn metadata(&self, adam_id: &str) -> Option<MetadataRow>;
    fn mark_notification_seen(&self, id: &str, token_id: i64, kind: &str, now: i64) -> bool;
    fn forget_notification(&self, id: &str) -> ();
    fn start_sync_run(&self, token_id: i64, kind: &str, reason: &str, now: i64) -> i64;
    fn sync_progress(&self, run: i64, pages: i64, pages_total: i64) -> ();
    fn finish_sync_run(&self, run: i64, status: &str, counts: SyncCounts, error: Option<&str>, now: i64) -> ();
    fn sync_run(&self, id: i64) -> Option<SyncRun>;
    fn latest_sync_run(&self, token_id: i64) -> Option<SyncRun>;
    fn interrupt_abandoned_runs(&self, now: i64) -> u64;
    fn insert_api_key(&self, name: &str, key_hash: &str, role: &str, scope: Option<&str>, now: i64) -> i64;
    fn set_api_key_access(&self, id: i64, role: &str, scope: Option<&str>) -> bool;
    fn api_key_by_hash(&self, key_hash: &str) -> Option<ApiKeyRow>;
    fn insert_config_api_key(&self, key_hash: &str, now: i64) -> i64;
    fn api_keys(&self) -> Vec<ApiKeyRow>;
    fn revoke_api_key(&self, id: i64, now: i64) -> bool;
    fn touch_api_key(&self, id: i64, now: i64) -> ();
    fn count_api_keys(&self) -> i64;
    fn app_licenses(&self, f: &AppFilter) -> (Vec<AppLicense>, i64);
    fn insert_person(&self, p: &NewPerson, client_user_id: &str, now: i64) -> PersonRow;
    fn update_person(&self, id: i64, p: &NewPerson, now: i64) -> ();
    fn person(&self, id: i64) -> Option<PersonRow>;
    fn person_by_email(&self, email: &str) -> Option<PersonRow>;
    fn people(&self, search: Option<&str>, apple_status: Option<&str>, limit: i64, offset: i64) -> (Vec<PersonRow>, i64);
    fn remove_person(&self, id: i64, now: i64) -> bool;
    fn upsert_device(&self, d: &NewDevice, now: i64) -> (DeviceRow, bool);
    fn upsert_devices(&self, devices: &[NewDevice], now: i64) -> (u64, u64);
    fn upsert_people(&self, people: &[(NewPerson, String)], now: i64) -> (u64, u64);
    fn people_by_emails(&self, emails: &[String]) -> std::collections::HashMap<String, i64>;
    fn device(&self, id: i64) -> Option<DeviceRow>;
    fn device_by_serial(&self, serial: &str) -> Option<DeviceRow>;
    fn device_by_enrollment(&self, enrollment_id: &str) -> Option<DeviceRow>;
    fn devices(&self, search: Option<&str>, limit: i64, offset: i64) -> (Vec<DeviceRow>, i64);
    fn set_device_unenrolled(&self, id: i64, now: i64) -> bool;
    fn devices_to_reclaim(&self, before: i64, limit: i64) -> Vec<DeviceRow>;
    fn mark_device_reclaimed(&self, device_id: i64, now: i64) -> ();
    fn set_primary_person(&self, device_id: i64, person_id: Option<i64>, now: i64) -> ();
    fn record_mdm_event(&self, event_id: &str, now: i64, forget_before: i64) -> bool;
    fn advance_device_event(&self, device_id: i64, at: i64) -> bool;
    fn forget_mdm_event(&self, event_id: &str) -> ();
    fn asset_holders(&self, token_ids: &[i64], adam_id: &str, pricing: &str) -> Vec<(String, String)>;
    fn insert_deployment(&self, d: &NewDeployment, now: i64) -> DeploymentRow;
    fn deployments(&self) -> Vec<DeploymentRow>;
    fn deployment(&self, id: i64) -> Option<DeploymentRow>;
    fn add_targets(&self, deployment_id: i64, members: &[(i64, String)], now: i64) -> u64;
    fn targets(&self, deployment_id: i64) -> Vec<TargetRow>;
    fn targets_by_command(&self, command_uuid: &str) -> Vec<TargetRow>;
    fn supersede_targets(&self, deployment_id: i64, now: i64) -> (u64, u64);
    fn mark_incompatible(&self, deployment_id: i64, compatible: Option<&[&str]>, minimum: Option<&allot_domain::compat::MinimumOs>, now: i64) -> (u64, u64);
    fn confirm_targets(&self, deployment_id: i64, member_ids: &[i64], now: i64) -> u64;
    fn ledger_diff(&self, token_id: Option<i64>, limit: i64) -> Vec<LedgerRow>;
    fn record_ledger_actions(&self, actions: &[LedgerAction]) -> ();
    fn ledger_actions(&self, limit: i64) -> Vec<LedgerAction>;
    fn overlapping_deployments(&self, adam_id: &str, pricing: &str, collection_id: i64) -> Vec<(DeploymentRow, i64)>;
    fn update_target(&self, t: &TargetRow, now: i64) -> ();
    fn update_target_from(&self, t: &TargetRow, from: &[&str], now: i64) -> bool;
    fn update_targets_from(&self, items: &[(&TargetRow, &str)], now: i64) -> u64;
    fn sync_targets(&self, deployment_id: i64, collection_id: i64, kind: &str, on_leave: &str, now: i64) -> u64;
    fn in_collection(&self, collection_id: i64, member_id: i64) -> bool;
    fn set_device_links(&self, id: i64, primary_person_id: Option<i64>, enrollment_id: Option<&str>, now: i64) -> ();
    fn requests_in_flight(&self) -> i64;
    fn devices_due_for_app_list(&self, asked_before: i64, lost_before: i64, limit: i64) -> Vec<(i64, String)>;
    fn mark_app_list_asked(&self, device_ids: &[i64], command_uuid: &str, now: i64) -> ();
    fn declared_apps(&self, device_id: i64) -> Vec<DeclaredApp>;
    fn fill_os_version_numbers(&self) -> u64;
    fn enable_subscription_management(&self, token_id: i64, now: i64) -> ();
    fn subscription_management(&self, token_id: i64) -> Option<(i64, Option<i64>)>;
    fn replace_subscriptions(&self, token_id: i64, subs: &[SubscriptionRow], seats: &[SeatRow], now: i64) -> ();
    fn apply_subscription_counts(&self, token_id: i64, c: &SubscriptionRow, now: i64) -> ();
    fn put_seats(&self, token_id: i64, seats: &[SeatRow], now: i64) -> ();
    fn remove_seats(&self, token_id: i64, seats: &[(i64, String)]) -> u64;
    fn mark_seats_leaving(&self, token_id: i64, adam_id: i64, users: &[String], now: i64) -> u64;
    fn subscriptions(&self, token_id: Option<i64>) -> Vec<SubscriptionRow>;
    fn subscription_seats(&self, token_id: i64, adam_id: i64) -> Vec<SeatRow>;
    fn insert_subscription_intent(&self, token_id: i64, adam_id: i64, collection_id: i64, renewing: bool, now: i64) -> i64;
    fn subscription_intents(&self, token_id: Option<i64>) -> Vec<SubscriptionIntentRow>;
    fn delete_subscription_intent(&self, id: i64) -> bool;
    fn intent_users(&self, intent_id: i64) -> Vec<String>;
    fn targets_of_member(&self, kind: &str, member_id: i64) -> Vec<(i64, String, String, String, Option<String>, Option<i64>)>;
    fn collection_people_registered(&self, collection_id: i64, token_id: i64) -> Vec<(PersonRow, bool)>;
    fn add_intent_users(&self, intent_id: i64, users: &[String]) -> ();
    fn remove_intent_users(&self, intent_id: i64, users: &[String]) -> ();
    fn mark_declarations_dirty(&self, device_ids: &[i64], now: i64) -> ();
    fn mark_declarations_dirty_since(&self, since: i64, now: i64) -> u64;
    fn declarations_dirty(&self, limit: i64) -> Vec<(i64, String, Option<String>, i64)>;
    fn declarations_told(&self, device_id: i64, token: &str, marked_at: i64) -> ();
    fn record_dm_apps(&self, device_id: i64, apps: &[DmApp], now: i64) -> ();
    fn dm_apps(&self, device_id: i64) -> Vec<DmApp>;
    fn declarative_targets_on_device(&self, device_id: i64) -> Vec<DeviceTarget>;
    fn app_list_due_now(&self, enrollment_id: &str) -> ();
    fn device_for_app_list(&self, command_uuid: &str, enrollment_id: &str) -> Option<i64>;
    fn record_device_apps(&self, device_id: i64, apps: &[DeviceApp], now: i64) -> ();
    fn device_apps(&self, device_id: i64) -> Vec<DeviceApp>;
    fn targets_on_device(&self, device_id: i64) -> Vec<DeviceTarget>;
    fn record_pushes(&self, failed: &[(String, String)], delivered: &[String], backoff_ms: i64, now: i64) -> ();
    fn clear_push_error(&self, enrollment_id: &str) -> ();
    fn note_waiting_commands(&self, sent_before: i64) -> i64;
    fn push_failures_since(&self, since: i64) -> i64;
    fn devices_due_for_info(&self, reported_before: i64, lost_before: i64, limit: i64) -> Vec<(i64, String)>;
    fn mark_device_queries(&self, enrollment_ids: &[String], command_uuid: &str, now: i64) -> ();
    fn record_device_info(&self, device_id: i64, os_version: Option<&str>, model: Option<&str>, at: i64) -> ();
    fn claim_device_query(&self, enrollment_id: &str, command_uuid: &str, now: i64, asked_before: i64) -> bool;
    fn is_device_query(&self, command_uuid: &str, enrollment_id: &str) -> bool;
    fn forget_device_query(&self, enrollment_id: &str, command_uuid: &str) -> ();
    fn pushes_due(&self, now: i64, max_attempts: i64, limit: i64) -> Vec<String>;
    fn push_failures(&self, limit: i64) -> (Vec<(String, String, String, i64, Option<i64>)>, i64);
    fn end_deployment(&self, id: i64, then: &str) -> bool;
    fn mark_collection_deleting(&self, id: i64, now: i64) -> ();
    fn mark_token_deleting(&self, id: i64, now: i64) -> ();
    fn freed_for_deletion(&self) -> (Vec<i64>, Vec<i64>);
    fn wind_down_targets(&self, deployment_id: i64, then: &str, now: i64) -> i64;
    fn member_targets_page(&self, deployment_id: i64, kind: &str, statuses: &[&str], after_member: i64, limit: i64) -> Vec<MemberTarget>;
    fn targets_in(&self, deployment_id: i64, statuses: &[&str], updated_before: i64, limit: i64) -> Vec<TargetRow>;
    fn apple_user(&self, token_id: i64, client_user_id: &str) -> Option<UserRow>;
    fn apple_user_records(&self, client_user_id: &str) -> Vec<(i64, UserRow)>;
    fn apple_user_records_of(&self, client_user_ids: &[String]) -> Vec<(i64, UserRow)>;
    fn finish_release(&self, token_id: i64, target: &TargetRow, released: Option<&AssignmentRow>, now: i64) -> bool;
    fn finish_releases(&self, token_id: i64, items: &[(TargetRow, Option<AssignmentRow>)], now: i64) -> u64;
    fn resend_to_enrollment(&self, enrollment_id: &str, now: i64) -> u64;
    fn delete_deployment(&self, id: i64) -> bool;
    fn move_targets(&self, deployment_id: i64, from: &str, to: &str, detail: &str, now: i64) -> u64;
    fn try_lease_deployment(&self, id: i64, owner: &str, now: i64, until: i64) -> bool;
    fn release_deployment_lease(&self, id: i64, owner: &str) -> ();
    fn target_by_label(&self, deployment_id: i64, label: &str) -> Option<TargetRow>;
    fn resend_invitation(&self, client_user_id: &str, now: i64) -> u64;
    fn people_to_reclaim(&self, before: i64, limit: i64) -> Vec<PersonRow>;
    fn mark_person_reclaimed(&self, person: &PersonRow, now: i64) -> ();
    fn licenses_held(&self, kind: &str, holder: &str) -> Vec<(i64, AssignmentRow)>;
    fn device_page_details(&self, serials: &[String], device_ids: &[i64], person_ids: &[i64]) -> DevicePageDetails;
    fn pending_events(&self, deployment_id: i64) -> Vec<(Option<String>, i64)>;
    fn targets_of_event(&self, deployment_id: i64, event_id: Option<&str>, limit: i64) -> Vec<TargetRow>;
    fn target_counts(&self, deployment_id: i64) -> Vec<(String, i64)>;
    fn all_target_counts(&self) -> std::collections::HashMap<i64, Vec<(String, i64)>>;
    fn targets_page(&self, deployment_id: i64, status: Option<&str>, limit: i64, offset: i64) -> Vec<TargetRow>;
    fn holders_among(&self, token_ids: &[i64], adam_id: &str, pricing: &str, kind: &str, holders: &[String]) -> std::collections::HashMap<String, i64>;
    fn reserve_licenses(&self, token_id: i64, adam_id: &str, pricing: &str, n: i64) -> bool;
    fn reserve_for_targets(&self, token_id: i64, adam_id: &str, pricing: &str, targets: &[TargetRow], now: i64) -> bool;
    fn release_licenses(&self, token_id: i64, adam_id: &str, pricing: &str, n: i64) -> ();
    fn claimable(&self, token_id: i64, adam_id: &str, pricing: &str) -> i64;
    fn finish_claims(&self, token_id: i64, items: &[(TargetRow, Option<AssignmentRow>)], generation: i64, now: i64) -> ();
    fn record_event_results(&self, event_id: &str, results: &[(String, Option<(i32, String)>)], now: i64) -> u64;
    fn event_results(&self, event_id: &str) -> std::collections::HashMap<String, Option<(i32, String)>>;
    fn forget_event_results(&self, event_id: &str, before: i64) -> ();
    fn set_targets_event(&self, deployment_id: i64, member_ids: &[i64], status: &str, event_id: &str, now: i64) -> u64;
    fn insert_collection(&self, name: &str, kind: &str, description: &str, now: i64) -> CollectionRow;
    fn insert_account(&self, username: &str, password_hash: &str, role: &str, scope: Option<&str>, now: i64) -> i64;
    fn accounts(&self) -> Vec<AccountRow>;
    fn account(&self, id: i64) -> Option<AccountRow>;
    fn set_account_access(&self, id: i64, role: &str, scope: Option<&str>, disabled_at: Option<i64>) -> bool;
    fn set_account_password(&self, id: i64, password_hash: &str) -> bool;
    fn record_sign_in(&self, id: i64, now: i64) -> ();
    fn count_accounts(&self) -> i64;
    fn account_by_username(&self, username: &str) -> Option<(AccountRow, String)>;
    fn insert_session(&self, token_hash: &str, account_id: i64, csrf: &str, expires_at: i64) -> ();
    fn session(&self, token_hash: &str, now: i64) -> Option<(AccountRow, String)>;
    fn delete_session(&self, token_hash: &str, now: i64) -> ();
    fn record_license_history(&self, token_id: i64, now: i64) -> u64;
    fn license_history(&self, token_id: i64, adam_id: &str, pricing: &str) -> Vec<(i64, i64, i64)>;
    fn asset_assignments(&self, token_id: i64, adam_id: &str, pricing: &str, status: Option<&str>, limit: i64, offset: i64) -> (Vec<AssignmentStatus>, i64);
    fn unused_licenses(&self, before: i64, limit: i64) -> Vec<UnusedLicense>;
    fn installed_on_device(&self, device_id: i64) -> Vec<String>;
    fn collections(&self) -> Vec<CollectionRow>;
    fn collection_names(&self, kind: &str) -> Vec<(i64, String)>;
    fn collection(&self, id: Option<i64>, name: Option<&str>) -> Option<CollectionRow>;
    fn add_collection_members(&self, collection_id: i64, member_ids: &[i64]) -> u64;
    fn remove_collection_members(&self, collection_id: i64, member_ids: &[i64]) -> u64;
    fn collection_members(&self, collection_id: i64) -> Vec<i64>;
    fn delete_collection(&self, id: i64) -> bool;
    fn collection_devices(&self, collection_id: i64) -> Vec<(DeviceRow, Option<String>)>;
    fn collection_people(&self, collection_id: i64) -> Vec<PersonRow>;
    fn insert_collection_with_rule(&self, name: &str, kind: &str, description: &str, rule: Option<&allot_domain::MembershipRule>, now: i64) -> CollectionRow;
    fn set_collection_rule(&self, id: i64, rule: Option<&allot_domain::MembershipRule>, now: i64) -> (u64, u64);
    fn refresh_rule_collections(&self, now: i64) -> Vec<(i64, u64, u64)>;
    fn preview_rule(&self, kind: &str, rule: &allot_domain::MembershipRule, limit: i64) -> (i64, Vec<(i64, String, String)>);
    fn collections_reading(&self, id: i64) -> Vec<String>;
    fn devices_by_serials(&self, serials: &[String]) -> std::collections::HashMap<String, i64>;
    fn resend_all_invitations(&self, now: i64) -> u64;
    fn retry_failed_targets(&self, deployment_id: i64, now: i64) -> u64;
    fn set_account_time_zone(&self, id: i64, time_zone: Option<&str>) -> ();
    fn record_asset_history(&self, token_id: i64, adam_id: &str, pricing: &str, now: i64) -> u64;
    fn last_notification(&self, token_id: i64) -> Option<i64>;
    fn insert_webhook(&self, url: &str, events: &str, sealed_secret: &[u8], description: &str, created_by: Option<&str>, now: i64) -> i64;
    fn webhooks(&self) -> Vec<WebhookRow>;
    fn webhook(&self, id: i64) -> Option<WebhookRow>;
    fn delete_webhook(&self, id: i64) -> bool;
    fn set_email_endpoints(&self, endpoints: &[(String, String)], sealed: &[u8], now: i64) -> ();
    fn record_audit(&self, e: &AuditEntry) -> ();
    fn set_alert_threshold(&self, adam_id: &str, pricing: &str, threshold: Option<i64>) -> bool;
    fn alert_threshold(&self, adam_id: &str, pricing: &str) -> Option<i64>;
    fn metric_samples(&self) -> Vec<MetricSample>;
    fn audit(&self, actor: Option<&str>, path: Option<&str>, since: Option<i64>, limit: i64, offset: i64) -> (Vec<AuditEntry>, i64);
    fn raise_alert(&self, a: &NewAlert, only_endpoint: Option<i64>, now: i64) -> Option<i64>;
    fn resolve_alerts(&self, dedupe_prefix: &str, keep: &[String], now: i64) -> u64;
    fn alerts(&self, open_only: bool, limit: i64) -> Vec<AlertRow>;
    fn claim_due_deliveries(&self, now: i64, hold: i64, limit: i64) -> Vec<DueDelivery>;
    fn finish_delivery(&self, id: i64, status: &str, http_status: Option<i64>, error: Option<&str>, next: i64, now: i64) -> ();
    fn webhook_deliveries(&self, endpoint_id: i64, limit: i64) -> Vec<DeliveryRow>;
    fn recent_sync_outcomes(&self, n: i64) -> Vec<(i64, i64, bool)>;
    fn low_deployed_assets(&self, threshold: i64) -> Vec<(i64, String, String, i64, i64, i64)>;
    fn last_target_changes(&self) -> std::collections::HashMap<i64, i64>;
    fn collection_member_page(&self, id: i64, kind: &str, limit: i64, offset: i64) -> (i64, Vec<(i64, String, String)>);
}
