//! A location's subscriptions (spec §15): whether the MDM enabled their management, the seats
//! bought (renewing or expiring at the period's end), which users hold them, and the admins.

use allot_apple_wire::{
    codes, ResponseSubscription, SeatCounts, SubscriptionAssignment, SubscriptionCounts,
};
use chrono::{Months, NaiveDate};

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    pub parent_adam_id: i64,
    pub adam_id: i64,
    /// `ACTIVE`, `INACTIVE`, `PAUSED`.
    pub status: String,
    pub period_end: NaiveDate,
    /// Seats bought that renew at the period's end, and seats that end with it.
    pub total: SeatCounts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub adam_id: i64,
    pub client_user_id: String,
    pub renewing: bool,
    /// Disassociated with `deferred`: the user keeps it until the period's end.
    pub leaving: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    pub enabled: bool,
    pub list: Vec<SubscriptionRecord>,
    pub seats: Vec<Seat>,
    /// (adamId, clientUserId).
    pub admins: Vec<(i64, String)>,
    /// Bumped on every change: the subscription endpoints' `versionId`.
    pub version: u64,
}

impl Subscriptions {
    pub fn get(&self, adam_id: i64) -> Option<&SubscriptionRecord> {
        self.list.iter().find(|s| s.adam_id == adam_id)
    }

    pub fn counts(&self, adam_id: i64) -> SubscriptionCounts {
        let total = self.get(adam_id).map(|s| s.total).unwrap_or_default();
        let held = |renewing: bool| {
            self.seats
                .iter()
                .filter(|s| s.adam_id == adam_id && s.renewing == renewing)
                .count() as i64
        };
        let assigned = SeatCounts {
            renewing: held(true),
            expiring: held(false),
        };
        SubscriptionCounts {
            assigned,
            available: SeatCounts {
                renewing: (total.renewing - assigned.renewing).max(0),
                expiring: (total.expiring - assigned.expiring).max(0),
            },
            total,
        }
    }

    pub fn to_response(&self, s: &SubscriptionRecord) -> ResponseSubscription {
        ResponseSubscription {
            parent_adam_id: s.parent_adam_id,
            adam_id: s.adam_id,
            status: s.status.clone(),
            period_end_date: Some(s.period_end.format("%Y-%m-%d").to_string()),
            counts: self.counts(s.adam_id),
        }
    }

    pub fn seat_view(s: &Seat) -> SubscriptionAssignment {
        SubscriptionAssignment {
            adam_id: s.adam_id,
            client_user_id: s.client_user_id.clone(),
            renewing: s.renewing,
        }
    }

    /// Buys `count` seats (renewing or not) of a subscription, creating it if new.
    pub fn purchase(
        &mut self,
        parent_adam_id: i64,
        adam_id: i64,
        count: i64,
        renewing: bool,
        period_end: NaiveDate,
    ) {
        let rec = match self.list.iter_mut().find(|s| s.adam_id == adam_id) {
            Some(r) => r,
            None => {
                self.list.push(SubscriptionRecord {
                    parent_adam_id,
                    adam_id,
                    status: "ACTIVE".into(),
                    period_end,
                    total: SeatCounts::default(),
                });
                self.list.last_mut().expect("just pushed")
            }
        };
        if renewing {
            rec.total.renewing = (rec.total.renewing + count).max(0);
        } else {
            rec.total.expiring = (rec.total.expiring + count).max(0);
        }
        self.version += 1;
    }

    /// One user takes a seat; idempotent for a user who holds one (its renewal is updated).
    pub fn associate(&mut self, adam_id: i64, user: &str, renewing: bool) -> Result<Seat, i32> {
        if self.get(adam_id).is_none() {
            return Err(codes::SUBSCRIPTION_ADAM_ID_INVALID);
        }
        if let Some(i) = self
            .seats
            .iter()
            .position(|s| s.adam_id == adam_id && s.client_user_id == user)
        {
            let had = self.seats[i].renewing;
            if had != renewing {
                let c = self.counts(adam_id);
                let free = if renewing {
                    c.available.renewing
                } else {
                    c.available.expiring
                };
                if free <= 0 {
                    return Err(codes::NOT_ENOUGH_LICENSES);
                }
                self.seats[i].renewing = renewing;
            }
            self.seats[i].leaving = false;
            self.version += 1;
            return Ok(self.seats[i].clone());
        }
        let c = self.counts(adam_id);
        let free = if renewing {
            c.available.renewing
        } else {
            c.available.expiring
        };
        if free <= 0 {
            return Err(codes::NOT_ENOUGH_LICENSES);
        }
        let seat = Seat {
            adam_id,
            client_user_id: user.to_owned(),
            renewing,
            leaving: false,
        };
        self.seats.push(seat.clone());
        self.version += 1;
        Ok(seat)
    }

    /// Frees a user's seat now, or (deferred) at the period's end.
    pub fn disassociate(&mut self, adam_id: i64, user: &str, deferred: bool) -> Result<Seat, i32> {
        let i = self
            .seats
            .iter()
            .position(|s| s.adam_id == adam_id && s.client_user_id == user)
            .ok_or(codes::SUBSCRIPTION_NOT_ASSIGNED)?;
        self.version += 1;
        if deferred {
            self.seats[i].leaving = true;
            Ok(self.seats[i].clone())
        } else {
            Ok(self.seats.remove(i))
        }
    }

    /// The billing period of `adam_id` ends: expiring seats go (with their holders), users whose
    /// removal was deferred leave, the renewing seats carry on for another month. Returns the seats
    /// that ended.
    pub fn end_period(&mut self, adam_id: i64) -> Vec<Seat> {
        let Some(rec) = self.list.iter_mut().find(|s| s.adam_id == adam_id) else {
            return Vec::new();
        };
        rec.total.expiring = 0;
        rec.period_end = rec
            .period_end
            .checked_add_months(Months::new(1))
            .unwrap_or(rec.period_end);
        let (ended, kept): (Vec<Seat>, Vec<Seat>) = std::mem::take(&mut self.seats)
            .into_iter()
            .partition(|s| s.adam_id == adam_id && (s.leaving || !s.renewing));
        self.seats = kept;
        self.version += 1;
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 1, 31).unwrap()
    }

    #[test]
    fn counts_keep_apples_invariant_through_every_change() {
        let mut s = Subscriptions {
            enabled: true,
            ..Default::default()
        };
        s.purchase(100, 200, 3, true, day());
        s.purchase(100, 200, 2, false, day());
        let check = |s: &Subscriptions| {
            let c = s.counts(200);
            assert_eq!(c.assigned.sum() + c.available.sum(), c.total.sum(), "{c:?}");
        };
        s.associate(200, "a", true).unwrap();
        s.associate(200, "b", false).unwrap();
        s.associate(200, "c", false).unwrap();
        assert_eq!(
            s.associate(200, "d", false),
            Err(codes::NOT_ENOUGH_LICENSES)
        );
        assert_eq!(
            s.associate(999, "d", true),
            Err(codes::SUBSCRIPTION_ADAM_ID_INVALID)
        );
        check(&s);
        s.disassociate(200, "a", true).unwrap();
        assert_eq!(
            s.counts(200).assigned.renewing,
            1,
            "deferred: held until the end"
        );
        assert_eq!(
            s.disassociate(200, "nobody", false),
            Err(codes::SUBSCRIPTION_NOT_ASSIGNED)
        );
        let ended = s.end_period(200);
        assert_eq!(ended.len(), 3, "a (deferred), b and c (expiring seats)");
        let c = s.counts(200);
        assert_eq!(
            (c.total.renewing, c.total.expiring, c.assigned.sum()),
            (3, 0, 0)
        );
        assert_eq!(
            s.get(200).unwrap().period_end,
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        );
        check(&s);
    }
}
