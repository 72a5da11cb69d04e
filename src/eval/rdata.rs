//! A small reader for R's lazy-load databases (`data/Rdata.rdb` + `Rdata.rdx`), enough to pull
//! character vectors out of a CRAN data package such as janeaustenr without R.
//!
//! Format (R Internals §1.8 and `src/main/serialize.c`): the `.rdx` index is a gzip'd serialized
//! list `(variables, references, compressed)` where `variables` maps each object name to an
//! integer pair (offset, length) into the `.rdb`; each record there is a 4-byte big-endian
//! uncompressed length followed by a zlib stream (compression type 1; bzip2/xz records are
//! refused) holding one serialized object. Serialization is XDR (big-endian): a `X\n` header,
//! format version 2 or 3, then items whose 32-bit flags carry the SEXP type (low 8 bits), the
//! object/attribute/tag bits (8, 9, 10) and the levels (bits 12+; CHARSXP encoding).
//! Supported: NULL, symbols (with the reference table), pairlists, character, logical, integer,
//! double and generic vectors, attributes. Other types are an error naming the type.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// A deserialized R object.
#[derive(Clone, Debug, PartialEq)]
pub enum RObject {
    /// NULL (and the environment sentinels).
    Null,
    /// A symbol.
    Symbol(String),
    /// A character vector (`None` = NA).
    Strings(Vec<Option<String>>),
    /// An integer or logical vector.
    Ints(Vec<i32>),
    /// A double vector.
    Reals(Vec<f64>),
    /// A generic vector (list) with its `names` attribute when present.
    List(Vec<RObject>, Vec<String>),
    /// A pairlist of (tag, value).
    Pairs(Vec<(Option<String>, RObject)>),
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    refs: Vec<RObject>,
    what: &'a str,
}

impl Reader<'_> {
    fn bad(&self, reason: impl std::fmt::Display) -> Error {
        Error::Input(format!(
            "R serialization ({}), byte {}: {reason}",
            self.what, self.pos
        ))
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(self.bad(format!("truncated (need {n} more bytes)")));
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn int(&mut self) -> Result<i32> {
        let s = self.bytes(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn length(&mut self) -> Result<usize> {
        let n = self.int()?;
        if n >= 0 {
            return Ok(n as usize);
        }
        // Long vectors: −1 then two ints (upper, lower).
        let (hi, lo) = (self.int()? as u64, self.int()? as u32 as u64);
        usize::try_from((hi << 32) | lo).map_err(|_| self.bad("vector too long"))
    }

    fn header(&mut self) -> Result<()> {
        if self.bytes(2)? != b"X\n" {
            return Err(self.bad("not XDR format (expected `X\\n`)"));
        }
        let version = self.int()?;
        let _writer = self.int()?;
        let _min_reader = self.int()?;
        match version {
            2 => Ok(()),
            3 => {
                let n = self.length()?;
                self.bytes(n)?;
                Ok(())
            }
            v => Err(self.bad(format!("serialization version {v} (2 or 3 supported)"))),
        }
    }

    fn charsxp(&mut self, levels: i32) -> Result<Option<String>> {
        let n = self.int()?;
        if n == -1 {
            return Ok(None);
        }
        let raw = self.bytes(n as usize)?;
        const LATIN1: i32 = 1 << 2;
        Ok(Some(if levels & LATIN1 != 0 {
            raw.iter().map(|&c| c as char).collect()
        } else {
            String::from_utf8_lossy(raw).into_owned()
        }))
    }

    fn item(&mut self) -> Result<RObject> {
        let flags = self.int()?;
        let ty = flags & 0xFF;
        let levels = flags >> 12;
        let has_attr = flags & (1 << 9) != 0;
        let has_tag = flags & (1 << 10) != 0;
        let obj = match ty {
            254 | 242 | 241 | 253 | 252 | 251 | 250 => return Ok(RObject::Null),
            255 => {
                let mut i = (flags >> 8) as usize;
                if i == 0 {
                    i = self.int()? as usize;
                }
                return self
                    .refs
                    .get(i.wrapping_sub(1))
                    .cloned()
                    .ok_or_else(|| self.bad(format!("reference {i} out of range")));
            }
            1 => {
                let name = match self.item()? {
                    RObject::Strings(mut v) if v.len() == 1 => {
                        v.pop().flatten().unwrap_or_default()
                    }
                    _ => return Err(self.bad("symbol without a name")),
                };
                let sym = RObject::Symbol(name);
                self.refs.push(sym.clone());
                return Ok(sym);
            }
            2 | 6 => {
                // Pairlist cells, iteratively along the CDR.
                let mut out = Vec::new();
                let (mut attr, mut tag) = (has_attr, has_tag);
                loop {
                    if attr {
                        self.item()?;
                    }
                    let name = if tag {
                        match self.item()? {
                            RObject::Symbol(s) => Some(s),
                            _ => None,
                        }
                    } else {
                        None
                    };
                    let car = self.item()?;
                    out.push((name, car));
                    let next = self.int()?;
                    let t = next & 0xFF;
                    if t == 254 {
                        break;
                    }
                    if t != 2 && t != 6 {
                        return Err(self.bad(format!("pairlist CDR of type {t}")));
                    }
                    attr = next & (1 << 9) != 0;
                    tag = next & (1 << 10) != 0;
                }
                return Ok(RObject::Pairs(out));
            }
            9 => RObject::Strings(vec![self.charsxp(levels)?]),
            10 | 13 => {
                let n = self.length()?;
                RObject::Ints((0..n).map(|_| self.int()).collect::<Result<_>>()?)
            }
            14 => {
                let n = self.length()?;
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    let s = self.bytes(8)?;
                    v.push(f64::from_be_bytes([
                        s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
                    ]));
                }
                RObject::Reals(v)
            }
            16 => {
                let n = self.length()?;
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    let f = self.int()?;
                    if f & 0xFF != 9 {
                        return Err(
                            self.bad(format!("character vector element of type {}", f & 0xFF))
                        );
                    }
                    v.push(self.charsxp(f >> 12)?);
                }
                RObject::Strings(v)
            }
            19 | 20 => {
                let n = self.length()?;
                let items = (0..n).map(|_| self.item()).collect::<Result<Vec<_>>>()?;
                RObject::List(items, Vec::new())
            }
            t => return Err(self.bad(format!("unsupported R type {t}"))),
        };
        if !has_attr {
            return Ok(obj);
        }
        let attrs = self.item()?;
        Ok(match (obj, attrs) {
            (RObject::List(items, _), RObject::Pairs(a)) => {
                let names = a
                    .into_iter()
                    .find(|(t, _)| t.as_deref() == Some("names"))
                    .and_then(|(_, v)| match v {
                        RObject::Strings(s) => {
                            Some(s.into_iter().map(Option::unwrap_or_default).collect())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                RObject::List(items, names)
            }
            (o, _) => o,
        })
    }
}

/// Deserializes one XDR-serialized object; `what` names the source in errors.
pub fn unserialize(bytes: &[u8], what: &str) -> Result<RObject> {
    let mut r = Reader {
        b: bytes,
        pos: 0,
        refs: Vec::new(),
        what,
    };
    r.header()?;
    r.item()
}

/// Every object of a lazy-load database, by name, in index order (`path` is the `.rdb`; the
/// `.rdx` beside it is the index).
pub fn read_rdb(path: &Path) -> Result<Vec<(String, RObject)>> {
    let rdx_path = path.with_extension("rdx");
    let rdx = std::fs::read(&rdx_path).map_err(|e| Error::io("read", &rdx_path, e))?;
    let rdb = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let mut index = Vec::new();
    flate2::read::GzDecoder::new(&rdx[..])
        .read_to_end(&mut index)
        .map_err(|e| Error::checkpoint(&rdx_path, format!("not a gzip'd R index: {e}")))?;
    let name = rdx_path.display().to_string();
    let RObject::List(parts, names) = unserialize(&index, &name)? else {
        return Err(Error::checkpoint(&rdx_path, "index is not a list"));
    };
    let part = |want: &str| {
        names
            .iter()
            .position(|n| n == want)
            .and_then(|i| parts.get(i))
    };
    if let Some(c) = part("compressed") {
        let ok = matches!(c, RObject::Ints(v) if v.first().is_some_and(|&x| x == 1));
        if !ok {
            return Err(Error::checkpoint(
                &rdx_path,
                "only zlib-compressed databases are supported",
            ));
        }
    }
    let Some(RObject::List(vars, var_names)) = part("variables") else {
        return Err(Error::checkpoint(&rdx_path, "index has no `variables`"));
    };
    let mut out = Vec::new();
    for (v, n) in vars.iter().zip(var_names) {
        let RObject::Ints(pos) = v else {
            return Err(Error::checkpoint(
                &rdx_path,
                format!("`{n}`: offset is not an integer pair"),
            ));
        };
        let &[off, len] = pos.as_slice() else {
            return Err(Error::checkpoint(
                &rdx_path,
                format!("`{n}`: offset is not an integer pair"),
            ));
        };
        let (off, len) = (off as usize, len as usize);
        let rec = rdb
            .get(off..off.saturating_add(len))
            .filter(|r| r.len() > 4)
            .ok_or_else(|| {
                Error::checkpoint(path, format!("`{n}`: record {off}+{len} is out of bounds"))
            })?;
        let mut buf =
            Vec::with_capacity(u32::from_be_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize);
        flate2::read::ZlibDecoder::new(&rec[4..])
            .read_to_end(&mut buf)
            .map_err(|e| Error::checkpoint(path, format!("`{n}`: bad zlib stream: {e}")))?;
        out.push((
            n.clone(),
            unserialize(&buf, &format!("{} `{n}`", path.display()))?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i32) -> [u8; 4] {
        v.to_be_bytes()
    }

    /// `list(a = c("x", NA), b = 3L)` serialized by hand (version 2).
    fn sample() -> Vec<u8> {
        let mut b = b"X\n".to_vec();
        for v in [2, 0x040000, 0x020300] {
            b.extend(int(v));
        }
        b.extend(int(19 | (1 << 9))); // VECSXP with attributes
        b.extend(int(2));
        b.extend(int(16)); // STRSXP
        b.extend(int(2));
        b.extend(int(9 | (64 << 12)));
        b.extend(int(1));
        b.push(b'x');
        b.extend(int(9));
        b.extend(int(-1)); // NA
        b.extend(int(13)); // INTSXP
        b.extend(int(1));
        b.extend(int(3));
        b.extend(int(2 | (1 << 10))); // pairlist cell with tag
        b.extend(int(1)); // SYMSXP
        b.extend(int(9));
        b.extend(int(5));
        b.extend(b"names");
        b.extend(int(16));
        b.extend(int(2));
        for s in [b"a", b"b"] {
            b.extend(int(9));
            b.extend(int(1));
            b.extend(s);
        }
        b.extend(int(254));
        b
    }

    #[test]
    fn reads_a_named_list() {
        let o = unserialize(&sample(), "sample").unwrap();
        let RObject::List(items, names) = o else {
            panic!("{o:?}")
        };
        assert_eq!(names, ["a", "b"]);
        assert_eq!(items[0], RObject::Strings(vec![Some("x".into()), None]));
        assert_eq!(items[1], RObject::Ints(vec![3]));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let b = sample();
        for cut in 0..b.len() {
            let e = unserialize(&b[..cut], "cut");
            assert!(e.is_err(), "cut at {cut}");
        }
    }
}
