//! Deployments are standing intents. Several can name the same content for the same target (a
//! Required to a class and an Uninstall to the same class); exactly one owns each target, by one
//! rule: Uninstall and Revoke outrank Required and Available, and between intents of equal rank
//! the oldest owns. The others show the target as superseded by the owner and leave it alone.

/// What an intent wants for its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntentAction {
    Required,
    Available,
    Uninstall,
    Revoke,
}

impl IntentAction {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "required" => Self::Required,
            "available" => Self::Available,
            "uninstall" => Self::Uninstall,
            "revoke" => Self::Revoke,
            _ => return None,
        })
    }

    /// Taking away outranks giving: an administrator who removes an app means it now.
    pub fn rank(self) -> u8 {
        match self {
            Self::Uninstall | Self::Revoke => 1,
            Self::Required | Self::Available => 0,
        }
    }

    /// Whether two intents for the same target want opposite things.
    pub fn contradicts(self, other: Self) -> bool {
        self.rank() != other.rank()
    }
}

/// An intent in force: its id (ids grow with age) and action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intent {
    pub id: i64,
    pub action: IntentAction,
}

/// Whether `a` owns a shared target over `b`.
pub fn outranks(a: Intent, b: Intent) -> bool {
    (a.action.rank(), std::cmp::Reverse(a.id)) > (b.action.rank(), std::cmp::Reverse(b.id))
}

/// The one intent that owns a target among those naming it (none when none does).
pub fn owner(intents: &[Intent]) -> Option<Intent> {
    intents
        .iter()
        .copied()
        .reduce(|best, i| if outranks(i, best) { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn i(id: i64, action: IntentAction) -> Intent {
        Intent { id, action }
    }

    #[test]
    fn taking_away_wins_and_the_oldest_breaks_ties() {
        use IntentAction::*;
        assert_eq!(
            owner(&[i(1, Required), i(2, Uninstall)]),
            Some(i(2, Uninstall))
        );
        assert_eq!(owner(&[i(3, Revoke), i(2, Required)]), Some(i(3, Revoke)));
        assert_eq!(
            owner(&[i(5, Available), i(4, Required)]),
            Some(i(4, Required))
        );
        assert_eq!(
            owner(&[i(7, Revoke), i(6, Uninstall)]),
            Some(i(6, Uninstall))
        );
        assert_eq!(owner(&[]), None);
        assert!(Required.contradicts(Uninstall) && !Required.contradicts(Available));
    }

    fn action() -> impl Strategy<Value = IntentAction> {
        prop_oneof![
            Just(IntentAction::Required),
            Just(IntentAction::Available),
            Just(IntentAction::Uninstall),
            Just(IntentAction::Revoke),
        ]
    }

    proptest! {
        /// Every target has exactly one owner, whatever order the intents are looked at in, and
        /// every other intent is outranked by it.
        #[test]
        fn one_owner_per_target(actions in proptest::collection::vec(action(), 1..12), seed in any::<u64>()) {
            let intents: Vec<Intent> = actions.iter().enumerate().map(|(n, a)| i(n as i64 + 1, *a)).collect();
            let mut shuffled = intents.clone();
            let len = shuffled.len();
            shuffled.rotate_left((seed as usize) % len);
            if seed % 2 == 0 { shuffled.reverse(); }
            let o = owner(&intents).unwrap();
            prop_assert_eq!(owner(&shuffled), Some(o));
            for other in intents.iter().filter(|x| **x != o) {
                prop_assert!(outranks(o, *other));
                prop_assert!(!outranks(*other, o));
            }
        }
    }
}
