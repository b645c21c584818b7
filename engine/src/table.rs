//! A slab whose handles carry a generation, so a handle kept past its entry's removal never
//! reaches the entry that later reuses the slot (quinn's `ConnectionHandle` over a slab, with
//! the staleness check mio tokens need too).

use slab::Slab;

/// A handle into a [`Table`]: slot index and the generation the slot had when inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    /// The slot index (for packing into a mio token; not unique over time).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The generation (unique per slot over time, wrapping after 2^32 reuses of one slot).
    pub fn generation(self) -> u32 {
        self.generation
    }

    /// The key as one `u64`, e.g. for a log line or an opaque reference.
    pub fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The inverse of [`to_u64`](Self::to_u64).
    pub fn from_u64(v: u64) -> Key {
        Key {
            index: v as u32,
            generation: (v >> 32) as u32,
        }
    }
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: T,
}

/// Values addressed by generation-checked [`Key`]s; insert, lookup and remove are O(1).
#[derive(Debug)]
pub struct Table<T> {
    slots: Slab<Slot<T>>,
    /// Generation to give the next inserted value; one counter for all slots keeps the
    /// check exact without remembering per-slot history in vacant slots.
    next_generation: u32,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Slab::new(),
            next_generation: 1,
        }
    }
}

impl<T> Table<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `value`; its key stays valid until [`remove`](Self::remove).
    pub fn insert(&mut self, value: T) -> Key {
        self.insert_with(|_| value)
    }

    /// Inserts the value `make` builds from its own key (for values that carry their key).
    pub fn insert_with(&mut self, make: impl FnOnce(Key) -> T) -> Key {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let entry = self.slots.vacant_entry();
        let key = Key {
            index: entry.key() as u32,
            generation,
        };
        entry.insert(Slot {
            generation,
            value: make(key),
        });
        key
    }

    /// The value of `key`, if it is still there.
    pub fn get(&self, key: Key) -> Option<&T> {
        self.slots
            .get(key.index())
            .filter(|s| s.generation == key.generation)
            .map(|s| &s.value)
    }

    /// The value of `key`, mutably, if it is still there.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.slots
            .get_mut(key.index())
            .filter(|s| s.generation == key.generation)
            .map(|s| &mut s.value)
    }

    /// Whether `key` is still there.
    pub fn contains(&self, key: Key) -> bool {
        self.get(key).is_some()
    }

    /// Removes and returns `key`'s value; `None` for a stale key.
    pub fn remove(&mut self, key: Key) -> Option<T> {
        if !self.contains(key) {
            return None;
        }
        Some(self.slots.remove(key.index()).value)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every key with its value.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.slots.iter().map(|(index, s)| {
            (
                Key {
                    index: index as u32,
                    generation: s.generation,
                },
                &s.value,
            )
        })
    }

    /// Every key with its value, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Key, &mut T)> {
        self.slots.iter_mut().map(|(index, s)| {
            (
                Key {
                    index: index as u32,
                    generation: s.generation,
                },
                &mut s.value,
            )
        })
    }

    /// Every key (collected, so the table can be changed while walking them).
    pub fn keys(&self) -> Vec<Key> {
        self.iter().map(|(k, _)| k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_key_misses_the_value_that_reused_its_slot() {
        let mut t = Table::new();
        let a = t.insert("a");
        assert_eq!(t.remove(a), Some("a"));
        let b = t.insert("b");
        assert_eq!(a.index(), b.index(), "the slot is reused");
        assert_eq!(t.get(a), None);
        assert_eq!(t.remove(a), None);
        assert_eq!(t.get(b), Some(&"b"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn keys_round_trip_through_u64() {
        let mut t = Table::new();
        let k = t.insert_with(|k| k.to_u64());
        assert_eq!(Key::from_u64(k.to_u64()), k);
        assert_eq!(t.get(k), Some(&k.to_u64()));
    }
}
