//! The summary of a block's input that its scale is chosen from: largest finite |x|, finite
//! min/max, and whether any NaN/±Inf is present (which makes the block a NaN block).
//!
//! The common all-finite path is one pass of integer max on |x| bits plus min/max; only blocks
//! holding a non-finite value are scanned twice.

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
    /// plus min/max; the rare non-finite path rescans.
    #[inline]
    pub fn of(xs: &[f32]) -> Self {
        let mut amax_bits = 0u32;
        let mut min = f32::INFINITY;
        let mut max = f32::NEG_INFINITY;
        for &x in xs {
            amax_bits = amax_bits.max(x.to_bits() & 0x7fff_ffff);
            min = if x < min { x } else { min };
            max = if x > max { x } else { max };
        }
        if amax_bits < 0x7f80_0000 {
            return BlockStats {
                amax: f32::from_bits(amax_bits),
                min,
                max,
                finite: true,
            };
        }
        // Some NaN or Inf: extremes of the finite values only.
        let mut st = BlockStats::EMPTY;
        for &x in xs.iter().filter(|x| x.is_finite()) {
            st.min = if x < st.min { x } else { st.min };
            st.max = if x > st.max { x } else { st.max };
            st.amax = st.amax.max(x.abs());
        }
        st.finite = false;
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
