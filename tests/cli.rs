//! The `quantscape` binary end to end: quantize a real safetensors checkpoint, list formats,
//! and fail cleanly (exit 2, one line, nothing left behind) on bad input.

use std::path::Path;
use std::process::Output;

use quantscape::codecs::{fake_quant, Format, Method};
use quantscape::model::checkpoint::Checkpoint;

use crate::util::{qs, tiny_checkpoint};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn quantize_writes_a_checkpoint_table_and_csv() {
    for dt in ["BF16", "F32"] {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model");
        tiny_checkpoint(&model, dt);
        let before = std::fs::read(model.join("model.safetensors")).unwrap();
        let o = qs(
            &[
                "quantize", "--model", "model", "--format", "mxfp4", "--block", "32", "--out", "q",
                "--csv", "t.csv", "--quiet",
            ],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("model.layers.1.mlp.down_proj.weight") && out.contains("sqnr_db"),
            "{out}"
        );
        // q_proj has 48 columns: one full block of 32 and one of 16, so 4 + 2·8/48 bits.
        assert!(out.contains("4.3333"), "bits/weight column: {out}");
        // Input untouched; config and tokenizer copied; every tensor present in the input dtype.
        assert_eq!(
            std::fs::read(model.join("model.safetensors")).unwrap(),
            before
        );
        let q = tmp.path().join("q");
        assert!(q.join("config.json").is_file() && q.join("tokenizer.json").is_file());
        let a = Checkpoint::open(&model).unwrap();
        let b = Checkpoint::open(&q).unwrap();
        assert_eq!(
            a.tensors.keys().collect::<Vec<_>>(),
            b.tensors.keys().collect::<Vec<_>>()
        );
        for (name, e) in &a.tensors {
            assert_eq!(e.dtype, b.tensors[name].dtype);
            let (x, y) = (a.read_f32(name).unwrap(), b.read_f32(name).unwrap());
            if name.contains("layers") && e.shape.len() == 2 {
                // The output is the library's fake-quant, rounded to the input dtype.
                let f = Format::preset("mxfp4").unwrap();
                let want = fake_quant(&x, e.shape[0], e.shape[1], &f, &Method::Rtn).unwrap();
                let want = quantscape::model::checkpoint::bytes_to_f32(
                    &quantscape::model::checkpoint::f32_to_bytes(&want, e.dtype).unwrap(),
                    e.dtype,
                )
                .unwrap();
                assert_eq!(y, want, "{name}");
                assert_ne!(x, y, "{name} was quantized");
            } else {
                assert_eq!(x, y, "{name} must stay in high precision");
            }
        }
        let csv = std::fs::read_to_string(tmp.path().join("t.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 14, "{csv}");
        assert!(csv.starts_with("tensor,rows,cols,n_values,mse,sqnr_db"));
    }
}

#[test]
fn quantize_with_hqq_and_rounding_and_per_channel() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_checkpoint(&tmp.path().join("m"), "F16");
    let o = qs(
        &[
            "quantize",
            "--model",
            "m",
            "--format",
            "int4_asym",
            "--block",
            "per-channel",
            "--method",
            "hqq",
            "--rounding",
            "away",
            "--out",
            "q",
            "--quiet",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("method hqq"));
}

#[test]
fn bad_input_is_one_line_exit_2_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_checkpoint(&tmp.path().join("m"), "F32");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--format", "mxfp5"], "unknown preset"),
        (vec!["--format", "mxfp4", "--block", "0"], "block size"),
        (
            vec!["--format", "mxfp4", "--method", "magic"],
            "unknown method",
        ),
        (vec!["--format", "mxfp4", "--rounding", "up"], "rounding"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["quantize", "--model", "m", "--out", "q"];
        args.extend(extra);
        let o = qs(&args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains(needle) && e.trim().lines().count() == 1,
            "{args:?}: {e}"
        );
        assert!(!tmp.path().join("q").exists());
    }
    // Output that exists.
    std::fs::create_dir(tmp.path().join("exists")).unwrap();
    let o = qs(
        &[
            "quantize", "--model", "m", "--format", "mxfp4", "--out", "exists",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already exists"));
    // A truncated safetensors header: error names the file, no output, no temp folder.
    std::fs::create_dir(tmp.path().join("bad")).unwrap();
    std::fs::write(
        tmp.path().join("bad/model.safetensors"),
        [200u8, 0, 0, 0, 0, 0, 0, 0, b'{'],
    )
    .unwrap();
    let o = qs(
        &[
            "quantize", "--model", "bad", "--format", "mxfp4", "--out", "q2",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad/model.safetensors"),
        "{}",
        stderr(&o)
    );
    // A quantizable tensor that is not float.
    tiny_checkpoint(&tmp.path().join("int"), "F32");
    crate::util::relabel_dtype(
        &tmp.path().join("int/model.safetensors"),
        "model.layers.0.self_attn.q_proj.weight",
        "I32",
    );
    let o = qs(
        &[
            "quantize", "--model", "int", "--format", "mxfp4", "--out", "q3",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("I32"), "{}", stderr(&o));
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.') || n.starts_with('q'))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn formats_lists_every_preset() {
    let tmp = tempfile::tempdir().unwrap();
    let o = qs(&["formats", "--block", "64"], tmp.path());
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for name in quantscape::codecs::PRESET_NAMES {
        assert!(out.contains(name), "{name}");
    }
    assert!(
        out.contains("4.1250"),
        "mxfp4 at Qb=64 is 4.125 bits: {out}"
    );
    let o = qs(&["--help"], tmp.path());
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("quantize"));
}

/// Without a subcommand the GUI build opens the explorer; with no display that is a clear error
/// (exit 2, naming the way out), never a panic.
#[cfg(feature = "gui")]
#[test]
fn explorer_without_a_display_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_quantscape"))
        .current_dir(tmp.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot open the explorer window"), "{err}");
    assert!(err.contains("xvfb-run"), "{err}");
}

/// A CSV drawn from the strong unified law (C, A, γ_N, d, γ_c) = (1, 2.5, 0.3, 8, 0.45), with a
/// ΔL ≤ 0 row that a log-space fit must exclude.
fn strong_csv(dir: &Path) {
    use quantscape::laws::{grid_rows, synthesize, Law, Var};
    let law = Law::by_id("unified-strong").unwrap();
    let rows = grid_rows(&[
        (Var::N, &[1e7, 1e8, 1e9, 1e10]),
        (Var::Qr, &[0.2, 0.5, 0.8, 1.0]),
        (Var::Qb, &[16.0, 64.0, 256.0]),
    ]);
    let mut data = synthesize(&law, &[1.0, 2.5, 0.3, 8.0, 0.45], rows, 0.01, 3).unwrap();
    data.target_name = "dL".into();
    data.y[5] = -1e-3;
    std::fs::write(dir.join("d.csv"), data.to_csv()).unwrap();
}

#[test]
fn fit_and_predict_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    strong_csv(tmp.path());
    let o = qs(
        &[
            "fit",
            "d.csv",
            "--law",
            "unified-strong",
            "--bootstrap",
            "100",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("47 points, 1 excluded") && out.contains("excluded row 7"),
        "{out}"
    );
    assert!(
        out.contains("gamma_c") && out.contains("100 bootstrap resamples"),
        "{out}"
    );
    assert!(
        out.contains("1.000e10     12 points"),
        "leave-one-size-out rows: {out}"
    );

    let o = qs(
        &[
            "fit",
            "d.csv",
            "--law",
            "unified-strong",
            "--json",
            "--bootstrap",
            "0",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(tmp.path().join("fit.json"), &o.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let gamma_n = v["params"][2]["value"].as_f64().unwrap();
    assert!((gamma_n - 0.3).abs() < 0.01, "{gamma_n}");

    let o = qs(
        &[
            "predict", "--fit", "fit.json", "--N", "1e8,1e9", "--Qr", "0.5", "--Qb", "32", "--json",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = |n: f64| (2.5f64 * 0.5).exp() * n.powf(-0.3) * 40f64.powf(0.45);
    for (i, n) in [1e8, 1e9].into_iter().enumerate() {
        let got = rows[i]["dL"].as_f64().unwrap();
        assert!(
            (got / want(n) - 1.0).abs() < 0.03,
            "N {n:e}: {got} vs {}",
            want(n)
        );
    }
    // A typed formula fits too.
    let o = qs(
        &[
            "fit",
            "d.csv",
            "--formula",
            "k*exp(a*Qr)*N^(-g)*(Qb+8)^c",
            "--param",
            "k=1e-6:1e6:1",
            "--bootstrap",
            "0",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("law formula"));
}

#[test]
fn fit_and_predict_reject_bad_input_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    strong_csv(tmp.path());
    std::fs::write(tmp.path().join("bad.csv"), "N,Qr,Qb,dL\n1e8,0.5,32,oops\n").unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["fit", "missing.csv"], "missing.csv"),
        (&["fit", "bad.csv"], "`oops` is not a number"),
        (&["fit", "d.csv", "--law", "kumar-ptq"], "needs a finite D"),
        (&["fit", "d.csv", "--law", "nope"], "unknown law `nope`"),
        (&["fit", "r.sqlite"], "no such results database (r.sqlite)"),
        (
            &[
                "predict",
                "--law",
                "unified-weak",
                "--values",
                "C=1,A=2",
                "--N",
                "1e8",
                "--Qr",
                "1",
            ],
            "no value for gamma_N",
        ),
    ];
    for (args, want) in cases {
        let o = qs(args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = stderr(&o);
        assert!(e.contains(want) && e.lines().count() == 1, "{args:?}: {e}");
    }
}

#[test]
fn the_session_flag_opens_the_explorer_only() {
    let tmp = tempfile::tempdir().unwrap();
    let o = qs(&["--session", "s.ron", "formats"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--session opens the explorer"),
        "{}",
        stderr(&o)
    );
}

/// `figures STORE --out OUT` followed by `extra`.
fn figures_args<'a>(store: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["figures", store, "--out", out];
    a.extend_from_slice(extra);
    a
}

#[test]
fn figures_writes_the_gallery_as_svg_png_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let store = root.join("assets/demo/demo.sqlite");
    let out = dir.path().join("figs");
    let (store_s, out_s) = (store.to_str().unwrap(), out.to_str().unwrap());
    let common = [
        "--reference",
        "bundled:qs-llama-s2-2M",
        "--bootstrap",
        "20",
        "--quiet",
    ];
    let mut first = vec!["--format", "svg,png,csv"];
    first.extend(common);
    let o = qs(&figures_args(store_s, out_s, &first), dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let ids = [
        "delta_vs_qr",
        "delta_vs_qb",
        "delta_vs_n",
        "sweep_trials",
        "law_map",
        "measured_vs_predicted",
        "pareto",
        "scale_overhead",
    ];
    for id in ids {
        for ext in ["svg", "png", "csv"] {
            let p = out.join(format!("{id}.{ext}"));
            assert!(
                p.is_file(),
                "{} missing; stdout {}",
                p.display(),
                String::from_utf8_lossy(&o.stdout)
            );
        }
        let png = std::fs::read(out.join(format!("{id}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        // 860 × 540 CSS px at 150 dpi.
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (1344, 844), "{id}");
    }
    // The map: under 300 KB, the heatmap as one image, a colour bar with numeric labels, and a
    // title naming law, slice, format and Qb.
    let map = std::fs::read_to_string(out.join("law_map.svg")).unwrap();
    assert!(map.len() < 300_000, "{} bytes", map.len());
    assert_eq!(map.matches("<image").count(), 1);
    assert!(map.contains("class=\"colour-bar\""));
    let bar_labels = map
        .lines()
        .skip_while(|l| !l.contains("colour-bar"))
        .filter(|l| {
            l.contains("<text")
                && l.split('>')
                    .nth(2)
                    .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    assert!(bar_labels >= 2, "colour bar labels: {bar_labels}");
    assert!(
        map.contains("unified-strong fitted · layer · mxint4 · bf16") && map.contains("Qb 32"),
        "{}",
        &map[..2000]
    );
    // Qb ticks are powers of two.
    let qb = std::fs::read_to_string(out.join("delta_vs_qb.svg")).unwrap();
    for t in [">8<", ">16<", ">32<", ">64<", ">128<", ">256<"] {
        assert!(qb.contains(t), "Qb tick {t}");
    }
    // A second run refuses to replace the files; --force replaces them.
    let again = |force: bool| {
        let mut extra = vec!["--format", "svg"];
        extra.extend(common);
        if force {
            extra.push("--force");
        }
        qs(&figures_args(store_s, out_s, &extra), dir.path())
    };
    let o = again(false);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"));
    assert!(again(true).status.success());
}

#[test]
fn figures_refuses_bad_input_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let store = root.join("assets/demo/demo.sqlite");
    // Bad input: nothing is created.
    let none = dir.path().join("none");
    let (store_s, none_s) = (store.to_str().unwrap(), none.to_str().unwrap());
    for bad in [
        figures_args("missing.sqlite", none_s, &[]),
        figures_args(store_s, none_s, &["--format", "gif"]),
        figures_args(store_s, none_s, &["--size", "10x10"]),
        figures_args(store_s, none_s, &["--dpi", "2"]),
    ] {
        let o = qs(&bad, dir.path());
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(!none.exists(), "{bad:?} left {}", none.display());
    }
}
