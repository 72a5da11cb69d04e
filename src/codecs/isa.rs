//! Which instruction set the codec's element loops are compiled for, chosen once at run time.
//!
//! The crate is built for the baseline of its target (x86-64: SSE2), where LLVM cannot
//! vectorize the loops that carry the codecs: SSE2 has no 32-bit integer min/max (the block
//! statistics take max over |x| bits), no variable shifts and no blends. [`run`] executes a
//! piece of work ([`Body`]) inside a function compiled with AVX2 (plus FMA, BMI1/2, LZCNT, F16C) when the CPU
//! has them, so everything it inlines is vectorized 8 lanes wide; otherwise it runs
//! it as it is.
//!
//! Invariant: results do not depend on the instruction set. The loops use only IEEE-exact
//! operations (add, mul, div, min/max, compares, integer bit operations); Rust never contracts
//! `a * b + c` into an FMA, and LLVM keeps the NaN and signed-zero semantics of `f32::max`
//! when it vectorizes. tests/codecs.rs checks every preset bit for bit on both paths.
//!
//! `QS_CODEC_ISA=portable` forces the baseline path (for comparison runs).

use std::sync::OnceLock;

/// An instruction set the element loops can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// The build target's baseline (x86-64: SSE2).
    Portable,
    /// x86-64 with AVX2, FMA, BMI1/2, LZCNT and F16C (Haswell and later, Zen and later).
    Avx2,
}

impl Isa {
    /// The display name (`portable`, `avx2`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
        }
    }

    /// Whether this CPU can run `self`.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2 => avx2_supported(),
        }
    }

    /// The best supported instruction set, detected once (`QS_CODEC_ISA=portable` forces the
    /// baseline).
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            let forced = std::env::var("QS_CODEC_ISA").ok();
            if forced.as_deref() != Some("portable") && Isa::Avx2.supported() {
                Isa::Avx2
            } else {
                Isa::Portable
            }
        })
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_supported() -> bool {
    static YES: OnceLock<bool> = OnceLock::new();
    *YES.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("lzcnt")
            && std::arch::is_x86_feature_detected!("f16c")
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_supported() -> bool {
    false
}

/// A piece of work to compile once per instruction set: its [`Body::run`] must be
/// `#[inline(always)]` (a closure would not do: LLVM declines to inline a large closure body
/// that has two callers, so it would stay compiled for the baseline).
pub trait Body {
    /// What the work returns.
    type Out;
    /// Does the work. Mark it `#[inline(always)]`, and what it calls `#[inline]` or
    /// `#[inline(always)]`, so all of it is compiled for the chosen instruction set.
    fn run(self) -> Self::Out;
}

/// Runs `body`, compiled for `isa` when this CPU supports it (else for the baseline). Call it
/// around a whole row or block loop, so the dispatch costs one branch per call.
#[inline(always)]
pub fn run<B: Body>(isa: Isa, body: B) -> B::Out {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 && avx2_supported() {
        // SAFETY: `in_avx2` only needs the features it enables, and `avx2_supported` has just
        // checked each of them on this CPU.
        #[allow(unsafe_code)]
        return unsafe { in_avx2(body) };
    }
    let _ = isa;
    body.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,f16c")]
#[inline]
fn in_avx2<B: Body>(body: B) -> B::Out {
    body.run()
}
