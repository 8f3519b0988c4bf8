//! Asynchronous management events: validated requests become a list of tasks that run later, a
//! slice per tick, each succeeding or failing on its own (spec §8–§10).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use allot_apple_wire::{
    codes, event_status, event_type, notification_type, user_status, AssetManagementNotification,
    AssetRef, Assignment, ErrorInfo, ErrorResponse, RequestUser, ResponseUser, StatusResponse,
    SubscriptionAssignment, SubscriptionManagementNotification, UserManagementNotification,
    MAX_NOTIFICATION_ITEMS, RESULT_FAILURE, RESULT_SUCCESS,
};

use crate::model::{Holder, Location, Subscriptions, UserRecord};
use crate::world::World;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Associate,
    Disassociate,
    Revoke,
    Create,
    Update,
    Retire,
    /// Subscription seats (spec §15): reported as `ASSOCIATE`/`DISASSOCIATE` too.
    SubscriptionAssociate,
    SubscriptionDisassociate,
}

impl EventKind {
    pub fn wire(self) -> &'static str {
        match self {
            EventKind::Associate | EventKind::SubscriptionAssociate => event_type::ASSOCIATE,
            EventKind::Disassociate | EventKind::SubscriptionDisassociate => {
                event_type::DISASSOCIATE
            }
            EventKind::Revoke => event_type::REVOKE,
            EventKind::Create => event_type::CREATE,
            EventKind::Update => event_type::UPDATE,
            EventKind::Retire => event_type::RETIRE,
        }
    }

    fn is_user_event(self) -> bool {
        matches!(
            self,
            EventKind::Create | EventKind::Update | EventKind::Retire
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    User(String),
    Device(String),
}

#[derive(Debug, Clone)]
pub enum Task {
    Asset {
        asset: AssetRef,
        target: Target,
    },
    Revoke(Target),
    User(RequestUser),
    /// A subscription seat for a user; `flag` is `renewing` (associate) or `deferred`
    /// (disassociate).
    Seat {
        adam_id: i64,
        user: String,
        flag: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub location: usize,
    pub kind: EventKind,
    pub tasks: Vec<Task>,
    pub cursor: usize,
    pub num_completed: i32,
    failures: Vec<(i32, Target, Option<AssetRef>)>,
    pub due: Instant,
}

impl Event {
    pub fn new(location: usize, kind: EventKind, tasks: Vec<Task>, due: Instant) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            location,
            kind,
            tasks,
            cursor: 0,
            num_completed: 0,
            failures: Vec::new(),
            due,
        }
    }

    pub fn finished(&self) -> bool {
        self.cursor >= self.tasks.len()
    }

    /// `GET /status`: PENDING while tasks remain; then COMPLETE, or FAILED if any task failed.
    /// `numCompleted` counts tasks that succeeded, as in Apple's FAILED examples (14 of 16).
    pub fn status(&self) -> StatusResponse {
        let status = if !self.finished() {
            event_status::PENDING
        } else if self.failures.is_empty() {
            event_status::COMPLETE
        } else {
            event_status::FAILED
        };
        StatusResponse {
            event_status: status.to_owned(),
            event_type: self.kind.wire().to_owned(),
            num_requested: self.tasks.len() as i32,
            num_completed: self.num_completed,
            failures: group_failures(&self.failures),
            common: Default::default(),
        }
    }
}

/// Groups failed tasks into error bodies: one per error number and set of assets, listing every
/// user and device that failed that way (Apple's example: one 9609 naming client-4 for both
/// assets of the request).
fn group_failures(failures: &[(i32, Target, Option<AssetRef>)]) -> Vec<ErrorResponse> {
    let mut per_target: BTreeMap<(i32, &Target), BTreeSet<&AssetRef>> = BTreeMap::new();
    for (n, t, a) in failures {
        let set = per_target.entry((*n, t)).or_default();
        if let Some(a) = a {
            set.insert(a);
        }
    }
    let mut groups: BTreeMap<(i32, Vec<&AssetRef>), ErrorInfo> = BTreeMap::new();
    for ((n, t), assets) in per_target {
        let info = groups.entry((n, assets.into_iter().collect())).or_default();
        match t {
            Target::User(u) => info.client_user_ids.push(u.clone()),
            Target::Device(s) => info.serial_numbers.push(s.clone()),
        }
    }
    groups
        .into_iter()
        .map(|((n, assets), mut info)| {
            info.assets = assets.into_iter().cloned().collect();
            ErrorResponse {
                error_info: Some(info),
                ..ErrorResponse::new(n)
            }
        })
        .collect()
}

/// What one batch of tasks produced, for notifications.
#[derive(Default)]
struct BatchOutcome {
    /// Associations of a license the holder already had.
    repeated: u64,
    assignments_ok: Vec<Assignment>,
    assignments_failed: BTreeMap<i32, Vec<Assignment>>,
    users_ok: Vec<ResponseUser>,
    users_failed: BTreeMap<i32, Vec<ResponseUser>>,
    seats_ok: Vec<SubscriptionAssignment>,
    seats_failed: BTreeMap<i32, Vec<SubscriptionAssignment>>,
}

/// Runs up to `budget` tasks of one event. Returns true when the event is finished.
pub fn advance(world: &mut World, event_id: &str, budget: usize) -> bool {
    let Some(mut event) = world.events.remove(event_id) else {
        return true;
    };
    let end = (event.cursor + budget).min(event.tasks.len());
    let mut out = BatchOutcome::default();
    let mut seq = None;
    for i in event.cursor..end {
        let task = event.tasks[i].clone();
        let injected = world.faults.take_task_failure();
        let loc = &mut world.locations[event.location];
        let seq = *seq.get_or_insert_with(|| loc.write());
        let result = match injected {
            Some(n) => Err(n),
            None => run_task(loc, event.kind, &task, seq, &mut world.counter, &mut out),
        };
        match result {
            Ok(()) => event.num_completed += 1,
            Err(n) => {
                record_failure(loc, event.kind, &task, n, &mut out);
                let (target, asset) = match task {
                    Task::Asset { asset, target } => (target, Some(asset)),
                    Task::Revoke(t) => (t, None),
                    Task::User(u) => (Target::User(u.client_user_id), None),
                    Task::Seat { adam_id, user, .. } => (
                        Target::User(user),
                        Some(AssetRef::new(adam_id.to_string(), "STDQ")),
                    ),
                };
                event.failures.push((n, target, asset));
            }
        }
    }
    event.cursor = end;
    let done = event.finished();
    let (location, kind, id) = (event.location, event.kind, event.id.clone());
    world.events.insert(id.clone(), event);
    world.stats.repeated_associations += out.repeated;
    emit(world, location, kind, &id, out);
    done
}

fn run_task(
    loc: &mut Location,
    kind: EventKind,
    task: &Task,
    seq: u64,
    counter: &mut u64,
    out: &mut BatchOutcome,
) -> Result<(), i32> {
    match (kind, task) {
        (EventKind::Associate, Task::Asset { asset, target }) => {
            let a = loc
                .asset_idx(&asset.adam_id, asset.pricing())
                .ok_or(codes::NOT_ENOUGH_LICENSES)?;
            let holder = match target {
                Target::User(u) => Holder::User(loc.users.active(u).ok_or(codes::USER_NOT_FOUND)?),
                Target::Device(s) => Holder::Device(loc.intern_serial(s)),
            };
            if !loc.assign(a, holder, seq)? {
                out.repeated += 1;
            }
            out.assignments_ok
                .push(loc.assignment_view(a, holder, false));
            Ok(())
        }
        (EventKind::Disassociate, Task::Asset { asset, target }) => {
            let a = loc
                .asset_idx(&asset.adam_id, asset.pricing())
                .ok_or(codes::INVALID_ARGUMENT)?;
            match target {
                Target::User(u) => {
                    let records = loc.users.all_of(u).to_vec();
                    if records.is_empty() {
                        return Err(codes::USER_NOT_FOUND);
                    }
                    for r in records {
                        loc.unassign(a, Holder::User(r));
                    }
                }
                Target::Device(s) => {
                    if let Some(si) = loc.serial_idx(s) {
                        loc.unassign(a, Holder::Device(si));
                    }
                }
            }
            // Disassociating a pair that was not assigned is an idempotent success.
            let mut view = Assignment {
                adam_id: asset.adam_id.clone(),
                pricing_param: asset.pricing().to_owned(),
                client_user_id: None,
                serial_number: None,
                user_status: None,
                id_hash: None,
            };
            match target {
                Target::User(u) => view.client_user_id = Some(u.clone()),
                Target::Device(s) => view.serial_number = Some(s.clone()),
            }
            out.assignments_ok.push(view);
            Ok(())
        }
        (EventKind::Revoke, Task::Revoke(target)) => {
            match target {
                Target::User(u) => {
                    let records = loc.users.all_of(u).to_vec();
                    if records.is_empty() {
                        return Err(codes::USER_NOT_FOUND);
                    }
                    for r in records {
                        out.assignments_ok
                            .extend(loc.revoke_holder(Holder::User(r)));
                    }
                }
                Target::Device(s) => {
                    if let Some(si) = loc.serial_idx(s) {
                        out.assignments_ok
                            .extend(loc.revoke_holder(Holder::Device(si)));
                    }
                }
            }
            Ok(())
        }
        (EventKind::Create, Task::User(req)) => {
            create_user(loc, req, seq, counter)?;
            let idx = loc.users.active(&req.client_user_id).expect("just created");
            out.users_ok.push(loc.users.get(idx).to_response());
            Ok(())
        }
        (EventKind::Update, Task::User(req)) => {
            let idx = loc
                .users
                .active(&req.client_user_id)
                .ok_or(codes::USER_NOT_FOUND)?;
            if let Some(account) = &req.managed_apple_id {
                bind_account(loc, idx, account, seq)?;
            }
            let rec = loc.users.get_mut(idx);
            if req.email.is_some() {
                rec.email = req.email.clone();
            }
            rec.modified = seq;
            out.users_ok.push(rec.to_response());
            Ok(())
        }
        (EventKind::Retire, Task::User(req)) => {
            let idx = loc
                .users
                .active(&req.client_user_id)
                .ok_or(codes::USER_NOT_FOUND)?;
            let rec = loc.users.get_mut(idx);
            rec.status = user_status::RETIRED;
            rec.modified = seq;
            // Retiring releases the user's revocable licenses; books stay with the Apple Account.
            loc.revoke_holder(Holder::User(idx));
            out.users_ok.push(loc.users.get(idx).to_response());
            Ok(())
        }
        (
            EventKind::SubscriptionAssociate,
            Task::Seat {
                adam_id,
                user,
                flag,
            },
        ) => {
            loc.users
                .active(user)
                .ok_or(codes::SUBSCRIPTION_USER_NOT_REGISTERED)?;
            let seat = loc.subscriptions.associate(*adam_id, user, *flag)?;
            out.seats_ok.push(Subscriptions::seat_view(&seat));
            Ok(())
        }
        (
            EventKind::SubscriptionDisassociate,
            Task::Seat {
                adam_id,
                user,
                flag,
            },
        ) => {
            let seat = loc.subscriptions.disassociate(*adam_id, user, *flag)?;
            // A deferred removal is told when the period ends, as Apple does.
            if !*flag {
                out.seats_ok.push(Subscriptions::seat_view(&seat));
            }
            Ok(())
        }
        _ => Err(codes::INTERNAL_ERROR),
    }
}

/// Creates (or reactivates) a user (spec §9.2).
fn create_user(
    loc: &mut Location,
    req: &RequestUser,
    seq: u64,
    counter: &mut u64,
) -> Result<(), i32> {
    if loc.users.active(&req.client_user_id).is_some() {
        return Err(codes::USER_ALREADY_EXISTS);
    }
    if let Some(account) = &req.managed_apple_id {
        check_account(loc, account, None)?;
    }
    // A retired record that never had an Apple Account comes back to life; otherwise a new one.
    let revivable = loc
        .users
        .all_of(&req.client_user_id)
        .iter()
        .copied()
        .rev()
        .find(|&i| {
            loc.users.get(i).status == user_status::RETIRED
                && loc.users.get(i).apple_account.is_none()
        });
    let idx = match revivable {
        Some(i) => {
            let rec = loc.users.get_mut(i);
            rec.status = user_status::REGISTERED;
            rec.email = req.email.clone().or(rec.email.take());
            rec.modified = seq;
            i
        }
        None => {
            *counter += 1;
            loc.users.push(UserRecord {
                client_user_id: req.client_user_id.clone(),
                email: req.email.clone(),
                invite_code: invite_code(&loc.uid, &req.client_user_id, *counter),
                apple_account: None,
                status: user_status::REGISTERED,
                modified: seq,
            })
        }
    };
    if let Some(account) = &req.managed_apple_id {
        bind_account(loc, idx, account, seq)?;
    }
    Ok(())
}

/// 9635 for an account this location may not bind, 9641 for one another user holds.
fn check_account(loc: &Location, account: &str, user: Option<u32>) -> Result<(), i32> {
    if !loc.is_own_managed_account(account) {
        return Err(codes::APPLE_ACCOUNT_NOT_ASSOCIABLE);
    }
    match loc.users.holder_of_account(account) {
        Some(h) if Some(h) != user => Err(codes::APPLE_ACCOUNT_ALREADY_BOUND),
        _ => Ok(()),
    }
}

/// Binds a Managed Apple Account to a user record: it becomes Associated.
fn bind_account(loc: &mut Location, idx: u32, account: &str, seq: u64) -> Result<(), i32> {
    check_account(loc, account, Some(idx))?;
    if let Some(existing) = &loc.users.get(idx).apple_account {
        if !existing.eq_ignore_ascii_case(account) {
            return Err(codes::APPLE_ACCOUNT_NOT_ASSOCIABLE);
        }
    }
    associate_account(loc, idx, account, seq);
    Ok(())
}

/// Marks a record Associated with `account`. Retired records of the same `clientUserId` that had
/// bound the same account become Deleted (spec §9.2).
pub fn associate_account(loc: &mut Location, idx: u32, account: &str, seq: u64) {
    let cuid = loc.users.get(idx).client_user_id.clone();
    for other in loc.users.all_of(&cuid).to_vec() {
        let r = loc.users.get_mut(other);
        if other != idx
            && r.status == user_status::RETIRED
            && r.apple_account
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(account))
        {
            r.status = user_status::DELETED;
            r.modified = seq;
        }
    }
    let rec = loc.users.get_mut(idx);
    rec.apple_account = Some(account.to_owned());
    rec.status = user_status::ASSOCIATED;
    rec.modified = seq;
}

/// 32 lower-case hex characters, like Apple's examples.
pub fn invite_code(uid: &str, client_user_id: &str, n: u64) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("invite/{uid}/{client_user_id}/{n}").as_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn record_failure(loc: &Location, kind: EventKind, task: &Task, n: i32, out: &mut BatchOutcome) {
    match task {
        Task::Seat {
            adam_id,
            user,
            flag,
        } => {
            out.seats_failed
                .entry(n)
                .or_default()
                .push(SubscriptionAssignment {
                    adam_id: *adam_id,
                    client_user_id: user.clone(),
                    renewing: kind == EventKind::SubscriptionAssociate && *flag,
                });
        }
        Task::Asset { asset, target } => {
            let (client_user_id, serial_number) = match target {
                Target::User(u) => (Some(u.clone()), None),
                Target::Device(s) => (None, Some(s.clone())),
            };
            out.assignments_failed
                .entry(n)
                .or_default()
                .push(Assignment {
                    adam_id: asset.adam_id.clone(),
                    pricing_param: asset.pricing().to_owned(),
                    client_user_id,
                    serial_number,
                    user_status: None,
                    id_hash: None,
                });
        }
        Task::Revoke(target) => {
            // A failed revoke names the holder; there is no asset to name.
            let (client_user_id, serial_number) = match target {
                Target::User(u) => (Some(u.clone()), None),
                Target::Device(s) => (None, Some(s.clone())),
            };
            out.assignments_failed
                .entry(n)
                .or_default()
                .push(Assignment {
                    adam_id: String::new(),
                    pricing_param: String::new(),
                    client_user_id,
                    serial_number,
                    user_status: None,
                    id_hash: None,
                });
        }
        Task::User(req) => {
            debug_assert!(kind.is_user_event());
            let user = loc
                .users
                .active(&req.client_user_id)
                .map(|i| loc.users.get(i).to_response())
                .unwrap_or_else(|| ResponseUser {
                    client_user_id: req.client_user_id.clone(),
                    email: req.email.clone(),
                    invite_code: None,
                    id_hash: None,
                    status: String::new(),
                });
            out.users_failed.entry(n).or_default().push(user);
        }
    }
}

/// Turns a batch's outcome into notifications of at most 100 items, one `error` each.
fn emit(world: &mut World, location: usize, kind: EventKind, event_id: &str, out: BatchOutcome) {
    let asset_note = |result: &str, items: &[Assignment], error: Option<ErrorResponse>| {
        serde_json::to_value(AssetManagementNotification {
            kind: kind.wire().to_owned(),
            result: result.to_owned(),
            event_id: event_id.to_owned(),
            assignments: items.to_vec(),
            error,
        })
        .expect("serialisable")
    };
    let user_note = |result: &str, items: &[ResponseUser], error: Option<ErrorResponse>| {
        serde_json::to_value(UserManagementNotification {
            kind: kind.wire().to_owned(),
            result: result.to_owned(),
            event_id: event_id.to_owned(),
            users: items.to_vec(),
            error,
        })
        .expect("serialisable")
    };
    let mut notes = Vec::new();
    for chunk in out.assignments_ok.chunks(MAX_NOTIFICATION_ITEMS) {
        notes.push((
            notification_type::ASSET_MANAGEMENT,
            asset_note(RESULT_SUCCESS, chunk, None),
        ));
    }
    for (n, items) in &out.assignments_failed {
        for chunk in items.chunks(MAX_NOTIFICATION_ITEMS) {
            let note = asset_note(RESULT_FAILURE, chunk, Some(ErrorResponse::new(*n)));
            notes.push((notification_type::ASSET_MANAGEMENT, note));
        }
    }
    for chunk in out.users_ok.chunks(MAX_NOTIFICATION_ITEMS) {
        notes.push((
            notification_type::USER_MANAGEMENT,
            user_note(RESULT_SUCCESS, chunk, None),
        ));
    }
    for (n, items) in &out.users_failed {
        for chunk in items.chunks(MAX_NOTIFICATION_ITEMS) {
            notes.push((
                notification_type::USER_MANAGEMENT,
                user_note(RESULT_FAILURE, chunk, Some(ErrorResponse::new(*n))),
            ));
        }
    }
    let seat_note =
        |result: &str, items: &[SubscriptionAssignment], error: Option<ErrorResponse>| {
            serde_json::to_value(SubscriptionManagementNotification {
                kind: kind.wire().to_owned(),
                result: result.to_owned(),
                event_id: Some(event_id.to_owned()),
                assignments: items.to_vec(),
                error,
            })
            .expect("serialisable")
        };
    for chunk in out.seats_ok.chunks(MAX_NOTIFICATION_ITEMS) {
        notes.push((
            notification_type::SUBSCRIPTION_MANAGEMENT,
            seat_note(RESULT_SUCCESS, chunk, None),
        ));
    }
    for (n, items) in &out.seats_failed {
        for chunk in items.chunks(MAX_NOTIFICATION_ITEMS) {
            notes.push((
                notification_type::SUBSCRIPTION_MANAGEMENT,
                seat_note(RESULT_FAILURE, chunk, Some(ErrorResponse::new(*n))),
            ));
        }
    }
    for (t, payload) in notes {
        crate::notify::enqueue(world, location, t, payload);
    }
}

/// Runs every due event a slice further; called each tick.
pub fn tick(world: &mut World, now: Instant) {
    let budget = world.settings.event_tasks_per_tick;
    let ids: Vec<String> = world.pending_events.iter().cloned().collect();
    for id in ids {
        let due = world.events.get(&id).is_none_or(|e| e.due <= now);
        if due && advance(world, &id, budget) {
            world.pending_events.retain(|p| p != &id);
        }
    }
}

/// Runs every pending event to completion now, due or not. Returns how many ran.
pub fn run_all(world: &mut World) -> usize {
    let ids: Vec<String> = world.pending_events.drain(..).collect();
    for id in &ids {
        while !advance(world, id, usize::MAX / 2) {}
    }
    ids.len()
}
