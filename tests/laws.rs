//! Law fitting on synthetic data drawn from each law with known parameters (DESIGN §4).

use quantscape::laws::forest::{leave_one_group_out, ForestConfig, RandomForest};
use quantscape::laws::forms::capybara_d_crit;
use quantscape::laws::formula::Formula;
use quantscape::laws::grid::{budget_curve, evaluate, Axis};
use quantscape::laws::{
    fit, grid_rows, row, synthesize, Dataset, FitOptions, Law, Loss, Space, Target, Var,
};
use rand::{Rng as _, SeedableRng as _};

const SIZES: [f64; 6] = [1e7, 3e7, 1e8, 3e8, 1e9, 3e9];
const RATIOS: [f64; 6] = [0.1, 0.25, 0.4, 0.6, 0.8, 1.0];
const BLOCKS: [f64; 5] = [16.0, 32.0, 64.0, 128.0, 256.0];
/// True parameters of the strong unified law: C, A, γ_N, d, γ_c.
const STRONG: [f64; 5] = [1.0, 2.5, 0.3, 8.0, 0.45];

fn law(id: &str) -> Law {
    Law::by_id(id).unwrap()
}

fn strong_data(sigma: f64, seed: u64) -> Dataset {
    let rows = grid_rows(&[(Var::N, &SIZES), (Var::Qr, &RATIOS), (Var::Qb, &BLOCKS)]);
    synthesize(&law("unified-strong"), &STRONG, rows, sigma, seed).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], rel: f64, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * w.abs().max(1e-3),
            "{what}: param {i} = {g}, want {w} (±{rel} rel)"
        );
    }
}

#[test]
fn analytic_gradients_match_central_differences() {
    let x = row(&[
        (Var::N, 2e8),
        (Var::D, 4e9),
        (Var::Qr, 0.6),
        (Var::Qb, 64.0),
        (Var::P, 4.0),
        (Var::E, 2.0),
        (Var::M, 1.0),
        (Var::Eps, 0.012),
    ]);
    for law in Law::builtins() {
        let p: Vec<f64> = law
            .params
            .iter()
            .map(|s| {
                s.starts
                    .first()
                    .copied()
                    .unwrap_or(1.5)
                    .clamp(s.lower, s.upper)
            })
            .collect();
        let mut g = vec![0.0; p.len()];
        let v = law.eval_grad(&p, &x, &mut g);
        let lx = x.map(f64::ln);
        let mut lg = vec![0.0; p.len()];
        if let Some(lv) = law.ln_eval_grad(&p, &x, &lx, &mut lg) {
            assert!(
                (lv - v.ln()).abs() <= 1e-12 * lv.abs().max(1.0),
                "{}: ln form {lv} vs {}",
                law.id,
                v.ln()
            );
            for (a, b) in lg.iter().zip(&g) {
                assert!(
                    (a - b / v).abs() <= 1e-10 * a.abs().max(1e-8),
                    "{}: ∂ln ŷ {a} vs {}",
                    law.id,
                    b / v
                );
            }
        }
        assert!(
            (v - law.eval(&p, &x)).abs() <= 1e-12 * v.abs(),
            "{}",
            law.id
        );
        for i in 0..p.len() {
            let h = 1e-6 * p[i].abs().max(1e-3);
            let (mut up, mut down) = (p.clone(), p.clone());
            up[i] += h;
            down[i] -= h;
            let num = (law.eval(&up, &x) - law.eval(&down, &x)) / (2.0 * h);
            assert!(
                (num - g[i]).abs() <= 1e-5 * num.abs().max(1e-8 * v.abs().max(1.0)),
                "{} ∂/∂{}: analytic {} numeric {num}",
                law.id,
                law.params[i].name,
                g[i]
            );
        }
    }
}

/// The format-aware law, pooled over formats whose ε spans a decade, recovers κ (the exponent
/// the second-order expansion puts at 1) and the other parameters within their CIs.
#[test]
fn format_eps_law_recovers_kappa_within_its_ci() {
    let truth = [0.8, 2.0, 0.3, 1.0];
    let rows = grid_rows(&[
        (Var::N, &SIZES),
        (Var::Qr, &RATIOS),
        (Var::Eps, &[0.002, 0.006, 0.013, 0.03]),
    ]);
    let data = synthesize(&law("format-eps"), &truth, rows, 0.05, 4).unwrap();
    let opts = FitOptions {
        bootstrap: 100,
        ..Default::default()
    };
    let rep = fit(&law("format-eps"), &data, &opts).unwrap();
    assert!(rep.converged && rep.flags.is_empty(), "{:?}", rep.flags);
    for (p, t) in rep.params.iter().zip(truth) {
        let (lo, hi) = (p.ci_low.unwrap(), p.ci_high.unwrap());
        assert!(lo <= t && t <= hi, "{}: {t} outside [{lo}, {hi}]", p.name);
    }
    assert!(rep.r2_log > 0.95, "{}", rep.r2_log);
}

/// One C per low format with the other parameters shared: backfitting recovers the per-format
/// constants of clean data and converges.
#[test]
fn per_format_c_recovers_each_formats_constant() {
    use quantscape::laws::per_format::per_format_scale;
    let truth = [0.02, 2.0, 0.3];
    let rows = grid_rows(&[(Var::N, &SIZES), (Var::Qr, &RATIOS)]);
    let mut data = synthesize(&law("unified-weak"), &truth, rows.clone(), 0.0, 1).unwrap();
    let base = data.clone();
    let factors = [("int4_asym", 0.5), ("mxfp4", 1.0), ("mxint4", 2.0)];
    data.rows.clear();
    data.y.clear();
    data.family.clear();
    data.format.clear();
    for (name, k) in factors {
        data.rows.extend(base.rows.iter().copied());
        data.y.extend(base.y.iter().map(|y| y * k));
        data.family.extend(base.rows.iter().map(|_| String::new()));
        data.format
            .extend(base.rows.iter().map(|_| name.to_string()));
    }
    let pf = per_format_scale(&law("unified-weak"), &data, &FitOptions::default()).unwrap();
    assert!(pf.converged, "{pf:?}");
    assert!(pf.r2_log > 0.999_999, "{}", pf.r2_log);
    for ((name, c), (want_name, k)) in pf.scales.iter().zip(factors) {
        assert_eq!(name, want_name);
        assert!((c / (truth[0] * k) - 1.0).abs() < 1e-6, "{name}: {c}");
    }
    assert_close(&pf.params[1..], &truth[1..], 1e-6, "shared parameters");
}

#[test]
fn strong_law_recovers_parameters_within_their_uncertainty() {
    let data = strong_data(0.03, 1);
    let opts = FitOptions {
        bootstrap: 200,
        ..Default::default()
    };
    let rep = fit(&law("unified-strong"), &data, &opts).unwrap();
    assert!(rep.converged, "{rep:?}");
    assert_eq!(rep.n_points, 180);
    assert!(rep.r2_log > 0.99, "R² log {}", rep.r2_log);
    assert_eq!(rep.bootstrap_failed, 0);
    for (est, truth) in rep.params.iter().zip(STRONG) {
        let se = est.std_err.unwrap();
        let (lo, hi) = (est.ci_low.unwrap(), est.ci_high.unwrap());
        assert!(
            (est.value - truth).abs() <= 4.0 * se,
            "{}: {} ± {se}, truth {truth}",
            est.name,
            est.value
        );
        assert!(
            lo <= est.value && est.value <= hi,
            "{}: CI [{lo}, {hi}] misses {}",
            est.name,
            est.value
        );
        let width = hi - lo;
        assert!(
            width > 0.5 * se && width < 12.0 * se,
            "{}: CI width {width} vs SE {se}",
            est.name
        );
    }
    // Nearly noise-free data pins the parameters down.
    let rep = fit(
        &law("unified-strong"),
        &strong_data(1e-4, 2),
        &FitOptions::default(),
    )
    .unwrap();
    assert_close(&rep.values(), &STRONG, 2e-3, "strong, σ = 1e-4");
    assert!(
        rep.starts_at_best >= 2,
        "only {} of {} starts found the optimum",
        rep.starts_at_best,
        rep.starts_total
    );
}

#[test]
fn every_builtin_law_recovers_its_parameters_from_clean_data() {
    let ds: [f64; 3] = [2e9, 8e9, 3.2e10];
    type Case = (&'static str, Vec<f64>, Vec<(Var, Vec<f64>)>);
    let cases: Vec<Case> = vec![
        (
            "unified-weak",
            vec![0.8, 3.0, 0.35],
            vec![(Var::N, SIZES.to_vec()), (Var::Qr, RATIOS.to_vec())],
        ),
        (
            "kumar-ptq",
            vec![5.0, 0.4, 0.5, 1.2],
            vec![
                (Var::N, SIZES.to_vec()),
                (Var::D, ds.to_vec()),
                (Var::P, vec![3.0, 4.0, 6.0, 8.0]),
            ],
        ),
        (
            "chinchilla",
            vec![400.0, 0.34, 410.0, 0.28, 1.7],
            vec![
                (Var::N, SIZES.to_vec()),
                (Var::D, vec![1e9, 3e9, 1e10, 3e10, 1e11]),
            ],
        ),
        (
            "kumar-neff",
            vec![400.0, 0.34, 410.0, 0.28, 1.7, 2.5],
            vec![
                (Var::N, SIZES.to_vec()),
                (Var::D, vec![1e9, 1e10, 1e11]),
                (Var::P, vec![2.0, 3.0, 4.0, 6.0, 8.0]),
            ],
        ),
        (
            "qat-group",
            vec![0.02, 0.3, 1.2, 0.4],
            vec![
                (Var::N, SIZES.to_vec()),
                (Var::D, ds.to_vec()),
                (Var::Qb, BLOCKS.to_vec()),
            ],
        ),
        (
            "fp-capybara",
            vec![300.0, 0.3, 350.0, 0.25, 1.8, 1.0, 2.0, 1.5],
            vec![
                (Var::N, vec![1e7, 1e8, 1e9]),
                (Var::D, vec![1e9, 1e10, 1e11]),
                (Var::E, vec![1.0, 2.0, 4.0]),
                (Var::M, vec![0.0, 1.0, 3.0]),
                (Var::Qb, vec![16.0, 64.0, 256.0]),
            ],
        ),
    ];
    for (id, truth, axes) in cases {
        let l = law(id);
        let axes: Vec<(Var, &[f64])> = axes.iter().map(|(v, xs)| (*v, xs.as_slice())).collect();
        let data = synthesize(&l, &truth, grid_rows(&axes), 0.0, 0).unwrap();
        let rep = fit(&l, &data, &FitOptions::default()).unwrap();
        assert!(rep.r2_log > 0.999_999, "{id}: R² {}", rep.r2_log);
        assert_close(&rep.values(), &truth, 1e-2, id);
    }
}

#[test]
fn starting_grid_and_far_starts_reach_the_same_optimum() {
    let data = strong_data(0.02, 3);
    let l = law("unified-strong");
    let best = fit(&l, &data, &FitOptions::default()).unwrap();
    for start in [[10.0, 0.1, 1.5, 500.0, 0.05], [1e-3, 8.0, -0.5, 0.0, 0.95]] {
        let opts = FitOptions {
            start: Some(start.to_vec()),
            ..Default::default()
        };
        let rep = fit(&l, &data, &opts).unwrap();
        assert!(
            rep.objective <= best.objective * (1.0 + 1e-4),
            "{start:?}: {} vs {}",
            rep.objective,
            best.objective
        );
        assert_close(&rep.values(), &best.values(), 1e-2, "far start");
    }
}

#[test]
fn huber_resists_outliers_that_pull_least_squares() {
    let mut data = strong_data(0.01, 4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    // 10 % of the points at the smallest model are 4× too high (a broken run).
    for i in 0..data.len() {
        if data.rows[i][Var::N.index()] == SIZES[0] && rng.random::<f64>() < 0.35 {
            data.y[i] *= 4.0;
        }
    }
    let l = law("unified-strong");
    let huber = fit(&l, &data, &FitOptions::default()).unwrap();
    let ls = fit(
        &l,
        &data,
        &FitOptions {
            loss: Loss::LeastSquares,
            ..Default::default()
        },
    )
    .unwrap();
    let g = l.param_index("gamma_N").unwrap();
    let err = |r: &quantscape::laws::FitReport| (r.params[g].value - STRONG[g]).abs();
    assert!(err(&huber) < 0.01, "Huber γ_N {}", huber.params[g].value);
    assert!(
        err(&ls) > 3.0 * err(&huber),
        "LS γ_N {} vs Huber {}",
        ls.params[g].value,
        huber.params[g].value
    );
}

#[test]
fn user_formula_fits_like_the_builtin() {
    let data = strong_data(0.02, 5);
    let builtin = fit(&law("unified-strong"), &data, &FitOptions::default()).unwrap();
    let mut f = Formula::parse("C * exp(A*Qr) * N^(-gN) * (Qb + d)^gc").unwrap();
    let names: Vec<&str> = f.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["A", "C", "d", "gN", "gc"]);
    f.set_param("C", 1e-6, 1e6, &[1.0]).unwrap();
    f.set_param("d", -0.99, 1e4, &[1.0, 30.0]).unwrap();
    f.set_param("gc", 1e-6, 1.0, &[0.3, 0.7]).unwrap();
    f.set_param("gN", -3.0, 5.0, &[0.1, 0.5]).unwrap();
    f.set_param("A", -50.0, 50.0, &[1.0, 4.0]).unwrap();
    assert!(f.set_param("nope", 0.0, 1.0, &[0.5]).is_err());
    let user = fit(
        &Law::from_formula(f, Target::DeltaLoss),
        &data,
        &FitOptions::default(),
    )
    .unwrap();
    let b = builtin.values();
    // Reorder the builtin's (C, A, gN, d, gc) to the formula's alphabetical (A, C, d, gN, gc).
    let want = [b[1], b[0], b[3], b[2], b[4]];
    assert_close(&user.values(), &want, 1e-3, "formula vs builtin");
    // `E` is the exponent-bit variable, not Euler's number.
    let f = Formula::parse("k*(E+0.5)^(-a)").unwrap();
    assert_eq!(f.vars(), [Var::E]);
    assert!(Formula::parse("C*exp(").is_err());
    assert!(
        Formula::parse("N*Qr").is_err(),
        "no parameters must be an error"
    );
}

#[test]
fn isolines_lie_on_the_analytic_level_set() {
    // Weak law: ΔL = C·e^{A·Qr}·N^{−γ} = level  ⇔  Qr = (ln(level/C) + γ·ln N)/A.
    let (c, a, g) = (0.8, 3.0, 0.35);
    let l = law("unified-weak");
    let grid = evaluate(
        &l,
        &[c, a, g],
        Axis::new(Var::N, 1e7, 1e10, 61),
        Axis::new(Var::Qr, 0.0, 1.0, 51),
        &row(&[]),
    )
    .unwrap();
    let levels = [0.005, 0.01, 0.02];
    let iso = grid.isolines(&levels, "ΔL = ").unwrap();
    assert_eq!(iso.len(), 3);
    for line in &iso {
        assert!(!line.lines.is_empty(), "level {} has no line", line.level);
        assert!(line.label.starts_with("ΔL = 0.0"));
        let mut n_points = 0;
        for pl in &line.lines {
            for &[n, qr] in pl {
                let want = ((line.level / c).ln() + g * n.ln()) / a;
                // Linear interpolation of an exponential between samples 0.02 apart in Qr.
                assert!(
                    (qr - want).abs() < 2e-3,
                    "level {}: N {n:e} Qr {qr} want {want}",
                    line.level
                );
                assert!((1e7..=1e10).contains(&n) && (0.0..=1.0).contains(&qr));
                n_points += 1;
            }
        }
        assert!(n_points > 20);
    }
    // Budget: the largest Qr within ΔL ≤ 0.02 per N, analytically.
    let ns = [1e7, 1e8, 1e9, 1e10];
    let qr = budget_curve(&l, &[c, a, g], &row(&[]), Var::Qr, (0.0, 1.0), 0.02, &ns).unwrap();
    for (n, got) in ns.iter().zip(qr) {
        let want = ((0.02 / c).ln() + g * n.ln()) / a;
        match got {
            None => assert!(want < 0.0, "N {n:e}"),
            Some(q) if want >= 1.0 => assert_eq!(q, 1.0),
            Some(q) => assert!((q - want).abs() < 1e-9, "N {n:e}: {q} vs {want}"),
        }
    }
}

#[test]
fn leave_one_size_out_extrapolates_clean_data() {
    let rep = fit(
        &law("unified-strong"),
        &strong_data(1e-4, 6),
        &FitOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.leave_one_size_out.len(), SIZES.len());
    let largest = rep.leave_one_size_out.last().unwrap();
    assert_eq!(largest.n, 3e9);
    assert_eq!(largest.n_points, 30);
    assert!(largest.mape < 1e-3, "{largest:?}");
}

#[test]
fn non_positive_points_are_excluded_in_log_space_and_kept_in_linear_space() {
    let mut data = strong_data(0.01, 7);
    data.y[3] = -0.002;
    data.y[10] = 0.0;
    data.y[11] = f64::NAN;
    let rep = fit(&law("unified-strong"), &data, &FitOptions::default()).unwrap();
    let idx: Vec<usize> = rep.excluded.iter().map(|e| e.0).collect();
    assert_eq!(idx, [3, 10, 11]);
    assert_eq!(rep.n_points, 177);
    let lin = FitOptions {
        space: Space::Linear,
        loss: Loss::Huber { delta: 1e-3 },
        ..Default::default()
    };
    let rep = fit(&law("unified-strong"), &data, &lin).unwrap();
    assert_eq!(rep.n_points, 179);
    assert_close(&rep.values()[1..3], &STRONG[1..3], 0.05, "linear space");
}

#[test]
fn bootstrap_is_deterministic_whatever_the_thread_count() {
    let data = strong_data(0.03, 8);
    let opts = FitOptions {
        bootstrap: 50,
        seed: 42,
        ..Default::default()
    };
    let l = law("unified-strong");
    let a = fit(&l, &data, &opts).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| fit(&l, &data, &opts).unwrap());
    for (x, y) in a.params.iter().zip(&b.params) {
        assert_eq!(x.ci_low, y.ci_low);
        assert_eq!(x.ci_high, y.ci_high);
    }
    let c = fit(&l, &data, &FitOptions { seed: 43, ..opts }).unwrap();
    assert_ne!(a.params[1].ci_low, c.params[1].ci_low);
}

#[test]
fn bad_input_is_a_clear_error() {
    let data = strong_data(0.01, 9);
    let e = fit(&law("kumar-ptq"), &data, &FitOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs a finite D") && e.contains("N, Qr, Qb"),
        "{e}"
    );
    let few = Dataset::new(data.rows[..4].to_vec(), data.y[..4].to_vec());
    let e = fit(&law("unified-strong"), &few, &FitOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("5 parameters but only 4"), "{e}");
    let e = quantscape::laws::predict(&law("unified-weak"), &[1.0, 2.0], &row(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 parameters"), "{e}");

    let csv = "N,Qr,block_size,dL,family\n1e8,0.5,32,0.1,qs\n1e9,0.5,32,x,qs\n";
    let e = Dataset::from_csv_reader(csv.as_bytes(), None, Target::DeltaLoss)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("`x`"), "{e}");
    let e = Dataset::from_csv_reader("N,Qr\n1,2\n".as_bytes(), None, Target::DeltaLoss)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no target column"), "{e}");
    let ok = Dataset::from_csv_reader(
        "N,Qr,block_size,dL,family\n1e8,0.5,32,0.1,qs\n".as_bytes(),
        None,
        Target::DeltaLoss,
    )
    .unwrap();
    assert_eq!(ok.rows[0][Var::Qb.index()], 32.0);
    assert_eq!(ok.family[0], "qs");
    assert!(ok.rows[0][Var::D.index()].is_nan());
}

#[test]
fn capybara_d_crit_is_the_minimum_over_tokens() {
    let l = law("fp-capybara");
    let p = [300.0, 0.3, 350.0, 0.25, 1.8, 1.0, 2.0, 1.5];
    let (n, e, m, b) = (1e8, 2.0, 1.0, 64.0);
    let d_crit = capybara_d_crit(&p, n, e, m, b);
    let loss = |d: f64| {
        l.eval(
            &p,
            &row(&[
                (Var::N, n),
                (Var::D, d),
                (Var::E, e),
                (Var::M, m),
                (Var::Qb, b),
            ]),
        )
    };
    assert!(
        loss(d_crit) < loss(d_crit * 1.05) && loss(d_crit) < loss(d_crit / 1.05),
        "D_crit {d_crit:e}"
    );
}

#[test]
fn forest_beats_the_mean_and_the_size_only_baseline() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut groups = Vec::new();
    for fam in ["a", "b", "c", "d"] {
        for _ in 0..150 {
            let log_n: f64 = rng.random_range(7.0..10.0);
            let bits: f64 = rng.random_range(2.0..8.0);
            let flat: f64 = rng.random_range(0.0..1.0);
            // ΔL falls with size and bits, rises with sharpness: what the predictor should learn.
            let t = (-0.5 * log_n - 0.6 * bits + 1.5 * flat).exp() * 1e3
                + rng.random_range(-0.01..0.01);
            x.push(vec![log_n, bits, flat]);
            y.push(t);
            groups.push(fam.to_string());
        }
    }
    let cfg = ForestConfig {
        n_trees: 60,
        ..Default::default()
    };
    let (train, test) = (480, 600);
    let forest = RandomForest::fit(&x[..train], &y[..train], &cfg).unwrap();
    let mean = y[..train].iter().sum::<f64>() / train as f64;
    let sse = |f: &dyn Fn(&[f64]) -> f64| {
        (train..test)
            .map(|i| (f(&x[i]) - y[i]).powi(2))
            .sum::<f64>()
    };
    let forest_sse = sse(&|r| forest.predict(r).unwrap());
    let mean_sse = sse(&|_| mean);
    assert!(
        forest_sse < 0.1 * mean_sse,
        "forest {forest_sse} vs mean {mean_sse}"
    );
    assert!(
        forest.importances[1] > forest.importances[2],
        "{:?}",
        forest.importances
    );
    let logo = leave_one_group_out(&x, &y, &groups, 0, &cfg).unwrap();
    assert_eq!(logo.groups.len(), 4);
    assert!(logo.rmse_forest < 0.5 * logo.rmse_baseline, "{logo:?}");
    assert!(RandomForest::fit(&[vec![f64::NAN]], &[1.0], &cfg).is_err());
    // Adjacent floats: the split threshold must not round onto the upper value (an empty
    // child would predict NaN).
    // An odd last mantissa bit: (a + b) / 2 rounds (ties to even) onto b.
    let a = f64::from_bits(858.0_f64.to_bits() + 1);
    let b = f64::from_bits(a.to_bits() + 1);
    assert_eq!(0.5 * (a + b), b);
    let xs: Vec<Vec<f64>> = (0..8).map(|i| vec![if i < 4 { a } else { b }]).collect();
    let ys: Vec<f64> = (0..8).map(|i| if i < 4 { 0.0 } else { 1.0 }).collect();
    let tight = ForestConfig {
        n_trees: 4,
        min_samples_leaf: 1,
        ..cfg.clone()
    };
    let f = RandomForest::fit(&xs, &ys, &tight).unwrap();
    for x in [a, b, 0.0, 1e9] {
        assert!(f.predict(&[x]).unwrap().is_finite(), "{x}");
    }
}

#[test]
fn predictor_features_have_one_name_per_entry() {
    use quantscape::laws::forest::PtqFeatures;
    let f = PtqFeatures {
        n_params: 1e8,
        base_loss: 3.1,
        element_bits: 4.0,
        exponent_bits: 2.0,
        mantissa_bits: 1.0,
        block_size: 32.0,
        bits_per_weight: 4.25,
        qr: 0.5,
        rtn_sqnr_db: Some(18.0),
        flatness: None,
        sharpness: Some(f64::NAN),
        top_eigenvalue: Some(12.0),
        ..PtqFeatures::default()
    };
    let r = f.row();
    assert_eq!(r.len(), PtqFeatures::NAMES.len());
    assert_eq!(
        (r[0], r[5], r[7], r[8], r[9], r[10], r[11], r[13]),
        (8.0, 5.0, 0.5, 18.0, -1.0, -1.0, 12.0, -1.0)
    );
    assert!(PtqFeatures::NAMES[PtqFeatures::LANDSCAPE]
        .iter()
        .all(|n| n.contains("absent")));
    assert_eq!(PtqFeatures::NAMES[PtqFeatures::SIZE_FEATURE], "log10_N");
}

/// A sound fit carries no flag and beats its simpler form; a law with a term the data cannot
/// see is flagged (a parameter at its bound or unidentified, no better than the weak law); the
/// held-out errors leave one size, one format and one block size out.
#[test]
fn degenerate_fits_are_flagged_and_held_out_errors_cover_size_format_and_qb() {
    let opts = FitOptions {
        bootstrap: 40,
        ..FitOptions::default()
    };
    // Strong-law data: the granularity term is real.
    let mut data = strong_data(0.03, 5);
    data.format = (0..data.len())
        .map(|i| if i % 2 == 0 { "mxfp4" } else { "mxint4" }.to_string())
        .collect();
    let r = fit(&law("unified-strong"), &data, &opts).unwrap();
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    let c = r.simpler.as_ref().unwrap();
    assert_eq!(c.law, "unified-weak");
    assert!(c.aic.0 < c.aic.1 - 10.0, "{c:?}");
    let by: Vec<&str> = r.held_out.iter().map(|h| h.by.as_str()).collect();
    assert_eq!(by, ["size", "format", "qb"]);
    for h in &r.held_out {
        assert!(
            h.median_abs_rel < 0.1 && h.p90_abs_rel >= h.median_abs_rel,
            "{h:?}"
        );
    }
    assert_eq!(r.held_out[1].groups.len(), 2);
    assert_eq!(r.held_out[2].groups.len(), BLOCKS.len());
    // Weak-law data (no Qb dependence) fitted with the strong law: Qb is not identified.
    let rows = grid_rows(&[(Var::N, &SIZES), (Var::Qr, &RATIOS), (Var::Qb, &BLOCKS)]);
    let weak = synthesize(&law("unified-weak"), &[1.0, 2.5, 0.3], rows, 0.03, 6).unwrap();
    let r = fit(&law("unified-strong"), &weak, &opts).unwrap();
    let kinds: Vec<&str> = r.flags.iter().map(|f| f.kind.as_str()).collect();
    assert!(kinds.contains(&"no_better_than_simpler"), "{:?}", r.flags);
    assert!(
        r.flags
            .iter()
            .any(|f| matches!(f.param.as_deref(), Some("d") | Some("gamma_c"))),
        "{:?}",
        r.flags
    );
    // Without format labels there is no leave-one-format-out.
    let r = fit(&law("unified-weak"), &weak, &opts).unwrap();
    assert!(r.held_out.iter().all(|h| h.by != "format"));
    assert!(r.simpler.is_none());
}

/// Per-channel points (no block size) are left out of a fit whose law has Qb, each with the
/// reason, and the nested law is compared on the same points.
#[test]
fn points_without_a_block_size_are_left_out_of_a_granularity_fit() {
    let mut data = strong_data(0.01, 9);
    let n = data.len();
    for row in data.rows.iter_mut().take(7) {
        row[Var::Qb.index()] = f64::NAN;
    }
    let opts = FitOptions {
        bootstrap: 0,
        ..FitOptions::default()
    };
    let r = fit(&law("unified-strong"), &data, &opts).unwrap();
    assert_eq!(r.n_points, n - 7);
    let no_qb: Vec<usize> = r
        .excluded
        .iter()
        .filter(|(_, why)| why.contains("per-channel"))
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(no_qb, (0..7).collect::<Vec<_>>());
    let weak_here = fit(
        &law("unified-weak"),
        &data.with_vars(&[Var::Qb]),
        &FitOptions {
            compare_simpler: false,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(weak_here.n_points, n - 7);
    let s = r.simpler.expect("compared with unified-weak");
    assert_eq!(s.r2_log.1, weak_here.r2_log);
    // The weak law itself has no Qb: it uses every point.
    assert_eq!(fit(&law("unified-weak"), &data, &opts).unwrap().n_points, n);
    // A law whose variable no point has is still an error.
    for row in data.rows.iter_mut() {
        row[Var::Qb.index()] = f64::NAN;
    }
    let e = fit(&law("unified-strong"), &data, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a finite Qb"), "{e}");
}

/// D is the training budget: a results summary's scored-token count is not read as D (it was,
/// when the summary named it `n_tokens`, and every D-dependent fit on a store lost its D), and
/// two columns naming one variable are an error rather than a silent choice.
#[test]
fn d_is_the_training_budget_and_columns_never_alias() {
    let csv = "n_params,train_tokens,n_scored_tokens,n_tokens,qr,delta_loss\n\
               1e5,5e5,16510,16510,1,0.002\n\
               1e5,2e6,16510,16510,1,0.02\n";
    let d = Dataset::from_csv_reader(csv.as_bytes(), None, Target::DeltaLoss).unwrap();
    assert_eq!(
        d.rows.iter().map(|r| r[Var::D.index()]).collect::<Vec<_>>(),
        [5e5, 2e6]
    );
    let e = Dataset::from_csv_reader(
        "n_params,N,qr,delta_loss\n1e5,1e5,1,0.01\n".as_bytes(),
        None,
        Target::DeltaLoss,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`n_params` and `N` both name N"), "{e}");
}
