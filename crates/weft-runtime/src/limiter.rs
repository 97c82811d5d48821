//! What one module call may hold: linear memory counted across all of a
//! component's memories (a component is several core instances, and each
//! may declare its own memory), table elements, and how many instances,
//! tables and memories it may create. Growth past a limit traps with a
//! message naming the limit, rather than handing the guest a -1 it may
//! not check.
//!
//! It is not the fuel or the deadline (the store's), nor the host's own
//! accounting of work done in imports (`host::HostState::charge`).

use wasmtime::ResourceLimiter;

/// Most core instances one component may create. A Rust guest makes 3, a
/// QuickJS one 13, a componentize-py one 38 (its runtime's libraries plus
/// one stub per WASI interface it does not use).
pub const MAX_INSTANCES: usize = 64;
/// Most tables: every core instance may have one.
pub const MAX_TABLES: usize = MAX_INSTANCES;
/// Most memories one component may create (their total size is capped
/// separately).
pub const MAX_MEMORIES: usize = 8;

/// The limits of one store, and what it holds so far.
#[derive(Debug, Clone)]
pub struct Meter {
    /// Bytes of linear memory across every memory of the store.
    memory_limit: usize,
    memory_used: usize,
    /// Elements of any one table.
    table_elements: usize,
}

impl Meter {
    pub fn new(memory_limit: usize, table_elements: usize) -> Self {
        Self {
            memory_limit,
            memory_used: 0,
            table_elements,
        }
    }

    /// Linear memory held by the store's memories, in bytes.
    pub fn memory_used(&self) -> usize {
        self.memory_used
    }
}

impl ResourceLimiter for Meter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        let total = self.memory_used.saturating_add(grow);
        if total > self.memory_limit {
            wasmtime::bail!(
                "the module's memories would hold {total} bytes, over its limit of {} bytes",
                self.memory_limit
            );
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            wasmtime::bail!(
                "a table of the module would hold {desired} elements, over the limit of {}",
                self.table_elements
            );
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_counted_across_memories() -> wasmtime::Result<()> {
        let mut meter = Meter::new(100, 10);
        assert!(meter.memory_growing(0, 60, None)?);
        // A second memory of 60 bytes would take the total to 120.
        let over = meter.memory_growing(0, 60, None);
        assert!(over.is_err_and(|e| e.to_string().contains("over its limit of 100")));
        assert_eq!(meter.memory_used(), 60);
        assert!(meter.memory_growing(60, 100, None)?);
        assert!(meter.memory_growing(100, 101, None).is_err());
        Ok(())
    }

    #[test]
    fn tables_are_capped() -> wasmtime::Result<()> {
        let mut meter = Meter::new(100, 10);
        assert!(meter.table_growing(0, 10, None)?);
        assert!(meter.table_growing(10, 11, None).is_err());
        Ok(())
    }
}
