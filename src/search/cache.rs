//! Quantized weights cached per (linear site, format + method), with a byte budget and
//! least-recently-used eviction, so a trial swaps tensors instead of re-quantizing them.

use std::collections::HashMap;

use candle_core::Tensor;

use crate::error::Result;

/// Default budget: 2 GiB of f32 weights.
pub const DEFAULT_CACHE_BYTES: usize = 2 << 30;

/// The cache. Tensors are reference-counted: handing one out copies nothing.
pub struct WeightCache {
    budget_bytes: usize,
    used_bytes: usize,
    tick: u64,
    map: HashMap<(usize, String), (Tensor, u64)>,
    /// Lookups answered from the cache.
    pub hits: usize,
    /// Tensors computed.
    pub misses: usize,
}

fn bytes(t: &Tensor) -> usize {
    t.elem_count() * t.dtype().size_in_bytes()
}

impl WeightCache {
    /// An empty cache holding at most `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            used_bytes: 0,
            tick: 0,
            map: HashMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    /// Drops everything (a new model).
    pub fn clear(&mut self) {
        self.map.clear();
        self.used_bytes = 0;
    }

    /// Whether `(site, tag)` is cached.
    pub fn contains(&self, site: usize, tag: &str) -> bool {
        self.map.contains_key(&(site, tag.to_string()))
    }

    /// Bytes held.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Inserts (or replaces) a tensor, evicting least-recently-used entries over budget.
    pub fn insert(&mut self, site: usize, tag: &str, t: Tensor) {
        self.tick += 1;
        let b = bytes(&t);
        if let Some((old, _)) = self.map.insert((site, tag.to_string()), (t, self.tick)) {
            self.used_bytes -= bytes(&old);
        }
        self.used_bytes += b;
        while self.used_bytes > self.budget_bytes && self.map.len() > 1 {
            let Some(oldest) = self
                .map
                .iter()
                .filter(|(k, _)| !(k.0 == site && k.1 == tag))
                .min_by_key(|(_, v)| v.1)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((old, _)) = self.map.remove(&oldest) {
                self.used_bytes -= bytes(&old);
            }
        }
    }

    /// The cached tensor, or `make()`'s, cached.
    pub fn get_or_insert_with(
        &mut self,
        site: usize,
        tag: &str,
        make: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Tensor> {
        self.tick += 1;
        if let Some((t, used)) = self.map.get_mut(&(site, tag.to_string())) {
            *used = self.tick;
            self.hits += 1;
            return Ok(t.clone());
        }
        self.misses += 1;
        let t = make()?;
        self.insert(site, tag, t.clone());
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn evicts_least_recently_used_over_budget() {
        let t = |v: f32| Tensor::full(v, (4,), &Device::Cpu).unwrap();
        let mut c = WeightCache::new(32); // two 16-byte tensors
        c.insert(0, "a", t(0.0));
        c.insert(1, "a", t(1.0));
        c.get_or_insert_with(0, "a", || unreachable!()).unwrap();
        c.insert(2, "a", t(2.0));
        assert!(c.contains(0, "a") && c.contains(2, "a") && !c.contains(1, "a"));
        assert_eq!(c.used_bytes(), 32);
        assert_eq!((c.hits, c.misses), (1, 0));
    }
}
