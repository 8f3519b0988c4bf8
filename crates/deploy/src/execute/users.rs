//! Users join the program before a user license is claimed for them: registered with Apple
//! (`users/create`, on the location the license will come from), invited (the MDM's
//! `InviteToProgram` on their devices, and the invitation URL to send by email), and licensed
//! once Apple says they are Associated (a USER_ASSOCIATED notification or a sync).

use std::collections::BTreeMap;

use allot_apple_client::{AppleError, UsersQuery};
use allot_apple_wire::{limit, user_status, ManageUsersRequest, RequestUser, ResponseUser};
use allot_mdm::Command;
use allot_store::{PersonFacts, TargetRow, UserRow};

use super::{now_ms, status, DeployError, Executor, Step};

/// Where a person stands with the locations a deployment draws from.
pub(crate) enum Gate {
    /// Associated on this token: claim there.
    Ready(i64),
    /// Registered on this token, not yet accepted: invite.
    Invited(i64, UserRow),
    /// Not registered on any of the tokens: register on this one.
    Register(i64),
}

/// The record that speaks for a user: the active one (Registered or Associated), else the last.
pub(crate) fn user_row(records: &[ResponseUser]) -> Option<UserRow> {
    let active = |u: &&ResponseUser| {
        u.status == user_status::REGISTERED || u.status == user_status::ASSOCIATED
    };
    let u = records.iter().find(active).or(records.last())?;
    Some(UserRow {
        client_user_id: u.client_user_id.clone(),
        status: u.status.clone(),
        email: u.email.clone(),
        invite_code: u.invite_code.clone(),
        id_hash: u.id_hash.clone(),
    })
}

impl Executor {
    pub(crate) async fn user_gate(
        &self,
        step: &Step,
        p: &PersonFacts,
    ) -> Result<Gate, DeployError> {
        let store = self.store();
        for t in &step.tokens {
            if let Some(u) = store.apple_user(t.id, &p.client_user_id).await? {
                if u.status == user_status::ASSOCIATED {
                    return Ok(Gate::Ready(t.id));
                }
                if u.status == user_status::REGISTERED {
                    return Ok(Gate::Invited(t.id, u));
                }
            }
        }
        // Register where the license will come from: the first token with one free.
        for t in &step.tokens {
            if store
                .claimable(t.id, &step.d.adam_id, &step.d.pricing)
                .await?
                > 0
            {
                return Ok(Gate::Register(t.id));
            }
        }
        Ok(Gate::Register(step.tokens[0].id))
    }

    /// `users/create` for people not registered yet, in batches of `maxUsers`.
    pub(crate) async fn register(
        &self,
        step: &Step,
        per_token: BTreeMap<i64, Vec<(TargetRow, PersonFacts)>>,
    ) -> Result<(), DeployError> {
        let store = self.store();
        let max = self.engine().apple().request_limit(limit::MAX_USERS).await;
        for (token_id, list) in per_token {
            let Some(token) = step.token(token_id) else {
                continue;
            };
            let bearer = self.bearer(token)?;
            for chunk in list.chunks(max) {
                let req = ManageUsersRequest {
                    users: chunk
                        .iter()
                        .map(|(_, p)| RequestUser {
                            client_user_id: p.client_user_id.clone(),
                            email: p.email.clone(),
                            managed_apple_id: p.managed_apple_id.clone(),
                        })
                        .collect(),
                };
                let outcome = self.engine().apple().create_users(&bearer, &req).await;
                for (t, _) in chunk {
                    let read_as = t.status.clone();
                    let mut t = t.clone();
                    t.token_id = Some(token_id);
                    t.command_uuid = None;
                    match &outcome {
                        Ok(e) => {
                            t.status = status::INVITATION_PENDING.into();
                            t.event_id = Some(e.event_id.clone());
                            t.detail = Some("registering the user with Apple".into());
                        }
                        // Registering again later is safe: Apple answers 9716 (exists), and the
                        // user is then read back.
                        Err(AppleError::OutcomeUnknown(_)) => {
                            t.status = status::INVITATION_PENDING.into();
                            t.event_id = None;
                            t.detail = Some("registering the user with Apple; checking".into());
                        }
                        Err(e) => {
                            t.status = status::FAILED.into();
                            t.detail = Some(format!("Apple refused to register the user: {e}"));
                        }
                    }
                    store.update_target_from(&t, &[&read_as], now_ms()).await?;
                }
            }
        }
        Ok(())
    }

    /// Reads a user back from Apple into the store (after registration).
    pub(crate) async fn refresh_user(
        &self,
        token_id: i64,
        client_user_id: &str,
    ) -> Result<Option<UserRow>, DeployError> {
        let store = self.store();
        let Some(token) = store.token(token_id).await? else {
            return Ok(None);
        };
        let bearer = self.bearer(&token)?;
        let q = UsersQuery {
            client_user_id: Some(client_user_id.to_owned()),
            ..Default::default()
        };
        let page = self.engine().apple().users_page(&bearer, &q, 0).await?;
        let Some(row) = user_row(&page.users) else {
            return Ok(None);
        };
        let gen = store.current_generation(token_id).await?;
        store
            .upsert_users(token_id, std::slice::from_ref(&row), gen)
            .await?;
        Ok(Some(row))
    }

    /// Registered users get the invitation once: `InviteToProgram` on their devices, and the URL
    /// in the target's detail for email.
    pub(crate) async fn invite(
        &self,
        list: Vec<(TargetRow, i64, UserRow)>,
    ) -> Result<(), DeployError> {
        let store = self.store();
        for (t, token_id, user) in list {
            let read_as = t.status.clone();
            if read_as == status::INVITATION_PENDING && t.command_uuid.is_some() {
                continue; // sent; waiting for the user
            }
            let mut next = t.clone();
            next.status = status::INVITATION_PENDING.into();
            next.token_id = Some(token_id);
            next.event_id = None;
            let url = match &user.invite_code {
                Some(code) => self.engine().apple().invitation_url(code).await.ok(),
                None => None,
            };
            next.detail = Some(match &url {
                Some(url) => format!("invited; waiting for the user to accept (invitation: {url})"),
                None => "registered; waiting for the user to accept the invitation".into(),
            });
            if let (Some(mdm), Some(ids), Some(url)) = (self.mdm_now(), &t.enrollment_id, &url) {
                let ids: Vec<String> = ids.split(',').map(str::to_owned).collect();
                let uuid = uuid::Uuid::new_v4().to_string();
                let command = Command::InviteToProgram {
                    invitation_url: url.clone(),
                };
                match mdm.enqueue(&ids, &command, &uuid, true).await {
                    Ok(res) if res.ids.values().any(|r| r.queued) => {
                        self.note_pushes(&res).await?;
                        next.command_uuid = Some(uuid);
                        next.detail = Some(format!(
                            "invitation sent to the user's device; waiting for them to accept (invitation: {url})"
                        ));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.mdm_failed(&e);
                        tracing::warn!(error = %e, "invitation not sent; the next step tries again")
                    }
                }
            }
            if next != t || read_as != status::INVITATION_PENDING {
                store
                    .update_target_from(&next, &[&read_as], now_ms())
                    .await?;
            }
        }
        Ok(())
    }
}
