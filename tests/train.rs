//! Training: the differentiable forward pass equals the inference one, gradients reach every
//! parameter, an interrupted run resumes to bit-identical weights and logs, and the export is a
//! checkpoint quantscape loads with the losses it reports.

use std::path::Path;

use quantscape::model::layers::NoHooks;
use quantscape::model::trainable;
use quantscape::model::transformer::Transformer;
use quantscape::train::recipe::{Arch, FamilyRecipe, SizeSpec};
use quantscape::train::{probe_loss, Data, Run};

fn recipe(arch: Arch) -> FamilyRecipe {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes/qs-llama.ron"),
    )
    .unwrap();
    let mut r: FamilyRecipe = ron::from_str(&text).unwrap();
    r.arch = arch;
    r.context = 24;
    r.batch_windows = 4;
    r.eval_every_steps = 4;
    r.eval_windows = 8;
    r.checkpoint_every_steps = 3;
    r.sizes = vec![SizeSpec {
        name: "t".into(),
        d_model: 16,
        n_layers: 2,
        n_heads: 2,
        ffn: None,
        lr: 1e-2,
    }];
    r.budgets_tokens = vec![10 * 4 * 23];
    r
}

fn data(r: &FamilyRecipe) -> Data {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Data::prepare(
        &root.join("assets/corpus"),
        &root.join("assets/tokenizer"),
        r.context,
        r.eval_windows,
    )
    .unwrap()
}

#[test]
fn differentiable_forward_matches_inference_and_reaches_every_parameter() {
    for arch in [Arch::Llama, Arch::Neox] {
        let r = recipe(arch);
        let cfg_json = r.sizes[0].config_json(arch, 2048, r.context);
        let cfg =
            quantscape::model::config::ArchConfig::from_json(&cfg_json, Path::new("config.json"))
                .unwrap();
        let (mut model, vars): (Transformer, _) = trainable::init(cfg, 7, 0.2).unwrap();
        let ids: Vec<u32> = (0..2 * 24).map(|i| (i * 37 % 2048) as u32).collect();
        let a = model
            .forward(&ids, 2, &NoHooks)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        model.differentiable = false;
        let b = model
            .forward(&ids, 2, &NoHooks)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max < 1e-4,
            "{arch:?}: differentiable and fused paths differ by {max}"
        );
        model.differentiable = true;
        let loss = model
            .forward(&ids, 2, &NoHooks)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        for (name, v) in &vars {
            let g = grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("{arch:?}: no gradient for {name}"));
            let n = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                n.is_finite() && n > 0.0,
                "{arch:?}: gradient of {name} is {n}"
            );
        }
    }
}

#[test]
fn an_interrupted_run_resumes_bit_identically_and_exports_a_loadable_model() {
    let r = recipe(Arch::Neox);
    let d = data(&r);
    let tmp = tempfile::tempdir().unwrap();
    let run = |tag: &str| Run {
        recipe: &r,
        size: &r.sizes[0],
        budget_tokens: r.budgets_tokens[0],
        work_dir: tmp.path().join(tag).join("work"),
        out_dir: tmp.path().join(tag).join("out"),
        tokenizer_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tokenizer"),
    };
    let straight = run("a").train(&d, &mut |_| true).unwrap();
    let cut = run("b");
    let mut calls = 0;
    let e = cut.train(&d, &mut |_| {
        calls += 1;
        calls < 5
    });
    assert!(matches!(e, Err(quantscape::Error::Cancelled)));
    assert!(!cut.is_done());
    let resumed = cut.train(&d, &mut |_| true).unwrap();
    assert_eq!(straight.steps, 10);
    assert_eq!(straight.final_losses, resumed.final_losses);
    for f in ["model.safetensors", "loss.csv", "eval.csv"] {
        let strip = |p: &Path| std::fs::read(p).unwrap();
        assert_eq!(
            strip(&run("a").out_dir.join(f)),
            strip(&cut.out_dir.join(f)),
            "{f} differs after resuming"
        );
    }
    // Loss goes down from ln V on this small budget.
    let log = std::fs::read_to_string(cut.out_dir.join("loss.csv")).unwrap();
    let losses: Vec<f64> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(losses[0] > 7.0 && losses[9] < losses[0] - 0.3, "{losses:?}");
    // The export loads as an ordinary checkpoint and reproduces the reported loss.
    let mut m = Transformer::load(&cut.out_dir).unwrap();
    assert!(!m.differentiable);
    let probe = &d.probes.iter().find(|(n, _)| n == "eval_kjv").unwrap().1;
    let reported = resumed
        .final_losses
        .iter()
        .find(|(n, _)| n == "eval_kjv")
        .unwrap()
        .1;
    assert!((probe_loss(&mut m, probe).unwrap() - reported).abs() < 1e-5);
    assert_eq!(resumed.n_params_non_embedding, m.n_params_non_embedding);

    // The recipe changes (a mended size): the export no longer counts as done, and a
    // checkpoint of the old spec is refused rather than continued under the new name.
    let mut wider = r.sizes[0].clone();
    wider.d_model += wider.n_heads;
    let stale = Run {
        size: &wider,
        ..run("b")
    };
    assert!(cut.is_done() && !stale.is_done());
    // So does a change of how the family trains (the batch); the evaluation cadence does not.
    let mut rebatched = r.clone();
    rebatched.batch_windows += 1;
    let mut reprobed = r.clone();
    reprobed.eval_every_steps += 1;
    assert!(!Run {
        recipe: &rebatched,
        ..run("b")
    }
    .is_done());
    assert!(Run {
        recipe: &reprobed,
        ..run("b")
    }
    .is_done());
    let c = run("c");
    let mut calls = 0;
    let _ = c.train(&d, &mut |_| {
        calls += 1;
        calls < 3
    });
    let relr = SizeSpec {
        lr: c.size.lr * 2.0,
        ..c.size.clone()
    };
    for size in [&wider, &relr] {
        let e = Run { size, ..run("c") }
            .train(&d, &mut |_| true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("another size spec") && e.contains("ckpt"), "{e}");
    }
    let e = Run {
        recipe: &rebatched,
        ..run("c")
    }
    .train(&d, &mut |_| true)
    .unwrap_err()
    .to_string();
    assert!(e.contains("budget or recipe") && e.contains("ckpt"), "{e}");
}

#[test]
fn bad_recipes_are_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("r.ron");
    std::fs::write(&p, "FamilyRecipe(name: \"x\")").unwrap();
    let e = FamilyRecipe::load(&p).unwrap_err().to_string();
    assert!(e.contains("r.ron"), "{e}");
    let mut r = recipe(Arch::Llama);
    r.sizes[0].n_heads = 3;
    std::fs::write(&p, ron::ser::to_string(&r).unwrap()).unwrap();
    let e = FamilyRecipe::load(&p).unwrap_err().to_string();
    assert!(e.contains("heads"), "{e}");
    for f in ["qs-llama.ron", "qs-neox.ron"] {
        FamilyRecipe::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("assets/recipes")
                .join(f),
        )
        .unwrap();
    }
}

#[test]
fn every_bundled_checkpoint_loads_with_its_reported_size_and_loss() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return;
    };
    let r = recipe(Arch::Llama);
    let d = data(&FamilyRecipe {
        context: 128,
        eval_windows: 64,
        ..r
    });
    for e in entries {
        let dir = e.unwrap().path();
        if dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue; // an export being written
        }
        let report: quantscape::train::RunReport =
            serde_json::from_str(&std::fs::read_to_string(dir.join("train.json")).unwrap())
                .unwrap();
        let mut m = Transformer::load(&dir).unwrap();
        assert_eq!(
            m.n_params_non_embedding,
            report.n_params_non_embedding,
            "{}",
            dir.display()
        );
        assert_eq!(report.recipe.context, 128);
        let (name, w) = &d.probes[2];
        let reported = report
            .final_losses
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1;
        let measured = probe_loss(&mut m, w).unwrap();
        assert!(
            (measured - reported).abs() < 1e-4,
            "{}: {name} {measured} vs reported {reported}",
            dir.display()
        );
        assert!(
            reported < 7.0,
            "{}: loss {reported} is no better than chance",
            dir.display()
        );
    }
}

/// Issue-5 quality bar on every complete bundled family: held-out loss falls with N at every
/// budget and L(N) = E + A·N^(−α) fits with R² ≥ 0.95; `train --report` prints the table.
/// Every bundled run was trained with its recipe's current size spec.
#[test]
fn complete_bundled_families_meet_the_quality_bar() {
    use quantscape::train::report::family_report;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["qs-llama", "qs-neox"] {
        let recipe_path = root.join(format!("assets/recipes/{name}.ron"));
        let recipe = FamilyRecipe::load(&recipe_path).unwrap();
        let r = family_report(&recipe, &root.join("assets/models")).unwrap();
        assert!(
            r.stale.is_empty(),
            "{name}: bundled runs do not match the recipe: {:?}",
            r.stale
        );
        if !r.missing.is_empty() {
            eprintln!("{name}: {} runs not trained yet; skipped", r.missing.len());
            continue;
        }
        assert_eq!(r.fits.len(), recipe.budgets_tokens.len());
        for f in &r.fits {
            assert!(
                f.monotone,
                "{name} at {} tokens: loss not monotone in N",
                f.budget_tokens
            );
            assert!(
                f.r2 >= 0.95,
                "{name} at {} tokens: R² {}",
                f.budget_tokens,
                f.r2
            );
        }
        let o = crate::util::qs(
            &[
                "train",
                "--recipe",
                recipe_path.to_str().unwrap(),
                "--report",
            ],
            root,
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            out.contains(&format!("| {name}-s1-500k |")) && out.contains("| yes |"),
            "{out}"
        );
    }
}
