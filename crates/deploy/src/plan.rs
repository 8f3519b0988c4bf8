//! The plan: computed from what the store holds (collection members, devices' primary users,
//! assignments synced from Apple, free counts), changing nothing.

use std::collections::HashSet;

use allot_domain::{
    license_for, plan, AssetFacts, Choice, CollectionKind, License, OnShortage, Outcome, PlanTarget,
};
use allot_store::{CollectionRow, Store, StoreError, TokenRow};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Install now.
    Required,
    /// Self-service: the license is claimed when the user asks.
    Available,
    /// Remove, then reclaim.
    Uninstall,
    /// Reclaim without uninstalling.
    Revoke,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "required" | "install" => Some(Action::Required),
            "available" => Some(Action::Available),
            "uninstall" | "remove" => Some(Action::Uninstall),
            "revoke" => Some(Action::Revoke),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Required => "required",
            Action::Available => "available",
            Action::Uninstall => "uninstall",
            Action::Revoke => "revoke",
        }
    }

    pub fn claims(self) -> bool {
        matches!(self, Action::Required | Action::Available)
    }
}

#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub adam_id: String,
    pub pricing: String,
    /// Tokens to draw licenses from, in order; empty = every token holding the app, by name.
    pub tokens: Vec<TokenRow>,
    pub collection: CollectionRow,
    pub action: Action,
    pub on_shortage: OnShortage,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPlan {
    pub token_id: i64,
    pub token: String,
    pub free: u64,
    pub claims: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentPlan {
    pub action: Action,
    pub targets: u64,
    /// `device`, `user`, or `mixed` (a device collection where some targets get user licenses).
    pub license_type: String,
    pub needed: u64,
    pub already_licensed: u64,
    pub claims: u64,
    pub waiting: u64,
    pub failing: u64,
    pub needs_user: u64,
    /// For Uninstall and Revoke: licenses that will come back.
    pub reclaims: u64,
    pub tokens: Vec<TokenPlan>,
    /// Devices that cannot get user-licensed content (no primary user), first 20.
    pub needs_user_targets: Vec<String>,
    /// Devices whose platform cannot run the content: they get no license (not in `targets`).
    pub not_compatible: u64,
    /// Deployments in force of the same content that share targets with this one, and which of
    /// the two will own the shared targets.
    pub overlaps: Vec<Overlap>,
    /// The plan in one sentence.
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overlap {
    pub deployment_id: i64,
    pub action: String,
    pub collection_id: i64,
    /// Members both collections hold.
    pub shared_targets: i64,
    /// It wants the opposite (Required or Available against Uninstall or Revoke).
    pub contradicts: bool,
    /// The same content, collection and action: creating this one would do nothing new.
    pub identical: bool,
    /// Who owns the shared targets: `existing` or `new` (by `allot_domain::intent`).
    pub owner: String,
}

/// Deployments in force that the planned one overlaps, with the owner of the shared targets.
pub async fn overlaps(store: &Store, req: &PlanRequest) -> Result<Vec<Overlap>, StoreError> {
    use allot_domain::{intent, Intent, IntentAction};
    let new_action = IntentAction::parse(req.action.as_str()).expect("every action is an intent");
    // The new deployment will have the highest id: it is the youngest.
    let new = Intent {
        id: i64::MAX,
        action: new_action,
    };
    Ok(store
        .overlapping_deployments(&req.adam_id, &req.pricing, req.collection.id)
        .await?
        .into_iter()
        .filter_map(|(d, shared)| {
            let action = IntentAction::parse(&d.action)?;
            let existing = Intent { id: d.id, action };
            Some(Overlap {
                deployment_id: d.id,
                action: d.action.clone(),
                collection_id: d.collection_id,
                shared_targets: shared,
                contradicts: action.contradicts(new_action),
                identical: d.collection_id == req.collection.id && action == new_action,
                owner: if intent::outranks(existing, new) {
                    "existing".into()
                } else {
                    "new".into()
                },
            })
        })
        .collect())
}

/// Who a member is for licensing: its label, its holder ids, and its choice.
struct Member {
    label: String,
    choice: Choice,
    device_holder: Option<String>,
    user_holder: Option<String>,
}

/// Why licenses of a token cannot be used now, if they cannot.
pub fn unusable(t: &TokenRow, now: i64) -> Option<String> {
    if t.claim != allot_domain::Claim::Ours {
        Some(format!(
            "token {:?} is managed by another MDM: take it over first",
            t.name
        ))
    } else if t.auth_error == Some(9625) {
        Some(format!("token {:?} was revoked by Apple: renew it", t.name))
    } else if t.auth_error == Some(9621) || t.expires_at <= now {
        Some(format!("token {:?} has expired: renew it", t.name))
    } else {
        None
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

pub async fn plan_deployment(
    store: &Store,
    req: &PlanRequest,
) -> Result<DeploymentPlan, PlanError> {
    let now = now_ms();
    if let Some(why) = req.tokens.iter().find_map(|t| unusable(t, now)) {
        return Err(PlanError::Invalid(why));
    }
    // The asset, as the chosen tokens hold it.
    let mut tokens = req.tokens.clone();
    let mut asset = None;
    // Every token's row of the app, in one lookup.
    let holdings = store.asset_holdings(&req.adam_id, &req.pricing).await?;
    let held = |token_id: i64| {
        holdings
            .iter()
            .find(|(id, _)| *id == token_id)
            .map(|(_, a)| a.clone())
    };
    if tokens.is_empty() {
        // Every usable token holding the app, by name.
        for t in store
            .tokens()
            .await?
            .into_iter()
            .filter(|t| unusable(t, now).is_none())
        {
            if let Some(a) = held(t.id) {
                asset.get_or_insert(a);
                tokens.push(t);
            }
        }
    }
    let mut free = Vec::with_capacity(tokens.len());
    for t in &tokens {
        match held(t.id) {
            Some(a) => {
                free.push(if a.unlimited {
                    u64::MAX / 4
                } else {
                    a.available.max(0) as u64
                });
                asset.get_or_insert(a);
            }
            None => {
                return Err(PlanError::Invalid(format!(
                    "token {:?} holds no licenses of app {} {}",
                    t.name, req.adam_id, req.pricing
                )))
            }
        }
    }
    let asset = asset.ok_or_else(|| {
        PlanError::Invalid(format!(
            "no usable token holds app {} {}: sync the tokens, or check the adamId",
            req.adam_id, req.pricing
        ))
    })?;
    let facts = AssetFacts {
        is_book: asset.product_type == "Book",
        device_assignable: asset.device_assignable,
    };
    let kind = CollectionKind::parse(&req.collection.kind)
        .ok_or_else(|| PlanError::Invalid("the collection has no kind".into()))?;
    if facts.is_book && matches!(req.action, Action::Uninstall) && !asset.revocable {
        return Err(PlanError::Invalid("book licenses cannot be taken back: Uninstall removes the book but Apple keeps the license with the user".into()));
    }

    // The members and the license each claims.
    let mut members = Vec::new();
    let mut not_compatible = 0u64;
    // One query per collection, not one per member.
    match kind {
        CollectionKind::Users => {
            for p in store
                .collection_people(req.collection.id)
                .await?
                .into_iter()
                .filter(|p| p.removed_at.is_none())
            {
                members.push(Member {
                    label: p.email.clone().unwrap_or(p.name.clone()),
                    choice: license_for(facts, kind, false),
                    device_holder: None,
                    user_holder: Some(p.client_user_id),
                });
            }
        }
        CollectionKind::Devices => {
            let meta = store.metadata(&req.adam_id).await?;
            let families = meta
                .as_ref()
                .map(|m| m.platforms.clone())
                .unwrap_or_default();
            let compatible = allot_domain::compat::compatible_platforms(
                facts.is_book,
                &asset.platforms,
                &families,
            );
            let minimum_os = meta.as_ref().and_then(|m| {
                allot_domain::compat::MinimumOs::of(
                    facts.is_book,
                    m.kind.as_deref(),
                    m.minimum_os_version.as_deref(),
                )
            });
            for (d, user) in store
                .collection_devices(req.collection.id)
                .await?
                .into_iter()
                .filter(|(d, _)| d.enrolled)
            {
                // Checked before anything else: no license for a device that cannot run it.
                if req.action.claims()
                    && (compatible
                        .as_ref()
                        .is_some_and(|c| !c.contains(&d.platform.as_str()))
                        || minimum_os.as_ref().is_some_and(|m| {
                            m.refuses(&d.platform, d.os_version.as_deref()).is_some()
                        }))
                {
                    not_compatible += 1;
                    continue;
                }
                members.push(Member {
                    label: d.serial_number.clone(),
                    choice: license_for(facts, kind, user.is_some()),
                    device_holder: Some(d.serial_number),
                    user_holder: user,
                });
            }
        }
    }

    let token_ids: Vec<i64> = tokens.iter().map(|t| t.id).collect();
    let holders: HashSet<(String, String)> = store
        .asset_holders(&token_ids, &req.adam_id, &req.pricing)
        .await?
        .into_iter()
        .collect();
    let licensed = |m: &Member| match m.choice {
        Choice::Claim(License::Device) => m
            .device_holder
            .as_ref()
            .is_some_and(|s| holders.contains(&("device".into(), s.clone()))),
        Choice::Claim(License::User) => m
            .user_holder
            .as_ref()
            .is_some_and(|u| holders.contains(&("user".into(), u.clone()))),
        Choice::NeedsUser => false,
    };
    let targets: Vec<PlanTarget> = members
        .iter()
        .map(|m| PlanTarget {
            choice: m.choice,
            licensed: licensed(m),
        })
        .collect();
    let device_licenses = members
        .iter()
        .filter(|m| m.choice == Choice::Claim(License::Device))
        .count();
    let user_licenses = members
        .iter()
        .filter(|m| m.choice == Choice::Claim(License::User))
        .count();
    let license_type = match (device_licenses, user_licenses) {
        (0, _) => "user",
        (_, 0) => "device",
        _ => "mixed",
    };

    let p = if req.action.claims() {
        plan(&targets, &free, req.on_shortage)
    } else {
        plan(&[], &free, req.on_shortage)
    };
    let reclaims = if req.action.claims() {
        0
    } else {
        targets.iter().filter(|t| t.licensed).count() as u64
    };
    let token_plans: Vec<TokenPlan> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| TokenPlan {
            token_id: t.id,
            token: t.name.clone(),
            free: if asset.unlimited { 0 } else { free[i] },
            claims: p
                .outcomes
                .iter()
                .filter(|o| **o == Outcome::Claim(i))
                .count() as u64,
        })
        .collect();
    let needs_user_targets: Vec<String> = members
        .iter()
        .filter(|m| m.choice == Choice::NeedsUser)
        .take(20)
        .map(|m| m.label.clone())
        .collect();
    let summary = summary(
        req.action,
        &p,
        reclaims,
        &token_plans,
        asset.unlimited,
        needs_user_targets.len() as u64,
        members.len() as u64,
    );
    Ok(DeploymentPlan {
        action: req.action,
        targets: members.len() as u64,
        license_type: license_type.into(),
        needed: p.needed,
        already_licensed: if req.action.claims() {
            p.already_licensed
        } else {
            reclaims
        },
        claims: p.claims,
        waiting: p.waiting,
        failing: p.failing,
        needs_user: if req.action.claims() { p.needs_user } else { 0 },
        reclaims,
        tokens: token_plans,
        needs_user_targets,
        not_compatible,
        overlaps: overlaps(store, req).await?,
        summary: if not_compatible > 0 {
            format!(
                "{summary} {} cannot run it and get no license.",
                count(not_compatible, "device", "devices")
            )
        } else {
            summary
        },
    })
}

/// `1 license`, `2 licenses`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary(
    action: Action,
    p: &allot_domain::Plan,
    reclaims: u64,
    tokens: &[TokenPlan],
    unlimited: bool,
    needs_user: u64,
    targets: u64,
) -> String {
    if !action.claims() {
        return format!(
            "{}; {} that will be reclaimed.",
            count(targets, "target", "targets"),
            count(reclaims, "license", "licenses")
        );
    }
    let mut s = format!(
        "This deployment needs {}",
        count(p.needed, "license", "licenses")
    );
    if unlimited {
        s.push_str(" (the app is unlimited)");
    } else {
        let free: Vec<String> = tokens
            .iter()
            .map(|t| format!("{} free on {}", t.free, t.token))
            .collect();
        s.push_str(&format!("; {}", free.join(", ")));
    }
    if p.already_licensed > 0 {
        s.push_str(&format!(
            "; {} already licensed",
            count(p.already_licensed, "target is", "targets are")
        ));
    }
    if p.waiting > 0 {
        s.push_str(&format!(
            "; {} for a license",
            count(p.waiting, "target will wait", "targets will wait")
        ));
    }
    if p.failing > 0 {
        s.push_str(&format!(
            "; {}: no license available",
            count(p.failing, "target will fail", "targets will fail")
        ));
    }
    if needs_user > 0 {
        s.push_str(&format!(
            "; {} a user for this user-licensed content",
            count(p.needs_user, "device needs", "devices need")
        ));
    }
    s.push('.');
    s
}
