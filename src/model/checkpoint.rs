//! Safetensors checkpoints: a Hugging Face folder with `model.safetensors`, a sharded
//! `model.safetensors.index.json`, or loose `*.safetensors` files.
//!
//! Reading is memory-mapped and read-only; every file's header is validated by the
//! `safetensors` crate (offsets inside the file, sizes matching shape × dtype with overflow
//! checks, header length bounded) before any tensor is touched, so a forged header is an error
//! naming the file, never an out-of-memory or a panic. F32, F16 and BF16 convert to f32.
//!
//! Writing ([`OutDir`] and [`write_safetensors`]) produces a new folder atomically: everything goes to a hidden
//! temporary sibling which is renamed into place at the end, and removed on any error, so an
//! interrupted or failed export leaves nothing behind. The input is never modified.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{Error, Result};

/// Element type of a stored tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// IEEE single.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// Anything else (integers, FP8, F64…): listed, not converted.
    Other(Dtype),
}

impl DType {
    fn from_st(d: Dtype) -> Self {
        match d {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            o => DType::Other(o),
        }
    }

    fn to_st(self) -> Dtype {
        match self {
            DType::F32 => Dtype::F32,
            DType::F16 => Dtype::F16,
            DType::BF16 => Dtype::BF16,
            DType::Other(d) => d,
        }
    }

    /// Name as safetensors spells it.
    pub fn name(self) -> String {
        format!("{:?}", self.to_st())
    }

    /// Whether the tensor can be converted to f32.
    pub fn is_float(self) -> bool {
        !matches!(self, DType::Other(_))
    }
}

/// Where a tensor lives.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    /// Index of its file in [`Checkpoint::files`].
    pub file: usize,
    /// Stored dtype.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
}

/// An opened checkpoint folder.
pub struct Checkpoint {
    /// The folder.
    pub dir: PathBuf,
    /// Safetensors files, in a stable order.
    pub files: Vec<PathBuf>,
    maps: Vec<Mmap>,
    /// Every tensor by name (sorted).
    pub tensors: BTreeMap<String, TensorEntry>,
}

/// Maps `path` read-only.
///
/// # Safety
/// The mapping is only sound while no other process truncates or rewrites the file. quantscape
/// never writes into checkpoints it reads (exports go to a new folder), and a user replacing a
/// checkpoint while it is open is outside what any mmap-based loader can defend against; this
/// is the same contract as `candle_core::safetensors::MmapedSafetensors` and the Python
/// `safetensors` loader.
#[allow(unsafe_code)]
fn map_file(path: &Path) -> Result<Mmap> {
    let file = fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    // SAFETY: read-only mapping of a file we never write; see the function docs.
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io("mmap", path, e))
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes)
        .map_err(|e| Error::checkpoint(path, format!("malformed safetensors file: {e}")))
}

impl Checkpoint {
    /// Opens a checkpoint folder (or a single `.safetensors` file) and validates every header.
    pub fn open(path: &Path) -> Result<Self> {
        let (dir, files) = if path.is_file() {
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (dir, vec![path.to_path_buf()])
        } else if path.is_dir() {
            (path.to_path_buf(), find_files(path)?)
        } else {
            return Err(Error::Path {
                reason: "no such checkpoint folder or file".into(),
                path: path.to_path_buf(),
            });
        };
        let mut maps = Vec::with_capacity(files.len());
        let mut tensors = BTreeMap::new();
        for (i, f) in files.iter().enumerate() {
            let map = map_file(f)?;
            {
                let st = parse(f, &map)?;
                for (name, view) in st.tensors() {
                    let entry = TensorEntry {
                        file: i,
                        dtype: DType::from_st(view.dtype()),
                        shape: view.shape().to_vec(),
                    };
                    if tensors.insert(name.clone(), entry).is_some() {
                        return Err(Error::checkpoint(
                            f,
                            format!("tensor `{name}` appears in more than one file"),
                        ));
                    }
                }
            }
            maps.push(map);
        }
        Ok(Self {
            dir,
            files,
            maps,
            tensors,
        })
    }

    /// `config.json`'s `model_type`, or "" when absent.
    pub fn model_type(&self) -> String {
        fs::read_to_string(self.dir.join("config.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v.get("model_type")?.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Reads a tensor converted to f32.
    pub fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let bytes = self.raw_bytes(name)?;
        let entry = &self.tensors[name];
        bytes_to_f32(bytes, entry.dtype).ok_or_else(|| {
            Error::checkpoint(
                &self.files[entry.file],
                format!(
                    "tensor `{name}` has dtype {} (only F32, F16 and BF16 can be quantized)",
                    entry.dtype.name()
                ),
            )
        })
    }

    /// Raw bytes of a tensor (for copying tensors through unchanged).
    pub fn raw_bytes(&self, name: &str) -> Result<&[u8]> {
        let entry = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::checkpoint(&self.dir, format!("no tensor named `{name}`")))?;
        let path = &self.files[entry.file];
        let map = self
            .maps
            .get(entry.file)
            .ok_or_else(|| Error::checkpoint(path, "file not mapped"))?;
        let st = parse(path, map)?;
        let view = st
            .tensor(name)
            .map_err(|e| Error::checkpoint(path, format!("tensor `{name}`: {e}")))?;
        let data = view.data();
        // Re-borrow from the map (the view borrows the same bytes).
        let start = data.as_ptr() as usize - map.as_ptr() as usize;
        map.get(start..start + data.len())
            .ok_or_else(|| Error::checkpoint(path, "tensor bytes out of bounds"))
    }

    /// The tensors of file `i`, by name.
    pub fn tensors_in_file(&self, i: usize) -> Vec<&str> {
        self.tensors
            .iter()
            .filter(|(_, e)| e.file == i)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Finds the safetensors files of a folder: the index's shards, `model.safetensors`, or every
/// `*.safetensors`.
fn find_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = fs::read_to_string(&index).map_err(|e| Error::io("read", &index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: index.clone(),
            source,
        })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::checkpoint(&index, "no `weight_map` object"))?;
        let mut shards: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        shards.sort();
        shards.dedup();
        let mut files = Vec::new();
        for s in shards {
            if s.contains('/') || s.contains('\\') || s.contains("..") {
                return Err(Error::checkpoint(
                    &index,
                    format!("shard name `{s}` leaves the folder"),
                ));
            }
            let p = dir.join(&s);
            if !p.is_file() {
                return Err(Error::checkpoint(&index, format!("shard `{s}` is missing")));
            }
            files.push(p);
        }
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| Error::io("read folder", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Path {
            reason: "no *.safetensors file in checkpoint folder".into(),
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

/// Converts little-endian F32/F16/BF16 bytes to f32; `None` for other dtypes.
pub fn bytes_to_f32(bytes: &[u8], dtype: DType) -> Option<Vec<f32>> {
    Some(match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::Other(_) => return None,
    })
}

/// Converts f32 to little-endian bytes of `dtype` (round to nearest even); `None` for others.
pub fn f32_to_bytes(values: &[f32], dtype: DType) -> Option<Vec<u8>> {
    Some(match dtype {
        DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        DType::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        DType::Other(_) => return None,
    })
}

/// One tensor to write: name, dtype, shape, little-endian bytes.
pub struct OutTensor {
    /// Name.
    pub name: String,
    /// Dtype.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Bytes.
    pub data: Vec<u8>,
}

/// Writes one safetensors file.
pub fn write_safetensors(
    path: &Path,
    tensors: &[OutTensor],
    metadata: Option<BTreeMap<String, String>>,
) -> Result<()> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype.to_st(), t.shape.clone(), &t.data)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::checkpoint(path, format!("tensor `{}`: {e}", t.name)))
        })
        .collect::<Result<_>>()?;
    let meta = metadata.map(|m| m.into_iter().collect());
    safetensors::serialize_to_file(views, meta, path)
        .map_err(|e| Error::checkpoint(path, format!("cannot write safetensors: {e}")))
}

/// A new output folder built in a temporary sibling and renamed into place by [`OutDir::commit`].
/// Dropping it without committing removes the temporary folder.
pub struct OutDir {
    /// Final path.
    pub target: PathBuf,
    /// Temporary path being filled.
    pub tmp: PathBuf,
    committed: bool,
}

impl OutDir {
    /// Starts an output folder; fails if `target` exists.
    pub fn create(target: &Path) -> Result<Self> {
        if target.exists() {
            return Err(Error::Path {
                reason: "output folder already exists (choose a new one)".into(),
                path: target.to_path_buf(),
            });
        }
        let name = target
            .file_name()
            .ok_or_else(|| Error::Path {
                reason: "output path has no folder name".into(),
                path: target.to_path_buf(),
            })?
            .to_string_lossy()
            .to_string();
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(Error::Path {
                reason: "parent folder of the output does not exist".into(),
                path: target.to_path_buf(),
            });
        }
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove stale", &tmp, e))?;
        }
        fs::create_dir(&tmp).map_err(|e| Error::io("create folder", &tmp, e))?;
        Ok(Self {
            target: target.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// Path of `name` inside the temporary folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// Renames the temporary folder to the target.
    pub fn commit(mut self) -> Result<PathBuf> {
        if self.target.exists() {
            return Err(Error::Path {
                reason: "output folder appeared while writing".into(),
                path: self.target.clone(),
            });
        }
        fs::rename(&self.tmp, &self.target).map_err(|e| Error::io("rename", &self.target, e))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Copies every regular non-safetensors file of `src` (config, tokenizer, index…) into `dst`.
pub fn copy_side_files(src: &Path, dst: &OutDir) -> Result<()> {
    for e in fs::read_dir(src).map_err(|e| Error::io("read folder", src, e))? {
        let e = e.map_err(|e| Error::io("read folder", src, e))?;
        let p = e.path();
        if !p.is_file() || p.extension().is_some_and(|x| x == "safetensors") {
            continue;
        }
        let name = e.file_name().to_string_lossy().to_string();
        fs::copy(&p, dst.join(&name)).map_err(|err| Error::io("copy", &p, err))?;
    }
    Ok(())
}
