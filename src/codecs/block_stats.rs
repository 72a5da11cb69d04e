//! The summary of a block's input that its scale is chosen from: largest finite |x|, finite
//! min/max, and whether any NaN/±Inf is present (which makes the block a NaN block).
//!
//! The common all-finite path is one vectorizable pass of integer max on |x| bits plus min/max;
//! only blocks holding a non-finite value, or whose min or max is a zero, are scanned twice.

/// Summary of a block's input used to choose its scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockStats {
    /// Largest finite |x| (0 for an empty block).
    pub amax: f32,
    /// Smallest finite x (+inf for an empty block).
    pub min: f32,
    /// Largest finite x (−inf for an empty block).
    pub max: f32,
    /// False when the block holds a NaN or ±Inf.
    pub finite: bool,
}

impl BlockStats {
    /// Stats of an empty block (identity of [`BlockStats::merge`]).
    pub const EMPTY: BlockStats = BlockStats {
        amax: 0.0,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        finite: true,
    };

    /// Scans a block. The common path (all finite) is one pass of integer max on |x| bits
    /// plus min/max in eight independent lanes (so it vectorizes: a single running float min
    /// is a chain LLVM may not reorder); the rare paths rescan: a block holding a non-finite
    /// value, and a block whose min or max is a zero, whose sign must be the first zero's.
    #[inline(always)]
    pub fn of(xs: &[f32]) -> Self {
        const LANES: usize = 8;
        let mut amax_l = [0u32; LANES];
        let mut min_l = [f32::INFINITY; LANES];
        let mut max_l = [f32::NEG_INFINITY; LANES];
        let mut chunks = xs.chunks_exact(LANES);
        for c in &mut chunks {
            for j in 0..LANES {
                let x = c[j];
                amax_l[j] = amax_l[j].max(x.to_bits() & 0x7fff_ffff);
                min_l[j] = if x < min_l[j] { x } else { min_l[j] };
                max_l[j] = if x > max_l[j] { x } else { max_l[j] };
            }
        }
        for (j, &x) in chunks.remainder().iter().enumerate() {
            amax_l[j] = amax_l[j].max(x.to_bits() & 0x7fff_ffff);
            min_l[j] = if x < min_l[j] { x } else { min_l[j] };
            max_l[j] = if x > max_l[j] { x } else { max_l[j] };
        }
        let mut amax_bits = 0u32;
        let mut min = f32::INFINITY;
        let mut max = f32::NEG_INFINITY;
        for j in 0..LANES {
            amax_bits = amax_bits.max(amax_l[j]);
            min = if min_l[j] < min { min_l[j] } else { min };
            max = if max_l[j] > max { max_l[j] } else { max };
        }
        if amax_bits < 0x7f80_0000 && min != 0.0 && max != 0.0 {
            return BlockStats {
                amax: f32::from_bits(amax_bits),
                min,
                max,
                finite: true,
            };
        }
        Self::of_sequential(xs)
    }

    /// Only the largest finite |x| and whether all are finite (`min`/`max` are left at
    /// [`BlockStats::EMPTY`]'s): what a format without a zero point chooses its scale from.
    /// One integer max per element in eight lanes; equal to [`BlockStats::of`]'s `amax` and
    /// `finite`.
    #[inline(always)]
    pub fn abs_of(xs: &[f32]) -> Self {
        const LANES: usize = 8;
        let mut amax_l = [0u32; LANES];
        let mut chunks = xs.chunks_exact(LANES);
        for c in &mut chunks {
            for j in 0..LANES {
                amax_l[j] = amax_l[j].max(c[j].to_bits() & 0x7fff_ffff);
            }
        }
        for (j, &x) in chunks.remainder().iter().enumerate() {
            amax_l[j] = amax_l[j].max(x.to_bits() & 0x7fff_ffff);
        }
        let amax_bits = amax_l.iter().fold(0, |a, &b| a.max(b));
        if amax_bits < 0x7f80_0000 {
            return BlockStats {
                amax: f32::from_bits(amax_bits),
                ..BlockStats::EMPTY
            };
        }
        BlockStats {
            amax: Self::of_sequential(xs).amax,
            finite: false,
            ..BlockStats::EMPTY
        }
    }

    /// The element-by-element scan [`BlockStats::of`] must equal: strict comparisons keep the
    /// first of equal values (+0 or −0), and a NaN or ±Inf is left out of the extremes and
    /// marks the block.
    #[cold]
    pub fn of_sequential(xs: &[f32]) -> Self {
        let mut st = BlockStats::EMPTY;
        for &x in xs.iter().filter(|x| x.is_finite()) {
            st.min = if x < st.min { x } else { st.min };
            st.max = if x > st.max { x } else { st.max };
            st.amax = st.amax.max(x.abs());
        }
        st.finite = xs.iter().all(|x| x.is_finite());
        st
    }

    /// Stats of the union of two blocks.
    pub fn merge(self, o: BlockStats) -> BlockStats {
        BlockStats {
            amax: self.amax.max(o.amax),
            // Strict comparisons keep the earlier of two equal values (±0), as `of` does, so
            // the result does not depend on how the compiler lowers `f32::min`.
            min: if o.min < self.min { o.min } else { self.min },
            max: if o.max > self.max { o.max } else { self.max },
            finite: self.finite && o.finite,
        }
    }
}
