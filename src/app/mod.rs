//! The explorer (feature `gui`): the only module that imports egui. [`App`] is the runtime
//! (panels, jobs, file dialogs, notifications); [`session::Session`] is what it saves. Seven
//! views — Models, Quantize, Evaluate, Laws, Sweep, Landscape, Hardware — and a presenter mode
//! (F5). Each view is a [`Panel`]: `App` talks to it only through that trait and through
//! [`Command`]s, and every frame collects what the panels offer one another into a [`Shared`]
//! (the chosen checkpoint, the fitted law, the sweep's store). Panels build the task layer's
//! requests ([`crate::tasks`]) and run them as [`crate::jobs::Job`]s whose waker requests a
//! repaint, so the UI thread never blocks.
//!
//! Flow per frame: drain the queued [`Command`]s, poll every panel's jobs, draw the open view;
//! UI code pushes `Command`s (menus, keys, dropped files, file dialogs, tests), so every action
//! goes through one place. Errors become dismissible notices; a corrupt session or a failed
//! export never stops the app.

mod actions;
mod chrome;
pub(crate) use chrome::{checkpoint_row, error_row, job_controls, JobAction};
pub mod evaluate;
pub mod export;
pub mod hardware;
pub mod help;
pub mod landscape;
pub mod laws;
pub mod laws_data;
pub use crate::figures::laws as laws_figs;
pub mod models;
pub mod panel;
pub mod plots;
mod presenter;
pub mod quantize;
pub use crate::session;
pub mod sweep;
pub mod sweep_spec;
pub mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_measure;

use std::path::PathBuf;
use std::sync::Arc;

use egui::Ui;

use crate::jobs::{Job, Waker};
use hardware::HardwarePanel;
use laws::LawsPanel;
use models::ModelsPanel;
pub use panel::{Panel, Shared};
use plots::Figure;
pub use session::{Session, View};

/// What can be exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// The figure on screen, rendered (PNG).
    FigurePng,
    /// The figure on screen as vector graphics.
    FigureSvg,
    /// The figure's data.
    FigureCsv,
    /// The table on screen.
    TableCsv,
}

impl ExportKind {
    fn extension(self) -> &'static str {
        match self {
            ExportKind::FigurePng => "png",
            ExportKind::FigureSvg => "svg",
            ExportKind::FigureCsv | ExportKind::TableCsv => "csv",
        }
    }
}

/// What a file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Save the session.
    SaveSession,
    /// Load a session.
    LoadSession,
    /// Open points for the Laws view (CSV or results store).
    OpenData,
    /// Open a checkpoint folder in the Models view.
    OpenModel,
    /// Choose a sweep spec.
    OpenSpec,
    /// Save the Sweep view's edited spec.
    SaveSpec,
    /// Export something.
    Export(ExportKind),
}

/// Every action of the explorer.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Switch view.
    ShowView(View),
    /// Enter or leave presenter mode.
    TogglePresenter,
    /// Dark ↔ light.
    ToggleTheme,
    /// Ask for a path (file dialog job), then run the matching command.
    Pick(Purpose),
    /// Write the session.
    SaveSession(PathBuf),
    /// Replace the session with a saved one.
    LoadSession(PathBuf),
    /// Open points for the Laws view.
    OpenData(PathBuf),
    /// Open a checkpoint folder.
    OpenModel(PathBuf),
    /// Choose the sweep spec of the Sweep view.
    OpenSpec(PathBuf),
    /// Write the Sweep view's edited spec to a file (and run from it).
    SaveSpec(PathBuf),
    /// Export to a path; an existing file is replaced only with `overwrite`.
    Export {
        /// What.
        kind: ExportKind,
        /// Where.
        path: PathBuf,
        /// Replace an existing file.
        overwrite: bool,
    },
}

/// A dismissible message. Information expires [`NOTICE_SECS`] after it is first shown; an
/// error stays until dismissed.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// Text.
    pub text: String,
    /// Error (red) or information.
    pub error: bool,
    /// When it was first drawn (egui time, seconds); None until then.
    pub shown_at: Option<f64>,
}

/// Seconds an information notice stays on screen.
pub const NOTICE_SECS: f64 = 6.0;

/// The running explorer.
pub struct App {
    view: View,
    presenter: bool,
    dark: bool,
    /// Laws view.
    pub laws: LawsPanel,
    /// Models view.
    pub models: ModelsPanel,
    /// Hardware view.
    pub hardware: HardwarePanel,
    /// Sweep view.
    pub sweep: sweep::SweepPanel,
    /// Quantize view.
    pub quantize: quantize::QuantizePanel,
    /// Evaluate view.
    pub evaluate: evaluate::EvaluatePanel,
    /// Landscape view.
    pub landscape: landscape::LandscapePanel,
    commands: Vec<Command>,
    /// Messages on screen.
    pub notices: Vec<Notice>,
    dialog: Option<Job<Option<(Purpose, PathBuf)>>>,
    confirm: Option<(ExportKind, PathBuf)>,
    shots: Arc<std::sync::Mutex<Vec<Notice>>>,
    plot_rect: Option<egui::Rect>,
    /// The Export menu's save path (for machines without a file dialog): a file path whose
    /// extension is set by the kind exported.
    pub export_path: String,
    /// Model size on presenter mode's slider (its own: it does not move the Hardware target).
    pub presenter_n: f64,
    waker: Waker,
}

impl App {
    /// An app on the bundled demo with a fresh session.
    pub fn new(ctx: &egui::Context) -> Self {
        Self::with_session(ctx, Session::default())
    }

    /// An app restoring `session`.
    pub fn with_session(ctx: &egui::Context, session: Session) -> Self {
        let c = ctx.clone();
        let waker: Waker = Arc::new(move || c.request_repaint());
        let mut laws = LawsPanel::new(session.laws, waker.clone());
        let demo = laws.demo_read.take();
        let mut app = Self {
            view: session.view,
            presenter: false,
            dark: session.dark,
            laws,
            models: ModelsPanel::new(session.models, waker.clone()),
            presenter_n: session.hardware.target_n,
            hardware: HardwarePanel::new(session.hardware, waker.clone()),
            sweep: sweep::SweepPanel::new(session.sweep, waker.clone(), demo),
            quantize: quantize::QuantizePanel::new(session.quantize, waker.clone()),
            evaluate: evaluate::EvaluatePanel::new(session.evaluate, waker.clone()),
            landscape: landscape::LandscapePanel::new(session.landscape, waker.clone()),
            commands: Vec::new(),
            notices: Vec::new(),
            dialog: None,
            confirm: None,
            shots: Arc::default(),
            plot_rect: None,
            export_path: std::env::current_dir()
                .unwrap_or_default()
                .join("quantscape-figure")
                .display()
                .to_string(),
            waker,
        };
        if session.presenter {
            app.commands.push(Command::TogglePresenter);
        }
        ctx.set_theme(if app.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        app
    }

    /// The session as it would be saved now.
    pub fn session(&self) -> Session {
        let mut s = Session {
            view: self.view,
            presenter: self.presenter,
            dark: self.dark,
            ..Session::default()
        };
        for p in self.panels() {
            p.save(&mut s);
        }
        s
    }

    /// The open view.
    pub fn view(&self) -> View {
        self.view
    }

    /// Whether presenter mode is on.
    pub fn presenter(&self) -> bool {
        self.presenter
    }

    /// Queues a command (run at the start of the next frame).
    pub fn push(&mut self, c: Command) {
        self.commands.push(c);
    }

    fn notify(&mut self, text: String, error: bool) {
        self.notices.push(Notice {
            text,
            error,
            shown_at: None,
        });
    }

    /// Every panel, in tab order.
    pub fn panels(&self) -> [&dyn Panel; 7] {
        [
            &self.models,
            &self.quantize,
            &self.evaluate,
            &self.laws,
            &self.sweep,
            &self.landscape,
            &self.hardware,
        ]
    }

    /// The panel of view `v`.
    pub fn panel_mut(&mut self, v: View) -> &mut dyn Panel {
        match v {
            View::Models => &mut self.models,
            View::Quantize => &mut self.quantize,
            View::Evaluate => &mut self.evaluate,
            View::Laws => &mut self.laws,
            View::Sweep => &mut self.sweep,
            View::Landscape => &mut self.landscape,
            View::Hardware => &mut self.hardware,
        }
    }

    /// What the panels offer one another now.
    pub fn shared(&self) -> Shared {
        let mut s = Shared::default();
        for p in self.panels() {
            p.publish(&mut s);
        }
        s
    }

    /// Whether any panel's job runs.
    pub fn busy(&self) -> bool {
        self.panels().iter().any(|p| p.busy())
    }

    /// The figure of the open view.
    pub fn current_figure(&mut self) -> Option<Figure> {
        let shared = self.shared();
        self.panel_mut(self.view).figure(&shared)
    }

    /// The table of the open view: (header, rows).
    pub fn current_table(&mut self) -> (Vec<String>, Vec<Vec<String>>) {
        let shared = self.shared();
        self.panel_mut(self.view).table(&shared)
    }

    /// Runs the queued commands.
    pub fn drain_commands(&mut self, ctx: &egui::Context) {
        for c in std::mem::take(&mut self.commands) {
            self.run_command(ctx, c);
        }
    }

    fn run_command(&mut self, ctx: &egui::Context, c: Command) {
        match c {
            Command::ShowView(v) => self.view = v,
            Command::TogglePresenter => {
                self.presenter = !self.presenter;
                ctx.set_zoom_factor(if self.presenter { 1.5 } else { 1.0 });
                // Projectors wash out dark themes: presenter mode is light; leaving restores
                // the chosen theme.
                ctx.set_theme(if self.presenter || !self.dark {
                    egui::Theme::Light
                } else {
                    egui::Theme::Dark
                });
            }
            Command::ToggleTheme => {
                self.dark = !self.dark;
                ctx.set_theme(if self.dark {
                    egui::Theme::Dark
                } else {
                    egui::Theme::Light
                });
            }
            Command::Pick(p) => self.pick(p),
            Command::SaveSession(path) => match self.session().save(&path) {
                Ok(()) => self.notify(format!("saved the session to {}", path.display()), false),
                Err(e) => self.notify(format!("cannot save the session: {e}"), true),
            },
            Command::LoadSession(path) => match Session::load(&path) {
                Ok(s) => {
                    let presenter = self.presenter;
                    let notices = std::mem::take(&mut self.notices);
                    *self = Self::with_session(ctx, s);
                    if presenter && !self.presenter {
                        ctx.set_zoom_factor(1.0);
                    }
                    self.notices = notices;
                    self.notify(format!("loaded the session {}", path.display()), false);
                }
                Err(e) => self.notify(format!("cannot load the session: {e}"), true),
            },
            c @ (Command::OpenData(_)
            | Command::OpenSpec(_)
            | Command::SaveSpec(_)
            | Command::OpenModel(_)) => self.dispatch(&c),
            Command::Export {
                kind,
                path,
                overwrite,
            } => self.export(ctx, kind, path, overwrite),
        }
    }

    /// Hands a command to every panel that takes it: their notices are shown, and an `Open…`
    /// command switches to the first view that took it.
    fn dispatch(&mut self, c: &Command) {
        let mut first = None;
        for v in View::ALL {
            match self.panel_mut(v).handle(c) {
                None => continue,
                Some(Ok(note)) if note.is_empty() => {}
                Some(Ok(note)) => self.notify(note, false),
                Some(Err(e)) => {
                    let what = match c {
                        Command::SaveSpec(_) => "cannot save the spec",
                        _ => "cannot open it",
                    };
                    self.notify(format!("{what}: {e}"), true);
                }
            }
            first.get_or_insert(v);
        }
        if !matches!(c, Command::SaveSpec(_)) {
            if let Some(v) = first {
                self.view = v;
            }
        }
    }

    fn handle_input(&mut self, ctx: &egui::Context) {
        let (f5, esc, dropped) = ctx.input(|i| {
            (
                i.key_pressed(egui::Key::F5),
                i.key_pressed(egui::Key::Escape),
                i.raw
                    .dropped_files
                    .iter()
                    .map(|f| f.path().to_path_buf())
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect::<Vec<_>>(),
            )
        });
        if f5 || (esc && self.presenter) {
            self.commands.push(Command::TogglePresenter);
        }
        for p in dropped {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            self.commands.push(match ext.as_str() {
                _ if p.is_dir() => Command::OpenModel(p),
                "ron" => ron_command(p),
                _ => Command::OpenData(p),
            });
        }
    }

    /// Draws one frame into `ui`.
    pub fn show(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        self.drain_commands(&ctx);
        for v in View::ALL {
            self.panel_mut(v).poll(&ctx);
        }
        self.poll_dialog();
        self.collect_shots();
        self.handle_input(&ctx);
        if self.presenter {
            presenter::show(self, ui);
            return;
        }
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        self.expire_notices(ui.ctx());
        if !self.notices.is_empty() || self.confirm.is_some() {
            // A band under the menu bar: it pushes the view down while it is shown instead of
            // covering its first rows (table headers), and information expires.
            egui::Panel::top("notices").show(ui, |ui| self.notices_ui(ui));
        }
        let shared = self.shared();
        let mut commands = Vec::new();
        let view = self.view;
        let rect = egui::CentralPanel::default()
            .show(ui, |ui| self.panel_mut(view).ui(ui, &shared, &mut commands))
            .response
            .rect;
        self.commands.extend(commands);
        self.plot_rect = Some(rect);
    }
}

/// What a dropped `.ron` file is: a sweep spec when it parses as one or names `SweepSpec` as its
/// top-level struct (then the Sweep view shows what is wrong with it), else a session.
fn ron_command(p: PathBuf) -> Command {
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    let spec = crate::search::SweepSpec::from_ron(&text, &p.display().to_string()).is_ok()
        || top_level_struct(&text) == Some("SweepSpec");
    if spec {
        Command::OpenSpec(p)
    } else {
        Command::LoadSession(p)
    }
}

/// The struct name a RON text opens with (`SweepSpec` in `SweepSpec(name: …)`), after
/// whitespace, comments and `#![enable(…)]` attributes; None for an anonymous `(…)`.
fn top_level_struct(text: &str) -> Option<&str> {
    let mut t = text.trim_start();
    loop {
        if let Some(rest) = t.strip_prefix("//") {
            t = rest.split_once('\n').map_or("", |x| x.1).trim_start();
        } else if let Some(rest) = t.strip_prefix("/*") {
            t = rest.split_once("*/").map_or("", |x| x.1).trim_start();
        } else if let Some(rest) = t.strip_prefix("#!") {
            t = rest.split_once(']').map_or("", |x| x.1).trim_start();
        } else {
            break;
        }
    }
    let end = t
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    (end > 0).then(|| &t[..end])
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = self.session().to_ron() {
            storage.set_string(STORAGE_KEY, text);
        }
    }
}

/// Key of the last session in eframe's storage.
const STORAGE_KEY: &str = "quantscape_session";

/// Opens the explorer window (blocks until it is closed), restoring the last session, or
/// loading `session` (a file saved with File → Save session) when given — a file that cannot
/// be loaded is a notice, and the app starts on the last session.
pub fn run(session: Option<PathBuf>) -> crate::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_title("quantscape"),
        ..Default::default()
    };
    eframe::run_native(
        "quantscape",
        options,
        Box::new(|cc| {
            let saved = cc.storage.and_then(|s| s.get_string(STORAGE_KEY));
            let (restored, problem) = match saved.map(|t| Session::from_ron(&t, "last session")) {
                Some(Ok(s)) => (s, None),
                Some(Err(e)) => (Session::default(), Some(e.to_string())),
                None => (Session::default(), None),
            };
            let mut app = App::with_session(&cc.egui_ctx, restored);
            if let Some(p) = problem {
                app.notify(format!("started fresh: {p}"), true);
            }
            if let Some(path) = session {
                app.push(Command::LoadSession(path));
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| {
        crate::Error::Input(format!(
            "cannot open the explorer window: {e} (no display? run it under a desktop session \
             or `xvfb-run`, or use a subcommand: `quantscape --help`)"
        ))
    })
}

/// Test helper: runs `busy` (poll a panel, say whether its job still runs) until it says no;
/// fails after `secs` seconds naming `what`.
#[cfg(test)]
pub(crate) fn wait_for(what: &str, secs: u64, mut busy: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while busy() {
        assert!(t.elapsed().as_secs() < secs, "{what} did not finish");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(test)]
mod ron_tests {
    #[test]
    fn the_top_level_struct_names_a_ron_file() {
        use super::top_level_struct as t;
        assert_eq!(t("SweepSpec(name: \"x\")"), Some("SweepSpec"));
        assert_eq!(t("// a comment with SweepSpec(\n(version: 1)"), None);
        assert_eq!(
            t("/* c */ #![enable(implicit_some)]\n  SweepSpec (a: 1)"),
            Some("SweepSpec")
        );
        assert_eq!(t("(view: Laws, note: \"SweepSpec(\")"), None);
        assert_eq!(t(""), None);
    }
}
