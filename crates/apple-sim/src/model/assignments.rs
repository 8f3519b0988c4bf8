//! Assignments of one location, kept compact and in creation order so that an unfiltered page is
//! a slice (a 1,000,000-assignment walk must not be what limits a sync).

use std::collections::HashMap;

/// Who holds a license: a user record (index into the user table) or a device (index into the
/// serial-number table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holder {
    User(u32),
    Device(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub id: u64,
    pub asset: u32,
    pub holder: Holder,
    /// Version sequence of the write that created it.
    pub modified: u64,
}

#[derive(Debug, Default, Clone)]
pub struct AssignmentStore {
    rows: Vec<Row>,
    next_id: u64,
    index: HashMap<(u32, Holder), u64>,
}

impl AssignmentStore {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn contains(&self, asset: u32, holder: Holder) -> bool {
        self.index.contains_key(&(asset, holder))
    }

    /// Adds an assignment; false if the pair already existed.
    pub fn insert(&mut self, asset: u32, holder: Holder, modified: u64) -> bool {
        if self.contains(asset, holder) {
            return false;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.rows.push(Row {
            id,
            asset,
            holder,
            modified,
        });
        self.index.insert((asset, holder), id);
        true
    }

    /// Removes an assignment; false if there was none.
    pub fn remove(&mut self, asset: u32, holder: Holder) -> bool {
        let Some(id) = self.index.remove(&(asset, holder)) else {
            return false;
        };
        if let Ok(pos) = self.rows.binary_search_by_key(&id, |r| r.id) {
            self.rows.remove(pos);
        }
        true
    }

    /// Removes every row matching `pred` in one pass, returning the removed rows.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Row) -> bool) -> Vec<Row> {
        let mut removed = Vec::new();
        self.rows.retain(|r| {
            if pred(r) {
                removed.push(*r);
                false
            } else {
                true
            }
        });
        for r in &removed {
            self.index.remove(&(r.asset, r.holder));
        }
        removed
    }

    /// The assets a holder has licenses of.
    pub fn of_holder(&self, holder: Holder) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| r.holder == holder)
    }

    pub fn reserve(&mut self, n: usize) {
        self.rows.reserve(n);
        self.index.reserve(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_keep_order_and_index() {
        let mut s = AssignmentStore::default();
        assert!(s.insert(0, Holder::Device(1), 1));
        assert!(s.insert(0, Holder::User(1), 1));
        assert!(s.insert(1, Holder::Device(1), 2));
        assert!(!s.insert(0, Holder::Device(1), 3), "duplicate pair");
        assert!(s.remove(0, Holder::User(1)));
        assert!(!s.remove(0, Holder::User(1)));
        let ids: Vec<_> = s.rows().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![0, 2]);
        let gone = s.remove_where(|r| r.holder == Holder::Device(1));
        assert_eq!(gone.len(), 2);
        assert!(s.is_empty());
        assert!(
            s.insert(0, Holder::Device(1), 4),
            "re-adding after removal works"
        );
    }
}
