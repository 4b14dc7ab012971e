//! A bounded cache of verified tokens (`quick_cache`: a sharded S3-FIFO cache, bounded by
//! entry count, no background threads).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::claims::Claims;

/// A cached result: the claims, and under which key-set generation they were verified.
pub(crate) struct Entry {
    pub claims: Claims,
    pub generation: u64,
}

pub(crate) struct AuthCache {
    entries: Cache<[u8; 32], Arc<Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl AuthCache {
    pub fn new(capacity: usize) -> Self {
        AuthCache {
            entries: Cache::new(capacity),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<Arc<Entry>> {
        self.entries.get(key)
    }

    pub fn insert(&self, key: [u8; 32], entry: Entry) {
        self.entries.insert(key, Arc::new(entry));
    }

    pub fn remove(&self, key: &[u8; 32]) {
        self.entries.remove(key);
    }

    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Entries, hits, misses.
    pub fn report(&self) -> (usize, u64, u64) {
        (
            self.entries.len(),
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
