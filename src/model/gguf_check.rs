//! A bounds-checking pass over a GGUF file's header, run before candle's reader sees the file.
//!
//! candle's `gguf_file::Content::read` divides by `general.alignment` (a forged 0 panics) and
//! multiplies tensor dimensions unchecked. This pass walks the same structure — magic, version,
//! counts, every metadata key and value, every tensor record — reading nothing it has not first
//! checked against the bytes left in the file, and refuses: an alignment that is not a power of
//! two, a tensor whose element count overflows or could not fit in the file, more than 4 dims,
//! nesting deeper than 8 arrays. It allocates nothing proportional to a claimed size (strings are
//! skipped, not read, except the keys, which are bounded by 64 KiB). Errors name the file.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};

/// The facts [`check`] established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufHeader {
    /// GGUF version (1–3).
    pub version: u32,
    /// Tensor records.
    pub n_tensors: u64,
    /// Metadata entries.
    pub n_metadata: u64,
    /// `general.alignment`, or 32 when absent.
    pub alignment: u64,
}

struct Scan<R> {
    r: R,
    left: u64,
    version: u32,
}

const MAX_KEY_BYTES: u64 = 1 << 16;
const MAX_DEPTH: usize = 8;

impl<R: Read> Scan<R> {
    fn take(&mut self, n: u64, what: &str) -> std::result::Result<(), String> {
        if n > self.left {
            return Err(format!(
                "{what} needs {n} bytes, only {} left in the file",
                self.left
            ));
        }
        self.left -= n;
        Ok(())
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        self.take(N as u64, what)?;
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|e| format!("{what}: {e}"))?;
        Ok(b)
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes::<4>(what)?))
    }

    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes::<8>(what)?))
    }

    /// A length or count (u32 in GGUF v1, u64 after).
    fn len(&mut self, what: &str) -> std::result::Result<u64, String> {
        if self.version == 1 {
            self.u32(what).map(u64::from)
        } else {
            self.u64(what)
        }
    }

    fn skip(&mut self, n: u64, what: &str) -> std::result::Result<(), String> {
        self.take(n, what)?;
        let copied = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink())
            .map_err(|e| format!("{what}: {e}"))?;
        if copied != n {
            return Err(format!("{what}: file ends early"));
        }
        Ok(())
    }

    fn string(&mut self, what: &str, keep: bool) -> std::result::Result<String, String> {
        let n = self.len(what)?;
        if !keep {
            self.skip(n, what)?;
            return Ok(String::new());
        }
        if n > MAX_KEY_BYTES {
            return Err(format!(
                "{what} is {n} bytes long (at most {MAX_KEY_BYTES})"
            ));
        }
        self.take(n, what)?;
        let mut b = vec![0u8; n as usize];
        self.r
            .read_exact(&mut b)
            .map_err(|e| format!("{what}: {e}"))?;
        // As candle reads it: trailing NULs dropped (a key `general.alignment\0\0` is the
        // alignment key to candle, so it must be to this check too).
        while b.last() == Some(&0) {
            b.pop();
        }
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// Skips a value of type `ty`; returns it when it is an integer scalar.
    fn value(
        &mut self,
        ty: u32,
        depth: usize,
        key: &str,
    ) -> std::result::Result<Option<i128>, String> {
        let what = format!("metadata `{key}`");
        let fixed = |ty: u32| match ty {
            0 | 1 | 7 => Some(1u64),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match ty {
            0 => Ok(Some(i128::from(self.bytes::<1>(&what)?[0]))),
            1 => Ok(Some(i128::from(self.bytes::<1>(&what)?[0] as i8))),
            2 => Ok(Some(i128::from(u16::from_le_bytes(
                self.bytes::<2>(&what)?,
            )))),
            3 => Ok(Some(i128::from(i16::from_le_bytes(
                self.bytes::<2>(&what)?,
            )))),
            4 => Ok(Some(i128::from(self.u32(&what)?))),
            5 => Ok(Some(i128::from(self.u32(&what)? as i32))),
            10 => Ok(Some(i128::from(self.u64(&what)?))),
            11 => Ok(Some(i128::from(self.u64(&what)? as i64))),
            6 | 7 | 12 => self.skip(fixed(ty).unwrap_or(0), &what).map(|()| None),
            8 => self.string(&what, false).map(|_| None),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(format!("{what}: arrays nested deeper than {MAX_DEPTH}"));
                }
                let inner = self.u32(&what)?;
                let n = self.len(&what)?;
                match fixed(inner) {
                    Some(size) => {
                        let bytes = n
                            .checked_mul(size)
                            .ok_or_else(|| format!("{what}: an array of {n} elements overflows"))?;
                        self.skip(bytes, &what)?;
                    }
                    None => {
                        // Each element takes at least 4 bytes (a length or a type tag).
                        if n.saturating_mul(4) > self.left {
                            return Err(format!(
                                "{what}: an array of {n} elements cannot fit in the {} bytes left",
                                self.left
                            ));
                        }
                        for _ in 0..n {
                            self.value(inner, depth + 1, key)?;
                        }
                    }
                }
                Ok(None)
            }
            other => Err(format!("{what}: unknown value type {other}")),
        }
    }

    fn tensor(&mut self, index: u64, file_bytes: u64) -> std::result::Result<(), String> {
        let name = self.string(&format!("tensor {index}'s name"), true)?;
        let what = format!("tensor `{name}`");
        let n_dims = self.u32(&what)?;
        if n_dims > 4 {
            return Err(format!("{what} has {n_dims} dimensions (at most 4)"));
        }
        let mut elems: u64 = 1;
        for _ in 0..n_dims {
            let d = if self.version == 1 {
                u64::from(self.u32(&what)?)
            } else {
                self.u64(&what)?
            };
            elems = elems
                .checked_mul(d)
                .ok_or_else(|| format!("{what}: the element count overflows"))?;
        }
        // No GGUF type stores fewer than 1.5 bits per element (IQ1_S), so a tensor with more than
        // 8 elements per byte of file cannot be inside it.
        if elems > file_bytes.saturating_mul(8) {
            return Err(format!(
                "{what} claims {elems} elements, more than a {file_bytes}-byte file can hold"
            ));
        }
        self.u32(&what)?; // ggml dtype: checked by candle
        self.u64(&what)?; // offset: checked by candle against the file size
        Ok(())
    }
}

/// Checks the header of the GGUF file at `path` (see the module docs).
pub fn check(path: &Path) -> Result<GgufHeader> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let file_bytes = f
        .seek(SeekFrom::End(0))
        .and_then(|n| f.seek(SeekFrom::Start(0)).map(|_| n))
        .map_err(|e| Error::io("seek", path, e))?;
    check_reader(BufReader::new(f), file_bytes, path)
}

/// [`check`] on GGUF bytes in memory (`path` names them in errors).
pub fn check_bytes(bytes: &[u8], path: &Path) -> Result<GgufHeader> {
    check_reader(bytes, bytes.len() as u64, path)
}

fn check_reader(r: impl Read, file_bytes: u64, path: &Path) -> Result<GgufHeader> {
    let fail = |e: String| Error::checkpoint(path, format!("not a valid GGUF file: {e}"));
    let mut s = Scan {
        r,
        left: file_bytes,
        version: 0,
    };
    let magic = s.bytes::<4>("the magic").map_err(fail)?;
    if &magic != b"GGUF" {
        return Err(fail(format!("magic {magic:?} is not GGUF")));
    }
    s.version = s.u32("the version").map_err(fail)?;
    if !(1..=3).contains(&s.version) {
        return Err(fail(format!("unsupported version {}", s.version)));
    }
    let n_tensors = s.len("the tensor count").map_err(fail)?;
    let n_metadata = s.len("the metadata count").map_err(fail)?;
    let mut alignment = 32;
    for _ in 0..n_metadata {
        let key = s.string("a metadata key", true).map_err(fail)?;
        let ty = s.u32(&format!("metadata `{key}`")).map_err(fail)?;
        let v = s.value(ty, 0, &key).map_err(fail)?;
        if key == "general.alignment" {
            // candle reads 8/16/32-bit alignments (negative ones fall back to 32).
            if let (Some(a), 0..=5) = (v, ty) {
                if a >= 0 {
                    if a == 0 || (a as u64) & (a as u64 - 1) != 0 || a > 1 << 16 {
                        return Err(fail(format!(
                            "general.alignment {a} is not a power of two in 1..=65536"
                        )));
                    }
                    alignment = a as u64;
                }
            }
        }
    }
    for i in 0..n_tensors {
        s.tensor(i, file_bytes).map_err(fail)?;
    }
    Ok(GgufHeader {
        version: s.version,
        n_tensors,
        n_metadata,
        alignment,
    })
}
