//! egui_kittest tests driving the explorer by its accessibility labels: open the demo, fit, move
//! a slider and see the map change, switch views, cancel a job, save and reload a session, and
//! export PNG/SVG/CSV. Image snapshots of the Laws and Hardware views run where a wgpu adapter
//! exists (lavapipe in CI) and are skipped with a message elsewhere.

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

use super::laws::LawsPanel;
use super::laws_data::{
    default_family, demo_store, family_of, store_families, store_slices, StoreSlice,
};
use super::session::{FamilyChoice, LawsState, Source};
use super::{App, Command, ExportKind, Session, View};

fn harness(session: Session) -> Harness<'static, App> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_max_steps(10_000)
        .build_eframe(move |cc| App::with_session(&cc.egui_ctx, session))
}

fn quick() -> Session {
    Session {
        laws: LawsState {
            source: Source::Synthetic,
            bootstrap: 10,
            ..LawsState::default()
        },
        ..Session::default()
    }
}

/// Steps frames until `done` holds (jobs finish on other threads).
fn step_until(h: &mut Harness<'static, App>, what: &str, done: impl Fn(&mut App) -> bool) {
    let t = Instant::now();
    while !done(h.state_mut()) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.step();
}

#[test]
fn opens_fits_slides_and_switches_views() {
    let mut h = harness(quick());
    step_until(&mut h, "the first fit", |a| {
        a.laws.st.report.is_some() && !a.laws.fitting()
    });
    assert!(h.state().laws.st.report.as_ref().unwrap().r2_log > 0.95);
    let before = h.state_mut().laws.map_figure().unwrap().heat.clone();
    // The Qb slider, driven the way assistive technology does.
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "Qb (block size)")
        .set_value_accesskit(256.0);
    h.step();
    assert_eq!(h.state().laws.st.qb, 256.0);
    assert_ne!(h.state_mut().laws.map_figure().unwrap().heat, before);
    h.get_by_label("ΔL budget curves").click();
    h.step();
    assert_eq!(h.state().laws.tab, super::laws::LawsTab::Budget);
    h.get_by_label("Hardware").click();
    h.step();
    h.step();
    assert_eq!(h.state().view(), View::Hardware);
    step_until(&mut h, "the pareto table", |a| {
        a.hardware.prepared.is_some()
    });
    assert!(
        h.state().hardware.error.is_none(),
        "{:?}",
        h.state().hardware.error
    );
    h.run_steps(2);
    assert!(h.query_by_label("Pareto front").is_some());
    assert!(h
        .query_by_label_contains("decades outside the fitted N range")
        .is_some());
    h.get_by_label("Models").click();
    h.step();
    h.step();
    assert_eq!(h.state().view(), View::Models);
    step_until(&mut h, "the bundled runs", |a| !a.models.scanning());
    let first = h.state().models.families[0].report.run.clone();
    h.get_by_label(&first).click();
    step_until(&mut h, "the tensor table", |a| {
        !a.models.loading() && !a.models.tensors.is_empty()
    });
    assert!(h.query_by_label_contains("embed").is_some());
    // Presenter mode by its key, and back.
    h.key_press(egui::Key::F5);
    h.step();
    h.step();
    assert!(h.state().presenter());
    assert!(h.query_by_label_contains("Predicted degradation").is_some());
    h.key_press(egui::Key::Escape);
    h.step();
    h.step();
    assert!(!h.state().presenter());
}

#[test]
fn a_running_fit_cancels() {
    let mut h = harness(quick());
    step_until(&mut h, "the first fit", |a| !a.laws.fitting());
    let first = h.state().laws.st.report.clone().expect("a fit");
    h.state_mut().laws.st.bootstrap = 20_000;
    h.state_mut().laws.start_fit(None);
    h.step();
    assert!(h.state().laws.fitting());
    h.get_by_label("Cancel fit").click();
    step_until(&mut h, "the cancelled fit", |a| !a.laws.fitting());
    let kept = h.state().laws.st.report.clone().expect("the earlier fit");
    assert_eq!(
        kept.bootstrap_resamples, first.bootstrap_resamples,
        "a cancelled fit changes nothing"
    );
    assert!(h.state().notices.iter().all(|n| !n.error));
}

/// Compares sessions field by field (a whole-session diff is too long to read).
fn same(a: &Session, b: &Session) {
    assert_eq!((a.view, a.presenter, a.dark), (b.view, b.presenter, b.dark));
    assert_eq!(a.models, b.models);
    assert_eq!(a.hardware, b.hardware);
    assert_eq!(a.quantize, b.quantize);
    assert_eq!(a.evaluate, b.evaluate);
    assert_eq!(a.sweep, b.sweep);
    assert_eq!(a.landscape, b.landscape);
    let (x, y) = (&a.laws, &b.laws);
    assert_eq!(
        (&x.source, &x.law_id, &x.params),
        (&y.source, &y.law_id, &y.params)
    );
    assert_eq!(
        (x.qb, x.qr, x.n, x.budget, x.bootstrap),
        (y.qb, y.qr, y.n, y.budget, y.bootstrap)
    );
    assert_eq!(
        x.report.as_ref().map(|r| r.values()),
        y.report.as_ref().map(|r| r.values())
    );
}

#[test]
fn sessions_save_reload_and_survive_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ron");
    let mut h = harness(quick());
    step_until(&mut h, "the first fit", |a| !a.laws.fitting());
    h.state_mut().laws.st.qb = 128.0;
    // Every view's choices travel with the session.
    h.state_mut().quantize.spelling = "nvfp4".into();
    h.state_mut().evaluate.settings.windows = 9;
    h.state_mut().landscape.settings.grid = 7;
    h.state_mut()
        .sweep
        .set_spec_path(dir.path().join("spec.ron"));
    h.state_mut().push(Command::ShowView(View::Hardware));
    h.state_mut().push(Command::SaveSession(path.clone()));
    h.step();
    let saved = h.state().session();
    h.state_mut().laws.st.qb = 16.0;
    h.state_mut().push(Command::ShowView(View::Models));
    h.state_mut().push(Command::LoadSession(path.clone()));
    h.step();
    same(&h.state().session(), &saved);
    assert_eq!(h.state().quantize.spelling, "nvfp4");
    assert_eq!(h.state().evaluate.settings.windows, 9);
    assert_eq!(h.state().landscape.settings.grid, 7);
    assert_eq!(h.state().sweep.spec_path, dir.path().join("spec.ron"));
    assert!(!h.state().laws.fitting(), "a restored fit is not refitted");
    std::fs::write(&path, "(version: 1, view: [").unwrap();
    h.state_mut().push(Command::LoadSession(path.clone()));
    h.step();
    let last = h.state().notices.last().unwrap().clone();
    assert!(last.error && last.text.contains("s.ron"), "{last:?}");
    same(&h.state().session(), &saved);
    let n = h.state().notices.len();
    for _ in 0..n {
        h.get_all_by_label("Dismiss")
            .next()
            .unwrap()
            .click_accesskit();
        h.run_steps(2);
    }
    assert!(h.state().notices.is_empty(), "{:?}", h.state().notices);
}

#[test]
fn exports_write_files_and_never_overwrite_without_asking() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(quick());
    step_until(&mut h, "the first fit", |a| !a.laws.fitting());
    let svg = dir.path().join("map.svg");
    let csv = dir.path().join("map.csv");
    let table = dir.path().join("params.csv");
    for (kind, path) in [
        (ExportKind::FigureSvg, &svg),
        (ExportKind::FigureCsv, &csv),
        (ExportKind::TableCsv, &table),
    ] {
        h.state_mut().push(Command::Export {
            kind,
            path: path.clone(),
            overwrite: false,
        });
    }
    h.step();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("<text"));
    let data = std::fs::read_to_string(&csv).unwrap();
    assert!(data.starts_with("series,x,y,z") && data.lines().count() > 96 * 96);
    let params = std::fs::read_to_string(&table).unwrap();
    assert!(
        params.starts_with("parameter,value") && params.contains("gamma_N"),
        "{params}"
    );
    // A second export to the same file asks first; keeping it leaves the file alone.
    std::fs::write(&csv, "mine").unwrap();
    let answer = |h: &mut Harness<'static, App>, button: &str| {
        h.state_mut().push(Command::Export {
            kind: ExportKind::FigureCsv,
            path: csv.clone(),
            overwrite: false,
        });
        h.step();
        h.step();
        h.get_by_label(button).click();
        h.step();
        h.step();
    };
    answer(&mut h, "Keep it");
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "mine");
    answer(&mut h, "Replace");
    assert!(std::fs::read_to_string(&csv).unwrap().starts_with("series"));
    // PNG: the figure alone at 150 dpi (860 × 540 CSS px), not a screenshot: no adapter needed.
    let png = dir.path().join("map.png");
    h.state_mut().push(Command::Export {
        kind: ExportKind::FigurePng,
        path: png.clone(),
        overwrite: false,
    });
    step_until(&mut h, "the PNG export", |_| png.exists());
    let img = image::open(&png).unwrap().to_rgba8();
    assert_eq!(img.dimensions(), (1344, 844));
    let first = *img.get_pixel(img.width() / 2, img.height() / 2);
    assert!(img.pixels().any(|p| *p != first), "the PNG is blank");
    // The top-left corner is the page (white), not the explorer's dark chrome.
    assert_eq!(img.get_pixel(2, 2).0, [255, 255, 255, 255]);
}

#[test]
fn snapshots_of_the_laws_and_hardware_views() {
    let mut h = harness(quick());
    step_until(&mut h, "the first fit", |a| !a.laws.fitting());
    h.set_size(egui::vec2(960.0, 600.0));
    h.run_steps(3);
    if let Err(e) = h.render() {
        eprintln!("skipped the snapshots: no wgpu adapter ({e})");
        return;
    }
    let opts = egui_kittest::SnapshotOptions::new()
        .threshold(2.0)
        .max_failed_pixels(4000);
    h.snapshot_options("laws_view", &opts);
    h.state_mut().push(Command::ShowView(View::Hardware));
    h.step();
    step_until(&mut h, "the pareto table", |a| {
        a.hardware.prepared.is_some()
    });
    h.run_steps(3);
    h.snapshot_options("hardware_view", &opts);
}

/// Renders every view to `$QS_SHOTS/<view>.png` (default target/shots) for a human to look at:
/// `cargo test --all-features --lib render_every_view -- --ignored`.
#[test]
#[ignore = "writes screenshots for people; run on demand"]
fn render_every_view() {
    let dir = std::env::var("QS_SHOTS").unwrap_or_else(|_| "target/shots".into());
    std::fs::create_dir_all(&dir).unwrap();
    let mut h = harness(Session::default());
    step_until(&mut h, "the first fit", |a| !a.laws.fitting());
    step_until(&mut h, "the bundled runs", |a| !a.models.scanning());
    let first = h.state().models.families.last().map(|f| f.dir.clone());
    if let Some(d) = first {
        h.state_mut().push(Command::OpenModel(d));
    }
    h.step();
    step_until(&mut h, "the tensors", |a| !a.models.loading());
    // A run selected, no tensor: its family's training curves.
    h.run_steps(4);
    h.render()
        .unwrap()
        .save(format!("{dir}/models-curves.png"))
        .unwrap();
    h.state_mut().models.st.tensor = h
        .state()
        .models
        .tensors
        .iter()
        .find(|t| t.quantizable)
        .map(|t| t.name.clone());
    h.state_mut().push(Command::ShowView(View::Quantize));
    h.run_steps(2);
    h.state_mut().quantize.start();
    step_until(&mut h, "the quantize run", |a| {
        a.quantize.running().is_none()
    });
    h.state_mut().push(Command::ShowView(View::Evaluate));
    h.run_steps(2);
    h.state_mut().evaluate.start();
    step_until(&mut h, "the evaluation", |a| a.evaluate.running().is_none());
    h.state_mut().push(Command::ShowView(View::Landscape));
    h.run_steps(2);
    h.state_mut().landscape.start();
    step_until(&mut h, "the landscape", |a| a.landscape.running().is_none());
    for v in View::ALL {
        h.state_mut().push(Command::ShowView(v));
        h.run_steps(4);
        if v == View::Hardware {
            step_until(&mut h, "the pareto table", |a| {
                a.hardware.prepared.is_some()
            });
            h.run_steps(2);
        }
        h.render()
            .unwrap()
            .save(format!("{dir}/{}.png", v.label().to_lowercase()))
            .unwrap();
    }
    h.state_mut().push(Command::TogglePresenter);
    h.run_steps(4);
    h.render()
        .unwrap()
        .save(format!("{dir}/presenter.png"))
        .unwrap();
}

/// Writes the README's figures of the bundled families to `docs/figures/` (SVG, as File →
/// Export figure writes them): `cargo test --all-features --lib write_readme_figures -- --ignored`.
#[test]
#[ignore = "writes the README's figures; run after training"]
fn write_readme_figures() {
    use super::export::figure_svg;
    use super::models::{curves_figure, family_figure, scan_families};
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/figures");
    std::fs::create_dir_all(&out).unwrap();
    let rows = scan_families(&crate::search::runner::bundled_models_dir());
    let write = |name: &str, f: &super::plots::Figure| {
        std::fs::write(out.join(name), figure_svg(f).unwrap()).unwrap();
    };
    write("family-loss-vs-n.svg", &family_figure(&rows));
    // Per family: the largest budget among those with the most sizes bundled.
    for family in ["qs-llama", "qs-neox"] {
        let runs = rows.iter().filter(|r| r.report.family == family);
        let budget = runs
            .clone()
            .map(|r| r.report.budget_tokens)
            .max_by_key(|&b| {
                (
                    runs.clone().filter(|r| r.report.budget_tokens == b).count(),
                    b,
                )
            })
            .unwrap();
        write(
            &format!("{family}-curves.svg"),
            &curves_figure(&rows, family, budget),
        );
    }
}

// The Laws panel on its own (no window).

fn wait_fit(p: &mut LawsPanel) {
    super::wait_for("the fit", 60, || {
        p.poll();
        p.fitting()
    });
}

#[test]
fn fits_in_the_background_and_refits_without_a_size() {
    let st = LawsState {
        source: Source::Synthetic,
        bootstrap: 20,
        ..LawsState::default()
    };
    let mut p = LawsPanel::new(st, crate::jobs::no_waker());
    wait_fit(&mut p);
    let r = p.st.report.clone().expect("a fit");
    assert!(r.r2_log > 0.95, "R² {}", r.r2_log);
    // Truth: A = 2.2, γ_N = 0.35 (σ = 0.08 noise).
    assert!((p.st.params[1] - 2.2).abs() < 0.15 && (p.st.params[2] - 0.35).abs() < 0.05);
    let n_all = r.n_points;
    let largest = *p.sizes().last().unwrap();
    p.st.excluded.push(largest);
    p.start_fit(Some(p.st.params.clone()));
    wait_fit(&mut p);
    assert_eq!(p.st.report.as_ref().unwrap().n_points, n_all - n_all / 6);
    // A new Qb changes the map; a restored session does not refit.
    let before = p.map_figure().unwrap().heat.clone();
    p.st.qb = 256.0;
    assert_ne!(p.map_figure().unwrap().heat, before);
    let again = LawsPanel::new(p.st.clone(), crate::jobs::no_waker());
    assert!(!again.fitting());
    assert_eq!(again.st.params, p.st.params);
}

/// The demo store with a copy of its rows relabelled as a second family of five sizes (qs-neox,
/// `GPTNeoXForCausalLM`, N + 1, ΔL × 1.1): the shape of store the family choice is about.
fn two_family_store(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("two_families.sqlite");
    std::fs::copy(demo_store(), &path).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "INSERT INTO models SELECT replace(model, 'qs-llama', 'qs-neox'), path,
             'GPTNeoXForCausalLM', n_params_non_embedding + 1, n_params_total + 1, train_tokens,
             nll_base, n_windows, ctx FROM models;
         INSERT INTO trials SELECT replace(config_key, 'qs-llama', 'qs-neox'), trial_seed,
             trial_index, replace(model, 'qs-llama', 'qs-neox'), granularity, low, high, method,
             qb, qr_target, qr_achieved, qr_weighting, bits_per_weight, nll_base, nll,
             delta_nll * 1.1, ci_lo, ci_hi, kl_mean, top1, n_tokens, seconds, assignment,
             delta_nll_se, kl_se, window_delta FROM trials;",
    )
    .unwrap();
    path
}

#[test]
fn the_bundled_demo_sweep_is_fitted_one_slice_at_a_time() {
    assert!(demo_store().is_file(), "assets/demo/demo.sqlite is bundled");
    let st = LawsState {
        bootstrap: 0,
        ..LawsState::default()
    };
    let mut p = LawsPanel::new(st, crate::jobs::no_waker());
    assert!(p.error.is_none(), "{:?}", p.error);
    // The default slice is one whose ΔL moves with Qb.
    let want = StoreSlice::new("layer", "mxint4", "bf16");
    assert_eq!(p.st.store_slice.as_ref(), Some(&want));
    let count = |store: &[crate::search::export::ConfigSummary],
                 slice: &StoreSlice,
                 family: Option<&str>| {
        store
            .iter()
            .filter(|c| StoreSlice::of(c) == *slice && family.is_none_or(|f| family_of(c) == f))
            .count()
    };
    // One family (qs-llama, five sizes): all of it is fitted.
    let demo = p.store.clone();
    assert_eq!(p.st.store_family.only(), None);
    assert_eq!(p.data().len(), count(&demo, &want, None));
    assert!(p.sizes().len() >= 5, "every qs-llama size");
    wait_fit(&mut p);
    assert!(p.st.report.is_some());

    // Two families of five sizes each: one is fitted alone by default, the tie going to the
    // family of the first model by name (qs-llama), whatever its architecture is called.
    let tmp = tempfile::tempdir().unwrap();
    let two = two_family_store(tmp.path());
    let st = LawsState {
        bootstrap: 0,
        source: Source::Csv(two.display().to_string()),
        ..LawsState::default()
    };
    let mut p = LawsPanel::new(st, crate::jobs::no_waker());
    assert!(p.error.is_none(), "{:?}", p.error);
    let llama = FamilyChoice::Only("LlamaForCausalLM".into());
    assert_eq!(p.st.store_family, llama);
    let store = p.store.clone();
    let families = store_families(&store);
    assert_eq!(families.len(), 2);
    // Otherwise the family with the most sizes wins, whatever the names.
    let fewer_llama: Vec<_> = store
        .iter()
        .filter(|c| !c.model.contains("qs-llama-s0") && !c.model.contains("qs-llama-s1"))
        .cloned()
        .collect();
    assert_eq!(
        default_family(&fewer_llama, &families, &want).as_deref(),
        Some("GPTNeoXForCausalLM")
    );
    let n = count(&store, &want, llama.only());
    assert!(n > 0 && p.data().len() == n && n < count(&store, &want, None));
    wait_fit(&mut p);
    let other = store_slices(&p.store)
        .into_iter()
        .find(|s| *s != want)
        .unwrap();
    p.set_slice(other.clone());
    assert_eq!(p.st.store_family, llama, "the family stays");
    assert_eq!(p.data().len(), count(&store, &other, llama.only()));
    wait_fit(&mut p);
    p.set_family(FamilyChoice::All);
    assert_eq!(p.data().len(), count(&store, &other, None));
    wait_fit(&mut p);
    let neox = FamilyChoice::Only("GPTNeoXForCausalLM".into());
    p.set_family(neox.clone());
    assert_eq!(p.data().len(), count(&store, &other, neox.only()));
    assert!(
        p.data_note().contains("GPTNeoXForCausalLM"),
        "{}",
        p.data_note()
    );
    wait_fit(&mut p);
    // The choice survives a session; an unknown family falls back to the default.
    let mut st = p.st.clone();
    st.report = None;
    st.bootstrap = 0;
    let again = LawsPanel::new(st.clone(), crate::jobs::no_waker());
    assert_eq!(again.st.store_family, neox);
    st.store_family = FamilyChoice::Only("NoSuchForCausalLM".into());
    let fallback = LawsPanel::new(st, crate::jobs::no_waker());
    assert_eq!(fallback.st.store_family, llama);
}

#[test]
fn a_typed_law_fits_survives_a_session_and_bad_text_is_refused() {
    let st = LawsState {
        source: Source::Synthetic,
        bootstrap: 0,
        ..LawsState::default()
    };
    let mut p = LawsPanel::new(st, crate::jobs::no_waker());
    wait_fit(&mut p);
    let strong = p.st.report.clone().unwrap();
    // The strong law typed by hand fits the same points as well as the built-in.
    p.set_formula(super::laws::EXAMPLE_FORMULA);
    assert_eq!(p.st.law_id, "formula");
    wait_fit(&mut p);
    let typed = p.st.report.clone().expect("a fit of the typed law");
    assert_eq!(typed.formula, super::laws::EXAMPLE_FORMULA);
    assert!(
        (typed.r2_log - strong.r2_log).abs() < 0.01,
        "{} vs {}",
        typed.r2_log,
        strong.r2_log
    );
    assert!(p.map_figure().is_some());
    // Saved and restored without refitting.
    let again = LawsPanel::new(p.st.clone(), crate::jobs::no_waker());
    assert!(!again.fitting());
    assert_eq!(again.law().formula, super::laws::EXAMPLE_FORMULA);
    // A formula without parameters or with a syntax error changes nothing.
    for bad in ["N*Qr", "C*exp(A*Qr"] {
        p.error = None;
        p.set_formula(bad);
        assert!(p.error.is_some(), "{bad}");
        assert_eq!(p.st.formula, super::laws::EXAMPLE_FORMULA);
    }
}

#[test]
fn a_bad_source_falls_back_with_a_message() {
    let st = LawsState {
        source: Source::Csv("/nonexistent/points.csv".into()),
        bootstrap: 0,
        ..LawsState::default()
    };
    let p = LawsPanel::new(st, crate::jobs::no_waker());
    assert_eq!(p.st.source, Source::Synthetic);
    assert!(p
        .error
        .as_deref()
        .unwrap()
        .contains("/nonexistent/points.csv"));
    assert!(!p.data().is_empty());
}

/// Every non-ASCII character in the explorer's string literals has a glyph in the bundled fonts
/// (egui would draw a box for it; the test harness panics on it).
#[test]
fn every_ui_character_has_a_glyph() {
    let sources = [
        include_str!("mod.rs"),
        include_str!("chrome.rs"),
        include_str!("actions.rs"),
        include_str!("laws.rs"),
        include_str!("../figures/laws.rs"),
        include_str!("../figures/gallery.rs"),
        include_str!("../figures/sweep.rs"),
        include_str!("../figures/hardware.rs"),
        include_str!("laws_data.rs"),
        include_str!("help.rs"),
        include_str!("models.rs"),
        include_str!("quantize.rs"),
        include_str!("evaluate.rs"),
        include_str!("sweep.rs"),
        include_str!("sweep_spec.rs"),
        include_str!("table.rs"),
        include_str!("laws/side.rs"),
        include_str!("landscape.rs"),
        include_str!("hardware.rs"),
        include_str!("presenter.rs"),
        include_str!("plots.rs"),
    ];
    let mut chars: Vec<char> = sources
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(|l| l.split('"').skip(1).step_by(2))
        .flat_map(str::chars)
        .filter(|c| !c.is_ascii())
        .collect();
    chars.sort_unstable();
    chars.dedup();
    assert!(
        chars.contains(&'Δ'),
        "the scan finds the UI's characters: {chars:?}"
    );
    let text: String = chars.iter().collect();
    let mut h = Harness::new_ui(move |ui| {
        ui.label(text.as_str());
    });
    h.run();
}

/// Commands reach the views that take them, through the Panel trait: a results store goes to
/// Laws (shown) and Sweep, a landscape slice to Landscape, a spec to Sweep, a checkpoint folder
/// to Models; a spec that cannot be saved is an error notice and the view stays.
#[test]
fn commands_reach_the_views_that_take_them() {
    let mut h = harness(quick());
    step_until(&mut h, "the first fit", |a| !a.laws.fitting());
    let store = super::laws_data::demo_store();
    h.state_mut().push(Command::OpenData(store.clone()));
    h.step();
    assert_eq!(h.state().view(), View::Laws);
    assert_eq!(h.state().sweep.results, store);
    assert_eq!(h.state().hardware.results(), store);
    assert!(
        h.state().laws.data_note().contains("demo.sqlite"),
        "{}",
        h.state().laws.data_note()
    );
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sweeps/demo.ron");
    h.state_mut().push(Command::OpenSpec(spec.clone()));
    h.step();
    assert_eq!(
        (h.state().view(), &h.state().sweep.spec_path),
        (View::Sweep, &spec)
    );
    let dir = tempfile::tempdir().unwrap();
    h.state_mut().sweep.spec_text = "not a spec".into();
    h.state_mut()
        .push(Command::SaveSpec(dir.path().join("s.ron")));
    h.step();
    let last = h.state().notices.last().unwrap().clone();
    assert!(
        last.error && last.text.contains("cannot save the spec"),
        "{last:?}"
    );
    assert_eq!(h.state().view(), View::Sweep);
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny/llama");
    h.state_mut().push(Command::OpenModel(model.clone()));
    h.step();
    assert_eq!(h.state().view(), View::Models);
    assert_eq!(
        h.state().models.st.selected.as_deref(),
        Some(model.display().to_string().as_str())
    );
    assert_eq!(h.state().shared().model_dir, Some(model));
}

/// On the demo store's layer · mxfp4 · bf16 slice ΔL does not fall with Qb (the OCP scale rule
/// clips block maxima), so the strong law's γ_c runs to its lower bound and d to its upper one.
/// The view says so and offers the weak law.
#[test]
fn the_laws_view_flags_a_degenerate_fit_and_offers_the_simpler_law() {
    let mut h = harness(Session {
        laws: LawsState {
            bootstrap: 20,
            store_slice: Some(StoreSlice::new("layer", "mxfp4", "bf16")),
            ..LawsState::default()
        },
        ..Session::default()
    });
    step_until(&mut h, "the first fit", |a| !a.laws.fitting());
    h.run_steps(2);
    let r = h.state().laws.st.report.clone().expect("a fit");
    assert!(
        r.flags
            .iter()
            .any(|f| matches!(f.param.as_deref(), Some("d" | "gamma_c"))),
        "{:?}",
        r.flags
    );
    h.get_by_label_contains("Degenerate fit of unified-strong");
    h.get_by_label("Use the simpler law (unified-weak)").click();
    h.run_steps(2);
    step_until(&mut h, "the weak fit", |a| !a.laws.fitting());
    assert_eq!(h.state().laws.law().id, "unified-weak");
}

#[test]
fn hovering_the_map_reads_the_value_under_the_cursor() {
    let mut h = harness(quick());
    step_until(&mut h, "the first fit", |a| {
        a.laws.st.report.is_some() && !a.laws.fitting()
    });
    h.run_steps(2);
    let rect = h.state().plot_rect.expect("the central panel is drawn");
    // Hover a few points of the central panel until one lands on the map.
    let mut seen = None;
    for fx in [0.5, 0.4, 0.6, 0.3] {
        for fy in [0.5, 0.4, 0.6] {
            let pos = egui::pos2(
                rect.left() + rect.width() * fx,
                rect.top() + rect.height() * fy,
            );
            h.hover_at(pos);
            h.run_steps(2);
            if let Some(t) = super::plots::last_readout(&h.ctx, "laws_map") {
                seen = Some(t);
                break;
            }
        }
        if seen.is_some() {
            break;
        }
    }
    let text = seen.expect("no readout on the map");
    // Axes in data units and the heatmap's value (not its log10).
    assert!(text.contains("N = ") && text.contains("Qr = "), "{text}");
    let dl = text
        .split("ΔL = ")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no ΔL value in {text:?}"));
    assert!(dl > 0.0 && dl < 10.0, "{text}");
}

#[test]
fn export_without_a_dialog_uses_the_visible_save_path() {
    let mut h = harness(quick());
    step_until(&mut h, "the first fit", |a| {
        a.laws.st.report.is_some() && !a.laws.fitting()
    });
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("map-figure");
    h.state_mut().export_path = target.display().to_string();
    h.get_by_label("Export").click();
    h.run_steps(2);
    assert!(
        h.query_by_label("save path").is_some(),
        "the path field is shown"
    );
    h.get_by_label("Save SVG").click();
    let svg = target.with_extension("svg");
    step_until(&mut h, "the SVG export", |_| svg.exists());
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("class=\"colour-bar\""),
        "the map's colour bar"
    );
}

#[test]
fn presenter_mode_shows_the_map_and_the_curve_with_a_band() {
    let mut s = quick();
    s.laws.bootstrap = 40;
    let mut h = harness(s);
    step_until(&mut h, "the first fit", |a| {
        a.laws.st.report.is_some() && !a.laws.fitting()
    });
    h.state_mut().push(Command::TogglePresenter);
    h.run_steps(3);
    assert!(h.state().presenter());
    // The prediction with its 95 % band in big type.
    assert!(h.query_by_label_contains("95 % [").is_some());
    let shared = h.state().shared();
    let l = shared.law.as_ref().unwrap();
    assert!(l.bootstrap.len() >= 20);
    let f = super::presenter::curve(l, 1e9, 1.0, 32.0);
    assert_eq!(
        f.series
            .iter()
            .filter(|s| s.name.starts_with("95 % band"))
            .count(),
        2
    );
    // The band brackets the law.
    let [lo, hi] = super::presenter::band(l, 1e9, 1.0, 32.0).unwrap();
    let mid = super::presenter::predicted(l, 1e9, 1.0, 32.0);
    assert!(lo <= mid && mid <= hi, "{lo} {mid} {hi}");
    // The map is on screen beside it (its figure is computed for the frame).
    assert!(h.state_mut().laws.map_figure().is_some());
}
