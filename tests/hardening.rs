//! Hostile input, one regression test per problem of the hardening campaign (issue 23): every
//! case exits 2 with one line naming the file or setting, never panics or aborts, runs in
//! bounded time and memory, and leaves nothing behind. See RELIABILITY.md.

use std::path::{Path, PathBuf};
use std::process::Output;

use quantscape::search::{Store, SweepSpec};

use crate::util::{data_dir, qs, relabel_dtype, tiny_checkpoint};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Exit 2, no panic, and `needle` in the message.
fn refused(o: &Output, needle: &str, what: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{what}: {e}");
    assert!(!e.contains("panicked"), "{what}: {e}");
    assert!(e.contains(needle), "{what}: expected `{needle}` in: {e}");
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// A copy of the tiny Llama with `edit` applied to its config.json.
fn tiny_llama_with(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let src = data_dir().join("tiny/llama");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["model.safetensors", "tokenizer.json", "config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    edit(&mut c);
    std::fs::write(dir.join("config.json"), c.to_string()).unwrap();
    dir.to_path_buf()
}

mod forge;
use forge::{tiny_gguf, Meta};

#[test]
fn forged_gguf_headers_are_errors_and_a_valid_one_converts() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = tmp.path().join("ok.gguf");
    tiny_gguf(&ok, Vec::new());
    let o = qs(&["convert", "ok.gguf", "--out", "ok"], tmp.path());
    assert!(
        o.status.success(),
        "the forger's baseline converts: {}",
        stderr(&o)
    );
    let o = qs(&["info", "--model", "ok"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // 1. general.alignment 0: candle divides by it.
    // 5. sizes the tensors do not have: convert must not exit 0.
    type Forgery = (&'static str, Vec<(&'static str, Meta)>, &'static str);
    let cases: Vec<Forgery> = vec![
        (
            "align0",
            vec![("general.alignment", Meta::U32(0))],
            "general.alignment 0",
        ),
        (
            // candle drops a key's trailing NULs: this is its alignment key too (fuzz finding).
            "align0nul",
            vec![("general.alignment\0\0\0", Meta::U32(0))],
            "general.alignment 0",
        ),
        (
            "align3",
            vec![("general.alignment", Meta::U32(3))],
            "general.alignment 3",
        ),
        (
            "ctx31",
            vec![("llama.context_length", Meta::U32(1 << 31))],
            "max_position_embeddings",
        ),
        (
            "blocks",
            vec![("llama.block_count", Meta::U32(u32::MAX))],
            "num_hidden_layers",
        ),
    ];
    for (name, changes, needle) in cases {
        let file = format!("{name}.gguf");
        tiny_gguf(&tmp.path().join(&file), changes);
        let before = listing(tmp.path());
        let o = qs(&["convert", &file, "--out", name], tmp.path());
        refused(&o, needle, name);
        assert!(stderr(&o).contains(&file), "{name}: {}", stderr(&o));
        assert_eq!(
            listing(tmp.path()),
            before,
            "{name}: convert left something"
        );
        for cmd in ["info", "eval"] {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_quantscape"))
                .args([cmd, "--model", &file])
                .args(if cmd == "eval" {
                    vec!["--data", "eval_austen"]
                } else {
                    vec![]
                })
                .current_dir(tmp.path())
                .env("HF_HUB_CACHE", tmp.path().join("hub"))
                .env("QS_CACHE", tmp.path().join("cache"))
                .output()
                .unwrap();
            refused(&o, needle, &format!("{cmd} {name}"));
        }
    }
    // Truncated at every 97th byte: an error, never a panic.
    let bytes = std::fs::read(&ok).unwrap();
    for cut in (0..bytes.len()).step_by(97) {
        let p = tmp.path().join("cut.gguf");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = quantscape::model::gguf::convert(&p, &tmp.path().join("cut"));
        assert!(e.is_err(), "cut at {cut}");
        assert!(!tmp.path().join("cut").exists());
    }
}

#[test]
fn a_tokenizer_cut_inside_its_decoder_is_an_error() {
    // 2. tokenizers `expect`s inside its decoder deserializer.
    let tmp = tempfile::tempdir().unwrap();
    let m = tiny_llama_with(&tmp.path().join("m"), |_| {});
    let text = std::fs::read_to_string(m.join("tokenizer.json")).unwrap();
    let at = text.find("\"decoder\"").unwrap();
    for mut cut in [at + 12, at + 30, at + 60] {
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        std::fs::write(m.join("tokenizer.json"), &text[..cut]).unwrap();
        let e = quantscape::model::Tokenizer::load(&m)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("tokenizer.json") && e.contains("not JSON"),
            "{e}"
        );
        let o = qs(
            &[
                "eval",
                "--model",
                "m",
                "--data",
                "eval_austen",
                "--windows",
                "2",
                "--ctx",
                "16",
            ],
            tmp.path(),
        );
        refused(&o, "tokenizer.json", "eval");
    }
    // 12. An empty vocabulary is named as such, not as empty text.
    let mut t: serde_json::Value = serde_json::from_str(&text).unwrap();
    t["model"]["vocab"] = serde_json::json!({});
    t["model"]["merges"] = serde_json::json!([]);
    t["model"]["unk_token"] = serde_json::Value::Null;
    t["model"]["byte_fallback"] = false.into();
    t["added_tokens"] = serde_json::json!([]);
    t["post_processor"] = serde_json::Value::Null;
    std::fs::write(m.join("tokenizer.json"), t.to_string()).unwrap();
    let e = quantscape::model::Tokenizer::load(&m)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("empty vocabulary"), "{e}");
}

#[test]
fn absurd_config_sizes_are_refused_before_allocation() {
    // 3, 4: capacity overflow, allocation aborts and unbounded RoPE tables.
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "max_position_embeddings",
            serde_json::json!(9_223_372_036_854_775_807u64),
            "max_position_embeddings",
        ),
        (
            "max_position_embeddings",
            serde_json::json!(1u64 << 31),
            "max_position_embeddings",
        ),
        (
            "max_position_embeddings",
            serde_json::json!(1u64 << 40),
            "max_position_embeddings",
        ),
        (
            "max_position_embeddings",
            serde_json::json!(1u64 << 62),
            "max_position_embeddings",
        ),
        (
            "num_hidden_layers",
            serde_json::json!(1u64 << 31),
            "num_hidden_layers",
        ),
        (
            "num_hidden_layers",
            serde_json::json!(1u64 << 53),
            "num_hidden_layers",
        ),
        ("vocab_size", serde_json::json!(1u64 << 40), "vocab_size"),
        (
            "intermediate_size",
            serde_json::json!(0),
            "intermediate_size",
        ),
        ("rms_norm_eps", serde_json::json!(-1.0), "epsilon"),
        ("rms_norm_eps", serde_json::json!(0.0), "epsilon"),
        (
            "num_key_value_heads",
            serde_json::json!(3),
            "key/value heads",
        ),
    ];
    for (i, (key, value, needle)) in cases.into_iter().enumerate() {
        let name = format!("m{i}");
        tiny_llama_with(&tmp.path().join(&name), |c| c[key] = value.clone());
        for cmd in [
            vec!["info", "--model", &name],
            vec![
                "eval",
                "--model",
                &name,
                "--data",
                "eval_austen",
                "--windows",
                "2",
                "--ctx",
                "16",
            ],
        ] {
            let o = qs(&cmd, tmp.path());
            refused(&o, needle, &format!("{cmd:?} {key}={value}"));
            assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
        }
    }
    // 12. rope_theta 0 gave "NLL NaN" with exit 0.
    tiny_llama_with(&tmp.path().join("theta"), |c| {
        c["rope_parameters"]["rope_theta"] = 0.0.into()
    });
    let o = qs(
        &[
            "eval",
            "--model",
            "theta",
            "--data",
            "eval_austen",
            "--windows",
            "2",
            "--ctx",
            "16",
        ],
        tmp.path(),
    );
    refused(&o, "rope_theta", "rope_theta 0");
    // GPT-2 spellings are bounded too.
    let gpt2 = data_dir().join("tiny/gpt2");
    let dir = tmp.path().join("g");
    std::fs::create_dir(&dir).unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(gpt2.join(f), dir.join(f)).unwrap();
    }
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gpt2.join("config.json")).unwrap()).unwrap();
    c["n_layer"] = serde_json::json!(1u64 << 31);
    std::fs::write(dir.join("config.json"), c.to_string()).unwrap();
    refused(
        &qs(&["info", "--model", "g"], tmp.path()),
        "n_layer",
        "gpt2 n_layer",
    );
}

/// A valid spec over the tiny Llama, with `eval` and extra fields spliced in.
fn spec_text(model: &Path, data: &str, extra: &str, eval_extra: &str) -> String {
    format!(
        r#"SweepSpec(
    name: "hostile",
    models: ["{}"],
    granularities: [layer],
    low_formats: ["mxint4"],
    high_formats: ["mxint8"],
    block_sizes: ["32"],
    qr: [0.0, 1.0],
    trials: 2,
    {extra}
    eval: (data: "{data}", windows: 2, ctx: 16, resamples: 10, top_k: 4, {eval_extra}),
)"#,
        model.display()
    )
}

#[test]
fn bad_sweep_specs_leave_no_store_and_name_the_spec() {
    // 6, 7, 12.
    let tmp = tempfile::tempdir().unwrap();
    let llama = data_dir().join("tiny/llama");
    let sample = data_dir().join("tiny/sample.txt");
    let sample = sample.display().to_string();
    std::fs::write(tmp.path().join("empty.txt"), "").unwrap();
    std::fs::write(tmp.path().join("binary.txt"), [0xffu8, 0xfe, 0x00, 0x80]).unwrap();
    let broken = tiny_llama_with(&tmp.path().join("broken"), |_| {});
    std::fs::write(broken.join("model.safetensors"), b"not safetensors").unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            spec_text(&llama, &sample, "", "").replace("resamples: 10", "resamples: 4294967296"),
            "eval.resamples",
        ),
        (
            spec_text(&llama, &sample, "", "").replace("top_k: 4", "top_k: 4294967296"),
            "eval.top_k",
        ),
        (
            spec_text(&llama, &sample, "", "").replace("windows: 2", "windows: 100000000"),
            "eval.windows",
        ),
        (
            spec_text(&llama, &sample, "", "").replace("trials: 2,", "trials: 1000000,"),
            "trials",
        ),
        (
            spec_text(&llama, &sample, "", "").replace("[0.0, 1.0]", "[0.5, 0.5]"),
            "listed twice",
        ),
        (spec_text(&llama, "missing.txt", "", ""), "missing.txt"),
        (spec_text(&llama, "empty.txt", "", ""), "empty"),
        (spec_text(&llama, "binary.txt", "", ""), "binary.txt"),
        (spec_text(&broken, &sample, "", ""), "model.safetensors"),
    ];
    for (i, (text, needle)) in cases.into_iter().enumerate() {
        std::fs::write(tmp.path().join("spec.ron"), &text).unwrap();
        let before = listing(tmp.path());
        let o = qs(
            &["sweep", "spec.ron", "--out", "out.sqlite", "--quiet"],
            tmp.path(),
        );
        refused(&o, needle, &format!("case {i}"));
        refused(&o, "spec.ron", &format!("case {i} names the spec"));
        assert_eq!(listing(tmp.path()), before, "case {i} left files behind");
    }
    // The same caps through `eval`.
    for (flag, needle) in [("--top-k", "--top-k"), ("--resamples", "--resamples")] {
        let o = qs(
            &[
                "eval",
                "--model",
                &llama.display().to_string(),
                "--data",
                &sample,
                flag,
                "4294967296",
            ],
            tmp.path(),
        );
        refused(&o, needle, flag);
        assert!(stderr(&o).contains("--allow-large"), "{}", stderr(&o));
    }
}

#[test]
fn a_corrupt_merge_input_leaves_no_output() {
    // 8.
    let tmp = tempfile::tempdir().unwrap();
    let spec = SweepSpec::from_ron(
        &spec_text(&data_dir().join("tiny/llama"), "eval_austen", "", ""),
        "test",
    )
    .unwrap();
    let good = tmp.path().join("good.sqlite");
    let s = Store::open(&good, &spec, &Default::default()).unwrap();
    drop(s);
    std::fs::write(tmp.path().join("bad.sqlite"), vec![7u8; 4096]).unwrap();
    // A real SQLite file with its pages damaged.
    let damaged = tmp.path().join("damaged.sqlite");
    std::fs::copy(&good, &damaged).unwrap();
    let mut b = std::fs::read(&damaged).unwrap();
    let n = b.len();
    for x in &mut b[n / 2..] {
        *x ^= 0x5a;
    }
    std::fs::write(&damaged, b).unwrap();
    for bad in ["bad.sqlite", "damaged.sqlite"] {
        let o = qs(
            &["merge", "good.sqlite", bad, "--out", "merged.sqlite"],
            tmp.path(),
        );
        refused(&o, bad, bad);
        let left: Vec<String> = listing(tmp.path())
            .into_iter()
            .filter(|f| f.starts_with("merged"))
            .collect();
        assert!(left.is_empty(), "{bad}: {left:?}");
    }
}

#[test]
fn quantize_refuses_folders_info_would_refuse_and_leaves_nothing() {
    // 9, 10, 11.
    let tmp = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let p = tmp.path().join(name);
        tiny_checkpoint(&p, "BF16");
        p
    };
    let q = |model: &str, extra: &[&str]| {
        let mut a = vec![
            "quantize", "--model", model, "--format", "mxfp4", "--out", "out", "--quiet",
        ];
        a.extend_from_slice(extra);
        qs(&a, tmp.path())
    };
    let good = make("good");
    assert!(q("good", &[]).status.success());
    std::fs::remove_dir_all(tmp.path().join("out")).unwrap();
    drop(good);
    // 9: --csv at the output path.
    let before = listing(tmp.path());
    refused(&q("good", &["--csv", "out"]), "--csv", "csv = out");
    assert_eq!(listing(tmp.path()), before);
    // 10: config.json missing, a folder, not JSON.
    let missing = make("missing");
    std::fs::remove_file(missing.join("config.json")).unwrap();
    let folder = make("folder");
    std::fs::remove_file(folder.join("config.json")).unwrap();
    std::fs::create_dir(folder.join("config.json")).unwrap();
    let notjson = make("notjson");
    std::fs::write(notjson.join("config.json"), "{ nope").unwrap();
    // 11: a norm relabelled I16 (same size as BF16).
    let i16 = make("i16");
    relabel_dtype(
        &i16.join("model.safetensors"),
        "model.layers.0.input_layernorm.weight",
        "I16",
    );
    let before = listing(tmp.path());
    for (model, needle) in [
        ("missing", "config.json"),
        ("folder", "config.json"),
        ("notjson", "config.json"),
        ("i16", "I16"),
    ] {
        refused(&q(model, &["--csv", "t.csv"]), needle, model);
        refused(&qs(&["info", "--model", model], tmp.path()), needle, model);
        assert_eq!(listing(tmp.path()), before, "{model} left something");
    }
}

#[test]
fn unbounded_work_sizes_are_refused_at_once() {
    // 12: fit --bootstrap 1e8, landscape --grid 100000 (both ran until killed).
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("d.csv"),
        "n,qr,qb,delta_loss\n1e6,0.5,32,0.01\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    refused(
        &qs(
            &[
                "fit",
                "d.csv",
                "--law",
                "unified-strong",
                "--bootstrap",
                "100000000",
            ],
            tmp.path(),
        ),
        "--bootstrap",
        "fit",
    );
    let llama = data_dir().join("tiny/llama").display().to_string();
    let sample = data_dir().join("tiny/sample.txt").display().to_string();
    refused(
        &qs(
            &[
                "landscape",
                "--model",
                &llama,
                "--data",
                &sample,
                "--grid",
                "100000",
                "--out",
                "s.json",
            ],
            tmp.path(),
        ),
        "--grid",
        "landscape",
    );
    assert!(!tmp.path().join("s.json").exists());
    assert!(
        started.elapsed().as_secs() < 60,
        "refusals must be immediate"
    );
    // --allow-large lifts a cap (the tiny model then runs a few-point slice as asked).
    let o = qs(
        &[
            "--allow-large",
            "eval",
            "--model",
            &llama,
            "--data",
            &sample,
            "--windows",
            "2",
            "--ctx",
            "16",
            "--top-k",
            "5000",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Bounded-size rules as properties.
mod bounds;
