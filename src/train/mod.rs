//! Training the bundled model families (`quantscape train`): seeded, resumable runs of AdamW
//! with warmup + cosine decay and global-norm clipping on the bundled corpus.
//!
//! Data: the train split tokenized once, cut into non-overlapping windows of `context` tokens
//! (`[BOS] + context−1` text tokens, exactly as evaluation cuts them), visited in a seeded
//! permutation per epoch; optimiser step s takes windows `s·B .. (s+1)·B` of that sequence, so a
//! resumed run sees exactly the data the uninterrupted one would. Losses are mean next-token NLL
//! in nats over the `context−1` scored positions of each window.
//!
//! Files: a run works in `work_dir` (`ckpt/` = fp32 model folder + optimiser moments +
//! `state.json`, replaced atomically every `checkpoint_every_steps`; `loss.csv`, `eval.csv`) and,
//! when done, exports a Hugging Face folder (config.json, bf16 model.safetensors,
//! tokenizer.json, loss.csv, eval.csv, train.json) to `out_dir` atomically. The reported final
//! losses are measured on the exported bf16 weights. Deterministic for a fixed thread count.

pub mod optim;
pub mod recipe;
pub mod report;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Tensor, Var};
use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;

use crate::error::{Error, Result};
use crate::eval::corpus::{self, Split};
use crate::eval::windows::{make_windows, WindowSpec, Windows};
use crate::model::checkpoint::{Checkpoint, DType, OutDir};
use crate::model::config::ArchConfig;
use crate::model::layers::NoHooks;
use crate::model::tokenizer::Tokenizer;
use crate::model::trainable::{self, Vars};
use crate::model::transformer::Transformer;
use optim::{global_grad_norm, lr_at, AdamW};
use recipe::{FamilyRecipe, SizeSpec};

/// Tokenized corpus shared by every run of a family.
pub struct Data {
    /// Every non-overlapping training window.
    pub train: Windows,
    /// Fixed held-out windows: (split name, windows), plus a `train` probe.
    pub probes: Vec<(String, Windows)>,
    /// Vocabulary size of the tokenizer.
    pub vocab_size: usize,
}

impl Data {
    /// Tokenizes the corpus in `corpus_dir` with the tokenizer in `tokenizer_dir`.
    pub fn prepare(
        corpus_dir: &Path,
        tokenizer_dir: &Path,
        context: usize,
        probe_windows: usize,
    ) -> Result<Self> {
        let tok = Tokenizer::load(tokenizer_dir)?;
        let cut = |split: Split, n_windows: usize| -> Result<Windows> {
            let text = corpus::load(corpus_dir, split)?;
            let ids = tok.encode(&text)?;
            let spec = WindowSpec {
                ctx: context,
                stride: None,
                n_windows,
                seed: 0x5eed,
            };
            make_windows(&ids, tok.bos, &spec, split.name())
        };
        let train = cut(Split::Train, usize::MAX)?;
        let mut probe = train.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let mut pick: Vec<usize> = (0..train.len()).collect();
        pick.shuffle(&mut rng);
        pick.truncate(probe_windows);
        pick.sort_unstable();
        probe.ids = pick
            .iter()
            .flat_map(|&i| train.window(i).to_vec())
            .collect();
        probe.starts = pick.iter().map(|&i| train.starts[i]).collect();
        Ok(Self {
            probes: vec![
                ("train".into(), probe),
                ("eval_austen".into(), cut(Split::EvalAusten, probe_windows)?),
                ("eval_kjv".into(), cut(Split::EvalKjv, probe_windows)?),
            ],
            train,
            vocab_size: tok.vocab_size(),
        })
    }

    /// Window ids of optimiser step `step` (B windows, row-major).
    fn batch(
        &self,
        step: u64,
        batch_windows: usize,
        seed: u64,
        perm: &mut (u64, Vec<usize>),
    ) -> Vec<u32> {
        let n = self.train.len().max(1) as u64;
        let mut ids = Vec::with_capacity(batch_windows * self.train.ctx);
        for j in 0..batch_windows as u64 {
            let global = step * batch_windows as u64 + j;
            let epoch = global / n;
            if perm.0 != epoch || perm.1.is_empty() {
                let mut p: Vec<usize> = (0..n as usize).collect();
                p.shuffle(&mut rand::rngs::StdRng::seed_from_u64(
                    seed.wrapping_mul(1_000_003) ^ epoch,
                ));
                *perm = (epoch, p);
            }
            ids.extend_from_slice(self.train.window(perm.1[(global % n) as usize]));
        }
        ids
    }
}

/// Mean next-token NLL (nats) of `ids` (`b` windows) as a scalar tensor.
fn batch_loss(model: &Transformer, ids: &[u32], b: usize) -> Result<Tensor> {
    let logits = model.forward(ids, b, &NoHooks)?;
    let (b, t, v) = logits.dims3()?;
    let inputs = logits.narrow(1, 0, t - 1)?.reshape((b * (t - 1), v))?;
    let targets = Tensor::from_slice(ids, (b, t), logits.device())?
        .narrow(1, 1, t - 1)?
        .flatten_all()?;
    Ok(candle_nn::loss::cross_entropy(&inputs, &targets)?)
}

/// Mean NLL on fixed windows with the inference kernels (no gradients).
pub fn probe_loss(model: &mut Transformer, w: &Windows) -> Result<f64> {
    let was = model.differentiable;
    model.differentiable = false;
    let per_batch = 16usize;
    let mut sum = 0.0;
    let mut i = 0;
    let result = (|| -> Result<f64> {
        while i < w.len() {
            let b = per_batch.min(w.len() - i);
            let ids = &w.ids[i * w.ctx..(i + b) * w.ctx];
            sum += f64::from(batch_loss(model, ids, b)?.detach().to_scalar::<f32>()?) * b as f64;
            i += b;
        }
        Ok(sum / w.len().max(1) as f64)
    })();
    model.differentiable = was;
    result
}

/// What the progress callback sees after each step.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Steps done.
    pub step: u64,
    /// Steps in the run.
    pub total_steps: u64,
    /// Training loss of the last batch (nats/token).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Text tokens per second since the run (re)started.
    pub tokens_per_sec: f64,
    /// Held-out losses when this step evaluated them.
    pub probes: Option<Vec<(String, f64)>>,
}

/// The exported run's summary (`train.json`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// Run name.
    pub run: String,
    /// Family name.
    pub family: String,
    /// Size name.
    pub size: String,
    /// Non-embedding parameters N.
    pub n_params_non_embedding: usize,
    /// All parameters.
    pub n_params_total: usize,
    /// Token budget D (text tokens seen).
    pub budget_tokens: u64,
    /// Optimiser steps.
    pub steps: u64,
    /// Final losses on the bf16 export: (split, nats/token).
    pub final_losses: Vec<(String, f64)>,
    /// Wall-clock training time (sum over resumptions).
    pub elapsed_secs: f64,
    /// The size and recipe trained.
    pub spec: SizeSpec,
    /// Recipe it came from.
    pub recipe: FamilyRecipe,
}

impl RunReport {
    /// Reads an exported run's `train.json`.
    pub fn read(path: &Path) -> Result<RunReport> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Final loss on `split` (nats/token), if reported.
    pub fn final_loss(&self, split: &str) -> Option<f64> {
        self.final_losses
            .iter()
            .find(|(s, _)| s == split)
            .map(|(_, v)| *v)
    }

    /// Whether this export was trained with `size` at `budget_tokens` the way `recipe` trains
    /// ([`FamilyRecipe::same_training`]); an export of an older recipe is stale (retrained by
    /// `train`, named by the report).
    pub fn trained_as(&self, recipe: &FamilyRecipe, size: &SizeSpec, budget_tokens: u64) -> bool {
        self.spec == *size
            && self.budget_tokens == budget_tokens
            && self.recipe.same_training(recipe)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    step: u64,
    elapsed_secs: f64,
    /// The size spec being trained (absent in checkpoints written before it was recorded).
    #[serde(default)]
    spec: Option<SizeSpec>,
    /// The token budget being trained.
    #[serde(default)]
    budget_tokens: Option<u64>,
    /// The recipe being trained (absent in older checkpoints).
    #[serde(default)]
    recipe: Option<FamilyRecipe>,
}

/// One (size, budget) run.
pub struct Run<'a> {
    /// Family recipe.
    pub recipe: &'a FamilyRecipe,
    /// Size.
    pub size: &'a SizeSpec,
    /// Token budget.
    pub budget_tokens: u64,
    /// Working folder (resumable state).
    pub work_dir: PathBuf,
    /// Export folder.
    pub out_dir: PathBuf,
    /// Folder with tokenizer.json (copied into the export).
    pub tokenizer_dir: PathBuf,
}

fn append(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    writeln!(f, "{line}").map_err(|e| Error::io("append to", path, e))
}

/// Keeps the rows of a CSV log whose first column (step) is at most `step`.
fn truncate_log(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let keep: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, l)| {
            *i == 0
                || l.split(',')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|s| s <= step)
        })
        .map(|(_, l)| l)
        .collect();
    crate::io::write_atomic(path, (keep.join("\n") + "\n").as_bytes())
}

fn named_tensors(vars: &Vars) -> Vec<(String, Tensor)> {
    vars.iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect()
}

impl Run<'_> {
    /// Run name.
    pub fn name(&self) -> String {
        self.recipe.run_name(self.size, self.budget_tokens)
    }

    /// Whether the export exists and was trained with this recipe, size spec and budget (an
    /// export of an older recipe is retrained).
    pub fn is_done(&self) -> bool {
        RunReport::read(&self.out_dir.join("train.json"))
            .is_ok_and(|r| r.trained_as(self.recipe, self.size, self.budget_tokens))
    }

    fn save_checkpoint(
        &self,
        vars: &Vars,
        opt: &AdamW,
        state: &State,
        config: &serde_json::Value,
    ) -> Result<()> {
        let tmp = self.work_dir.join("ckpt.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("model")).map_err(|e| Error::io("create", &tmp, e))?;
        let cfg = serde_json::to_string_pretty(config).map_err(|e| Error::Input(e.to_string()))?;
        std::fs::write(tmp.join("model/config.json"), cfg)
            .map_err(|e| Error::io("write", &tmp, e))?;
        trainable::save(
            &tmp.join("model/model.safetensors"),
            &named_tensors(vars),
            DType::F32,
            None,
        )?;
        let moments: Vec<(String, Tensor)> = vars
            .iter()
            .enumerate()
            .flat_map(|(i, (n, _))| {
                [
                    (format!("m.{n}"), opt.m[i].clone()),
                    (format!("v.{n}"), opt.v[i].clone()),
                ]
            })
            .collect();
        trainable::save(
            &tmp.join("optimizer.safetensors"),
            &moments,
            DType::F32,
            None,
        )?;
        let js = serde_json::to_string(state).map_err(|e| Error::Input(e.to_string()))?;
        std::fs::write(tmp.join("state.json"), js).map_err(|e| Error::io("write", &tmp, e))?;
        let (cur, old) = (self.work_dir.join("ckpt"), self.work_dir.join("ckpt.old"));
        let _ = std::fs::remove_dir_all(&old);
        if cur.exists() {
            std::fs::rename(&cur, &old).map_err(|e| Error::io("rename", &cur, e))?;
        }
        std::fs::rename(&tmp, &cur).map_err(|e| Error::io("rename", &tmp, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    fn resume(&self, vars_opt: &mut Option<(Transformer, Vars, AdamW, State)>) -> Result<()> {
        let dir = [self.work_dir.join("ckpt"), self.work_dir.join("ckpt.old")]
            .into_iter()
            .find(|d| d.join("state.json").is_file());
        let Some(dir) = dir else { return Ok(()) };
        let sp = dir.join("state.json");
        let mut state: State = serde_json::from_str(
            &std::fs::read_to_string(&sp).map_err(|e| Error::io("read", &sp, e))?,
        )
        .map_err(|source| Error::Json {
            path: sp.clone(),
            source,
        })?;
        let (model, vars) = trainable::load_trainable(&dir.join("model"))?;
        // A checkpoint of another size spec (the recipe changed) must not be continued.
        let c = &model.config;
        let shape = (c.hidden_size, c.n_layers, c.n_heads);
        let want = (self.size.d_model, self.size.n_layers, self.size.n_heads);
        let recorded = state.spec.as_ref().is_some_and(|s| s != self.size)
            || state.budget_tokens.is_some_and(|b| b != self.budget_tokens)
            || state
                .recipe
                .as_ref()
                .is_some_and(|r| !r.same_training(self.recipe));
        if shape != want || recorded {
            return Err(Error::checkpoint(
                &dir,
                format!(
                    "this checkpoint trains another size spec, budget or recipe than {} \
                     (d {}, {} layers, {} heads, lr {}); delete {} to start this run afresh",
                    self.name(),
                    self.size.d_model,
                    self.size.n_layers,
                    self.size.n_heads,
                    self.size.lr,
                    self.work_dir.display()
                ),
            ));
        }
        let moments = Checkpoint::open(&dir.join("optimizer.safetensors"))?;
        let mut opt = AdamW::new(
            &vars.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            self.recipe.adamw.clone(),
        )?;
        for (i, (n, v)) in vars.iter().enumerate() {
            let read = |k: String| -> Result<Tensor> {
                Ok(Tensor::from_vec(
                    moments.read_f32(&k)?,
                    v.dims(),
                    v.device(),
                )?)
            };
            opt.m[i] = read(format!("m.{n}"))?;
            opt.v[i] = read(format!("v.{n}"))?;
        }
        opt.t = state.step;
        state.spec = Some(self.size.clone());
        state.budget_tokens = Some(self.budget_tokens);
        *vars_opt = Some((model, vars, opt, state));
        Ok(())
    }

    /// Trains (resuming from the last checkpoint) and exports. `progress` returning false stops
    /// after saving a checkpoint, with [`Error::Cancelled`].
    pub fn train(
        &self,
        data: &Data,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<RunReport> {
        let r = self.recipe;
        let config_json = self.size.config_json(r.arch, data.vocab_size, r.context);
        std::fs::create_dir_all(&self.work_dir)
            .map_err(|e| Error::io("create", &self.work_dir, e))?;
        let mut resumed = None;
        self.resume(&mut resumed)?;
        let (mut model, vars, mut opt, mut state) = match resumed {
            Some(x) => x,
            None => {
                let path = self.work_dir.join("config.json");
                let config = ArchConfig::from_json(&config_json, &path)?;
                let (model, vars) = trainable::init(config, r.seed, r.init_std)?;
                let opt = AdamW::new(
                    &vars.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
                    r.adamw.clone(),
                )?;
                (
                    model,
                    vars,
                    opt,
                    State {
                        step: 0,
                        elapsed_secs: 0.0,
                        spec: Some(self.size.clone()),
                        budget_tokens: Some(self.budget_tokens),
                        recipe: Some(self.recipe.clone()),
                    },
                )
            }
        };
        let (loss_csv, eval_csv) = (
            self.work_dir.join("loss.csv"),
            self.work_dir.join("eval.csv"),
        );
        if state.step == 0 {
            let _ = std::fs::remove_file(&loss_csv);
            let _ = std::fs::remove_file(&eval_csv);
            append(&loss_csv, "step,tokens,lr,loss,grad_norm")?;
            let names: Vec<&str> = data.probes.iter().map(|(n, _)| n.as_str()).collect();
            append(&eval_csv, &format!("step,tokens,{}", names.join(",")))?;
        } else {
            truncate_log(&loss_csv, state.step)?;
            truncate_log(&eval_csv, state.step)?;
        }
        let var_list: Vec<Var> = vars.iter().map(|(_, v)| v.clone()).collect();
        let total = r.steps_for(self.budget_tokens);
        let warmup = ((total as f64 * r.warmup_fraction).round() as u64).max(1);
        let tokens_per_step = (r.batch_windows * (r.context - 1)) as u64;
        let mut perm = (u64::MAX, Vec::new());
        let started = Instant::now();
        let elapsed_before = state.elapsed_secs;
        let start_step = state.step;
        while state.step < total {
            let lr = lr_at(state.step, total, warmup, self.size.lr, r.min_lr_ratio);
            let ids = data.batch(state.step, r.batch_windows, r.seed, &mut perm);
            let loss_t = batch_loss(&model, &ids, r.batch_windows)?;
            let loss = f64::from(loss_t.to_scalar::<f32>()?);
            let grads = loss_t.backward()?;
            let grad_norm = global_grad_norm(&var_list, &grads)?;
            let scale = if grad_norm > r.clip_norm {
                r.clip_norm / grad_norm
            } else {
                1.0
            };
            opt.step(&var_list, &grads, lr, scale)?;
            state.step += 1;
            state.elapsed_secs = elapsed_before + started.elapsed().as_secs_f64();
            let tokens = state.step * tokens_per_step;
            append(
                &loss_csv,
                &format!("{},{tokens},{lr:.6e},{loss:.5},{grad_norm:.4}", state.step),
            )?;
            let mut probes = None;
            if state.step % r.eval_every_steps.max(1) == 0 || state.step == total {
                let mut vals = Vec::new();
                for (name, w) in &data.probes {
                    vals.push((name.clone(), probe_loss(&mut model, w)?));
                }
                let row: Vec<String> = vals.iter().map(|(_, v)| format!("{v:.5}")).collect();
                append(
                    &eval_csv,
                    &format!("{},{tokens},{}", state.step, row.join(",")),
                )?;
                probes = Some(vals);
            }
            let done_here = (state.step - start_step) as f64 * tokens_per_step as f64;
            let p = Progress {
                step: state.step,
                total_steps: total,
                loss,
                lr,
                grad_norm,
                tokens_per_sec: done_here / started.elapsed().as_secs_f64().max(1e-9),
                probes,
            };
            let keep_going = progress(&p);
            if state.step % r.checkpoint_every_steps.max(1) == 0
                || state.step == total
                || !keep_going
            {
                self.save_checkpoint(&vars, &opt, &state, &config_json)?;
            }
            if !keep_going {
                return Err(Error::Cancelled);
            }
        }
        self.export(&mut model, &vars, data, &state, &config_json)
    }

    fn export(
        &self,
        model: &mut Transformer,
        vars: &Vars,
        data: &Data,
        state: &State,
        config: &serde_json::Value,
    ) -> Result<RunReport> {
        // Round to bf16 in place so the reported losses are those of the released weights.
        for (_, v) in vars {
            v.set(
                &v.as_tensor()
                    .to_dtype(candle_core::DType::BF16)?
                    .to_dtype(candle_core::DType::F32)?,
            )?;
        }
        let mut final_losses = Vec::new();
        for (name, w) in &data.probes {
            final_losses.push((name.clone(), probe_loss(model, w)?));
        }
        let report = RunReport {
            run: self.name(),
            family: self.recipe.name.clone(),
            size: self.size.name.clone(),
            n_params_non_embedding: model.n_params_non_embedding,
            n_params_total: model.n_params_total,
            budget_tokens: self.budget_tokens,
            steps: state.step,
            final_losses,
            elapsed_secs: state.elapsed_secs,
            spec: self.size.clone(),
            recipe: self.recipe.clone(),
        };
        if self.out_dir.exists() {
            std::fs::remove_dir_all(&self.out_dir)
                .map_err(|e| Error::io("replace", &self.out_dir, e))?;
        }
        if let Some(parent) = self.out_dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        let out = OutDir::create(&self.out_dir)?;
        let cfg = serde_json::to_string_pretty(config).map_err(|e| Error::Input(e.to_string()))?;
        std::fs::write(out.join("config.json"), cfg + "\n")
            .map_err(|e| Error::io("write", out.join("config.json"), e))?;
        let meta = [("format".to_string(), "pt".to_string())]
            .into_iter()
            .collect();
        trainable::save(
            &out.join("model.safetensors"),
            &named_tensors(vars),
            DType::BF16,
            Some(meta),
        )?;
        for f in ["loss.csv", "eval.csv"] {
            std::fs::copy(self.work_dir.join(f), out.join(f))
                .map_err(|e| Error::io("copy", self.work_dir.join(f), e))?;
        }
        let tok = self.tokenizer_dir.join("tokenizer.json");
        std::fs::copy(&tok, out.join("tokenizer.json")).map_err(|e| Error::io("copy", &tok, e))?;
        let rep = serde_json::to_string_pretty(&report).map_err(|e| Error::Input(e.to_string()))?;
        std::fs::write(out.join("train.json"), rep + "\n")
            .map_err(|e| Error::io("write", out.join("train.json"), e))?;
        out.commit()?;
        Ok(report)
    }
}
