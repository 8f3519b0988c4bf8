//! Which license a target claims, and what a deployment will do before it does anything. The
//! product's rule (shared/product.md §5), in one place:
//!
//! | app supports device licensing | collection | license claimed |
//! |---|---|---|
//! | yes | users   | user license |
//! | no  | users   | user license |
//! | yes | devices | device license |
//! | no  | devices | user license (the device's primary user) |
//!
//! Books are user-licensed only. A device without a user cannot receive user-licensed content.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectionKind {
    Users,
    Devices,
}

impl CollectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionKind::Users => "users",
            CollectionKind::Devices => "devices",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "users" | "user" => Some(CollectionKind::Users),
            "devices" | "device" => Some(CollectionKind::Devices),
            _ => None,
        }
    }
}

/// What the rule needs to know of an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetFacts {
    pub is_book: bool,
    /// Apple's `deviceAssignable`.
    pub device_assignable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum License {
    /// Bound to the device's serial number; no Apple Account needed.
    Device,
    /// Bound to a person (`clientUserId`), who must have joined the program.
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Claim(License),
    /// A device with no primary user, for user-licensed content.
    NeedsUser,
}

/// The license a target of a collection claims. `device_has_user` matters only for devices.
pub fn license_for(asset: AssetFacts, collection: CollectionKind, device_has_user: bool) -> Choice {
    let device_licensable = asset.device_assignable && !asset.is_book;
    match collection {
        CollectionKind::Users => Choice::Claim(License::User),
        CollectionKind::Devices if device_licensable => Choice::Claim(License::Device),
        CollectionKind::Devices if device_has_user => Choice::Claim(License::User),
        CollectionKind::Devices => Choice::NeedsUser,
    }
}

/// What to do when no license is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnShortage {
    /// The target fails with "no license available" (the default).
    Fail,
    /// The target waits in a queue and proceeds when a license frees up.
    Wait,
}

/// One target as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanTarget {
    pub choice: Choice,
    /// It already holds a license of this asset (on some token): nothing to claim.
    pub licensed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    AlreadyLicensed,
    /// A license will be claimed on the token at this index of the deployment's token order.
    Claim(usize),
    Wait,
    Fail,
    NeedsUser,
}

/// A deployment's plan: licenses needed, free per token, and each target's outcome. Targets claim
/// in order from the tokens in the admin's order; a license is never counted twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub needed: u64,
    /// Free licenses per token, in the token order, before the plan.
    pub free: Vec<u64>,
    pub outcomes: Vec<Outcome>,
    pub claims: u64,
    pub waiting: u64,
    pub failing: u64,
    pub needs_user: u64,
    pub already_licensed: u64,
}

pub fn plan(targets: &[PlanTarget], free_per_token: &[u64], on_shortage: OnShortage) -> Plan {
    let mut left = free_per_token.to_vec();
    let mut p = Plan {
        needed: 0,
        free: free_per_token.to_vec(),
        outcomes: Vec::with_capacity(targets.len()),
        claims: 0,
        waiting: 0,
        failing: 0,
        needs_user: 0,
        already_licensed: 0,
    };
    for t in targets {
        let outcome = match (t.choice, t.licensed) {
            (Choice::NeedsUser, _) => Outcome::NeedsUser,
            (_, true) => Outcome::AlreadyLicensed,
            (Choice::Claim(_), false) => {
                p.needed += 1;
                match left.iter().position(|&n| n > 0) {
                    Some(i) => {
                        left[i] -= 1;
                        Outcome::Claim(i)
                    }
                    None if on_shortage == OnShortage::Wait => Outcome::Wait,
                    None => Outcome::Fail,
                }
            }
        };
        match outcome {
            Outcome::AlreadyLicensed => p.already_licensed += 1,
            Outcome::Claim(_) => p.claims += 1,
            Outcome::Wait => p.waiting += 1,
            Outcome::Fail => p.failing += 1,
            Outcome::NeedsUser => p.needs_user += 1,
        }
        p.outcomes.push(outcome);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_DEVICE: AssetFacts = AssetFacts {
        is_book: false,
        device_assignable: true,
    };
    const APP_USER_ONLY: AssetFacts = AssetFacts {
        is_book: false,
        device_assignable: false,
    };
    const BOOK: AssetFacts = AssetFacts {
        is_book: true,
        device_assignable: false,
    };

    #[test]
    fn every_row_of_the_license_table() {
        use CollectionKind::*;
        assert_eq!(
            license_for(APP_DEVICE, Users, false),
            Choice::Claim(License::User)
        );
        assert_eq!(
            license_for(APP_USER_ONLY, Users, false),
            Choice::Claim(License::User)
        );
        assert_eq!(
            license_for(APP_DEVICE, Devices, false),
            Choice::Claim(License::Device)
        );
        assert_eq!(
            license_for(APP_DEVICE, Devices, true),
            Choice::Claim(License::Device)
        );
        assert_eq!(
            license_for(APP_USER_ONLY, Devices, true),
            Choice::Claim(License::User)
        );
        assert_eq!(
            license_for(APP_USER_ONLY, Devices, false),
            Choice::NeedsUser
        );
        // Books are user-only, even if Apple ever said otherwise.
        assert_eq!(
            license_for(BOOK, Devices, true),
            Choice::Claim(License::User)
        );
        assert_eq!(license_for(BOOK, Devices, false), Choice::NeedsUser);
        assert_eq!(
            license_for(
                AssetFacts {
                    is_book: true,
                    device_assignable: true
                },
                Devices,
                true
            ),
            Choice::Claim(License::User)
        );
        assert_eq!(
            license_for(BOOK, Users, false),
            Choice::Claim(License::User)
        );
    }

    fn targets(n: usize) -> Vec<PlanTarget> {
        vec![
            PlanTarget {
                choice: Choice::Claim(License::Device),
                licensed: false
            };
            n
        ]
    }

    #[test]
    fn a_plan_says_what_will_wait() {
        // "This deployment needs 1,240 licenses, 1,100 are free on token A; 140 targets will wait."
        let p = plan(&targets(1240), &[1100], OnShortage::Wait);
        assert_eq!(
            (p.needed, p.claims, p.waiting, p.failing),
            (1240, 1100, 140, 0)
        );
        let p = plan(&targets(1240), &[1100], OnShortage::Fail);
        assert_eq!((p.claims, p.failing), (1100, 140));
    }

    #[test]
    fn tokens_are_drawn_in_order_and_nothing_is_counted_twice() {
        let mut t = targets(5);
        t[1].licensed = true;
        t.push(PlanTarget {
            choice: Choice::NeedsUser,
            licensed: false,
        });
        let p = plan(&t, &[2, 0, 5], OnShortage::Fail);
        assert_eq!(
            p.outcomes,
            vec![
                Outcome::Claim(0),
                Outcome::AlreadyLicensed,
                Outcome::Claim(0),
                Outcome::Claim(2),
                Outcome::Claim(2),
                Outcome::NeedsUser
            ]
        );
        assert_eq!(
            (p.needed, p.claims, p.already_licensed, p.needs_user),
            (4, 4, 1, 1)
        );
        assert_eq!(p.free, vec![2, 0, 5]);
    }

    #[test]
    fn collection_kinds_parse() {
        assert_eq!(
            CollectionKind::parse("Devices"),
            Some(CollectionKind::Devices)
        );
        assert_eq!(CollectionKind::parse("user"), Some(CollectionKind::Users));
        assert_eq!(CollectionKind::parse("groups"), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn target() -> impl Strategy<Value = PlanTarget> {
        (0..4u8, any::<bool>()).prop_map(|(c, licensed)| PlanTarget {
            choice: match c {
                0 => Choice::NeedsUser,
                1 => Choice::Claim(License::User),
                _ => Choice::Claim(License::Device),
            },
            licensed,
        })
    }

    proptest! {
        #[test]
        fn a_plan_never_over_assigns(targets in prop::collection::vec(target(), 0..200), free in prop::collection::vec(0..50u64, 0..4), wait in any::<bool>()) {
            let p = plan(&targets, &free, if wait { OnShortage::Wait } else { OnShortage::Fail });
            for (i, &f) in free.iter().enumerate() {
                let claimed = p.outcomes.iter().filter(|o| **o == Outcome::Claim(i)).count() as u64;
                prop_assert!(claimed <= f, "token {i}: {claimed} claims of {f} free");
            }
            prop_assert_eq!(p.claims + p.waiting + p.failing, p.needed);
            prop_assert_eq!(p.claims.min(free.iter().sum()), p.claims);
            prop_assert_eq!(p.outcomes.len(), targets.len());
            prop_assert_eq!(p.claims + p.waiting + p.failing + p.needs_user + p.already_licensed, targets.len() as u64);
            // Shortage only when every token is used up.
            if p.waiting + p.failing > 0 {
                prop_assert_eq!(p.claims, free.iter().sum::<u64>());
            }
        }
    }
}
