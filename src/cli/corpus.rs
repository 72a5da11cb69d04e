//! `quantscape corpus`: build the bundled corpus from its Debian sources, verify its checksums,
//! and train the byte-level BPE tokenizer on its train split.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use quantscape::eval::corpus::{self, Split};
use quantscape::model::tokenizer::{train_bpe, Tokenizer};

/// Arguments of `corpus`.
#[derive(clap::Args, Debug)]
pub struct CorpusArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: CorpusAction,
}

/// `corpus` actions.
#[derive(clap::Subcommand, Debug)]
pub enum CorpusAction {
    /// Extract, normalise and split the texts (see scripts/extract_corpus.sh for the sources).
    Build {
        /// janeaustenr's `data/Rdata.rdb` (Debian r-cran-janeaustenr, extracted with dpkg-deb -x).
        #[arg(long)]
        austen_rdb: PathBuf,
        /// Output of `bible -f gen1:1-rev22:21` (Debian bible-kjv).
        #[arg(long)]
        kjv_dump: PathBuf,
        /// Output folder.
        #[arg(long, default_value_os_t = corpus::bundled_dir())]
        out: PathBuf,
    },
    /// Decompress every split and check it against the manifest's SHA-256.
    Verify {
        /// Corpus folder.
        #[arg(long, default_value_os_t = corpus::bundled_dir())]
        dir: PathBuf,
    },
    /// Train a byte-level BPE tokenizer on the train split and write tokenizer.json.
    Tokenizer {
        /// Corpus folder.
        #[arg(long, default_value_os_t = corpus::bundled_dir())]
        dir: PathBuf,
        /// Vocabulary size (256 bytes + BOS + merges).
        #[arg(long, default_value_t = 2048)]
        vocab_size: usize,
        /// Output folder (tokenizer.json is written into it).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `corpus`.
pub fn run(a: &CorpusArgs) -> anyhow::Result<ExitCode> {
    match &a.action {
        CorpusAction::Build {
            austen_rdb,
            kjv_dump,
            out,
        } => {
            let m = corpus::build(austen_rdb, kjv_dump, out)
                .with_context(|| format!("building the corpus into {}", out.display()))?;
            print_manifest(&m)?;
        }
        CorpusAction::Verify { dir } => {
            let m = corpus::manifest(dir)?;
            for split in Split::ALL {
                corpus::load(dir, split).with_context(|| format!("split `{}`", split.name()))?;
            }
            print_manifest(&m)?;
            outln!("all {} splits match their SHA-256", m.splits.len());
        }
        CorpusAction::Tokenizer {
            dir,
            vocab_size,
            out,
        } => {
            let train = corpus::load(dir, Split::Train)?;
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let file = out.join("tokenizer.json");
            train_bpe(&[train.as_str()], *vocab_size, &file)?;
            let tok = Tokenizer::load(out)?;
            outln!("wrote {} (vocabulary {})", file.display(), tok.vocab_size());
            for split in Split::ALL {
                let text = corpus::load(dir, split)?;
                let n_tokens = tok.encode(&text)?.len();
                outln!(
                    "{:<12} {:>9} tokens  {:.3} bytes/token",
                    split.name(),
                    n_tokens,
                    text.len() as f64 / n_tokens.max(1) as f64
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_manifest(m: &corpus::Manifest) -> anyhow::Result<()> {
    outln!(
        "{:<12} {:>10} {:>9}  {:<16}  contents",
        "split",
        "bytes",
        "words",
        "sha256"
    );
    for (name, s) in &m.splits {
        outln!(
            "{:<12} {:>10} {:>9}  {:<16}  {}",
            name,
            s.bytes,
            s.words,
            &s.sha256[..16],
            s.contents.join("; ")
        );
    }
    Ok(())
}
