//! Allocator tuning for the binaries that use mimalloc as their global allocator (the CLI and
//! the benchmarks; the library itself allocates through whatever allocator its host chose).
//!
//! The forward pass allocates and frees activation buffers of several MiB per block. By default
//! mimalloc returns freed memory to the OS after a 1 s purge delay and the next use page-faults
//! it back in (zeroed by the kernel): 3–5 % of a SmolLM2 evaluation in `perf`, and 325 → 423
//! tokens/s on `cargo bench --bench forward` (smollm2 shape, 2 threads) with purging off.
//! [`keep_freed_memory`] lengthens the delay to [`PURGE_DELAY_MS`], so buffers freed and reused
//! within one evaluation stay mapped while memory idle for longer still goes back.

/// mimalloc's purge delay set by [`keep_freed_memory`], in milliseconds.
pub const PURGE_DELAY_MS: i64 = 30_000;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (include/mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`]. Call it first thing in `main`; harmless
/// when mimalloc is linked but not the global allocator.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` takes two plain integers and only stores the option's value
    // (atomically), which mimalloc reads at its next purge; it touches no caller memory.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as _) }
}
