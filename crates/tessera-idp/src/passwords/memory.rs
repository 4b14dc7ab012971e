//! Argon2 working memory, allocated once and reused from hash to hash.
//!
//! Each Argon2 run needs `m_cost` KiB of blocks (19 MiB with the default parameters).
//! Allocating them afresh for every hash lets glibc's malloc keep each freed block in the heap
//! arena of the blocking-pool thread that freed it (its mmap threshold adapts upwards after the
//! first such block), so a node's memory grew with every thread that ever hashed. Instead the
//! [`PasswordHasher`](super::PasswordHasher) keeps one buffer per hashing permit here and hands
//! it to [`argon2::Argon2::hash_password_into_with_memory`]: the buffers are never freed, so
//! the node holds at most `permits × m_cost` KiB of Argon2 memory, whatever the allocator.
//!
//! Argon2 overwrites every block in its first pass, so a buffer needs no clearing between runs.

use std::sync::{Mutex, PoisonError};

use argon2::Block;

/// Reusable Argon2 block buffers of one size.
pub(crate) struct MemoryPool {
    /// Blocks in each pooled buffer: the block count of the configured parameters.
    blocks: usize,
    /// Most buffers kept between runs: the number of hashing permits.
    keep: usize,
    /// Buffers not in use.
    free: Mutex<Vec<Box<[Block]>>>,
}

impl MemoryPool {
    /// A pool of buffers of `blocks` blocks each, keeping at most `keep` of them. Allocates
    /// nothing until the first run.
    pub(crate) fn new(blocks: usize, keep: usize) -> Self {
        MemoryPool {
            blocks,
            keep,
            free: Mutex::new(Vec::with_capacity(keep)),
        }
    }

    /// Runs `work` with exactly `blocks` blocks of working memory.
    ///
    /// When `blocks` fits a pooled buffer, a free one is used (or allocated, then kept once
    /// `work` returns). A larger run — an imported or older hash with a higher memory cost,
    /// which is upgraded to the current parameters at its next successful login — gets a
    /// buffer of its own, freed afterwards, so it does not grow the pool.
    ///
    /// Errors: [`argon2::Error::OutOfMemory`] when the allocation fails, or what `work` returns.
    pub(crate) fn with<T>(
        &self,
        blocks: usize,
        work: impl FnOnce(&mut [Block]) -> Result<T, argon2::Error>,
    ) -> Result<T, argon2::Error> {
        if blocks > self.blocks {
            let mut own = allocate(blocks)?;
            return work(&mut own);
        }
        let taken = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut buffer = match taken {
            Some(buffer) => buffer,
            None => allocate(self.blocks)?,
        };
        let result = match buffer.get_mut(..blocks) {
            Some(memory) => work(memory),
            None => Err(argon2::Error::MemoryTooLittle),
        };
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.keep {
            free.push(buffer);
        }
        result
    }

    /// The addresses of the buffers kept now, for tests that check reuse.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> Vec<usize> {
        let free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.iter()
            .inspect(|buffer| assert_eq!(buffer.len(), self.blocks))
            .map(|buffer| buffer.as_ptr() as usize)
            .collect()
    }
}

/// `blocks` zeroed blocks, or [`argon2::Error::OutOfMemory`].
fn allocate(blocks: usize) -> Result<Box<[Block]>, argon2::Error> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(blocks)
        .map_err(|_| argon2::Error::OutOfMemory)?;
    buffer.resize(blocks, Block::new());
    Ok(buffer.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(memory: &mut [Block], value: u64) -> Result<usize, argon2::Error> {
        for block in memory.iter_mut() {
            block.as_mut()[0] = value;
        }
        Ok(memory.len())
    }

    #[test]
    fn a_buffer_is_allocated_once_and_reused() {
        let pool = MemoryPool::new(16, 2);
        assert!(pool.kept().is_empty(), "nothing allocated before the first run");
        assert_eq!(pool.with(16, |memory| fill(memory, 1)), Ok(16));
        let first = pool.kept();
        assert_eq!(first.len(), 1);
        for round in 0..10 {
            // Smaller runs get exactly what they asked for, from the same buffer.
            assert_eq!(
                pool.with(8 + round % 9, |memory| fill(memory, 2)),
                Ok(8 + round % 9)
            );
            assert_eq!(pool.kept(), first);
        }
    }

    #[test]
    fn at_most_keep_buffers_are_kept() {
        let pool = MemoryPool::new(16, 2);
        // Three runs at once (nested, as three threads without permits could): three buffers
        // exist while they run, two are kept afterwards.
        let result = pool.with(16, |a| {
            pool.with(16, |b| {
                pool.with(16, |c| {
                    assert_ne!(a.as_ptr(), b.as_ptr());
                    assert_ne!(b.as_ptr(), c.as_ptr());
                    Ok(3)
                })
            })
        });
        assert_eq!(result, Ok(3));
        assert_eq!(pool.kept().len(), 2);
    }

    #[test]
    fn a_larger_run_gets_its_own_buffer_and_leaves_the_pool_alone() {
        let pool = MemoryPool::new(16, 2);
        pool.with(16, |memory| fill(memory, 1)).unwrap();
        let kept = pool.kept();
        assert_eq!(pool.with(64, |memory| fill(memory, 3)), Ok(64));
        assert_eq!(pool.kept(), kept);
    }

    #[test]
    fn errors_from_the_work_are_returned_and_the_buffer_kept() {
        let pool = MemoryPool::new(16, 1);
        assert_eq!(
            pool.with(16, |_| Err::<(), _>(argon2::Error::SaltTooShort)),
            Err(argon2::Error::SaltTooShort)
        );
        assert_eq!(pool.kept().len(), 1);
    }
}
