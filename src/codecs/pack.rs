//! Bit-packed code storage: codes of any width 1..=32 packed LSB-first, each row starting on a
//! byte boundary (so rows pack and unpack in parallel, as a row-major kernel reads them).
//!
//! `bytes_per_row = ceil(per_row · bits / 8)`; the padding bits at the end of a row are zero.

use serde::{Deserialize, Serialize};

/// A `rows × per_row` matrix of `bits`-wide codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedCodes {
    /// Bits per code.
    pub bits: u32,
    /// Number of rows.
    pub rows: usize,
    /// Codes per row.
    pub per_row: usize,
    /// Bytes per packed row.
    pub bytes_per_row: usize,
    /// The packed bytes, `rows * bytes_per_row` long.
    pub data: Vec<u8>,
}

impl PackedCodes {
    /// All-zero storage.
    pub fn zeros(bits: u32, rows: usize, per_row: usize) -> Self {
        let bytes_per_row = (per_row * bits as usize).div_ceil(8);
        Self {
            bits,
            rows,
            per_row,
            bytes_per_row,
            data: vec![0; rows * bytes_per_row],
        }
    }

    /// Stored bytes.
    pub fn n_bytes(&self) -> usize {
        self.data.len()
    }

    /// The code at (`row`, `i`). Panics never: out-of-range reads return 0.
    pub fn get(&self, row: usize, i: usize) -> u32 {
        let Some(bytes) = self
            .data
            .get(row * self.bytes_per_row..(row + 1) * self.bytes_per_row)
        else {
            return 0;
        };
        let mut reader = BitReader::new(bytes, self.bits);
        reader.skip(i);
        reader.next_code()
    }

    /// Mutable rows, for parallel packing.
    pub fn rows_mut(&mut self) -> std::slice::ChunksMut<'_, u8> {
        self.data.chunks_mut(self.bytes_per_row.max(1))
    }

    /// Immutable rows.
    pub fn rows_iter(&self) -> std::slice::Chunks<'_, u8> {
        self.data.chunks(self.bytes_per_row.max(1))
    }
}

/// Appends codes LSB-first into a byte slice.
pub struct BitWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
    acc: u64,
    n_acc: u32,
    bits: u32,
    mask: u64,
}

impl<'a> BitWriter<'a> {
    /// A writer of `bits`-wide codes into `out`.
    pub fn new(out: &'a mut [u8], bits: u32) -> Self {
        Self {
            out,
            pos: 0,
            acc: 0,
            n_acc: 0,
            bits,
            mask: if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            },
        }
    }

    /// Appends one code (its low `bits` bits).
    #[inline(always)]
    pub fn push(&mut self, code: u32) {
        self.acc |= (u64::from(code) & self.mask) << self.n_acc;
        self.n_acc += self.bits;
        while self.n_acc >= 8 {
            if let Some(b) = self.out.get_mut(self.pos) {
                *b = self.acc as u8;
            }
            self.pos += 1;
            self.acc >>= 8;
            self.n_acc -= 8;
        }
    }

    /// Writes the remaining partial byte.
    pub fn finish(mut self) {
        if self.n_acc > 0 {
            if let Some(b) = self.out.get_mut(self.pos) {
                *b = self.acc as u8;
            }
            self.n_acc = 0;
        }
    }
}

/// Reads codes LSB-first from a byte slice.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n_acc: u32,
    bits: u32,
    mask: u64,
}

impl<'a> BitReader<'a> {
    /// A reader of `bits`-wide codes.
    pub fn new(data: &'a [u8], bits: u32) -> Self {
        Self {
            data,
            pos: 0,
            acc: 0,
            n_acc: 0,
            bits,
            mask: if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            },
        }
    }

    /// Skips `n` codes.
    pub fn skip(&mut self, n: usize) {
        let total_bits = n * self.bits as usize;
        self.pos = total_bits / 8;
        self.acc = 0;
        self.n_acc = 0;
        let rem = (total_bits % 8) as u32;
        if rem > 0 {
            self.refill();
            self.acc >>= rem;
            self.n_acc -= rem;
        }
    }

    #[inline(always)]
    fn refill(&mut self) {
        while self.n_acc <= 56 {
            let b = self.data.get(self.pos).copied().unwrap_or(0);
            self.acc |= u64::from(b) << self.n_acc;
            self.pos += 1;
            self.n_acc += 8;
        }
    }

    /// The next code (0 past the end).
    #[inline(always)]
    pub fn next_code(&mut self) -> u32 {
        if self.n_acc < self.bits {
            self.refill();
        }
        let c = (self.acc & self.mask) as u32;
        self.acc >>= self.bits;
        self.n_acc -= self.bits;
        c
    }
}
