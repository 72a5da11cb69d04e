//! The explorer's side effects behind [`Command`]s: exports (PNG and SVG of the figure alone,
//! as `quantscape figures` draws it — a screenshot of the plot area only where a view has no
//! figure —, CSV of the figure data, tables), and file dialogs run as jobs so the UI thread
//! never waits on them. Results arrive as notices.

use std::path::PathBuf;

use super::{export, App, Command, ExportKind, Notice, Purpose};
use crate::jobs::Job;

impl App {
    pub(super) fn export(
        &mut self,
        ctx: &egui::Context,
        kind: ExportKind,
        path: PathBuf,
        overwrite: bool,
    ) {
        if path.exists() && !overwrite {
            self.confirm = Some((kind, path));
            return;
        }
        // Built once: the PNG, SVG and CSV exports all draw from it.
        let figure = matches!(
            kind,
            ExportKind::FigurePng | ExportKind::FigureSvg | ExportKind::FigureCsv
        )
        .then(|| self.current_figure())
        .flatten();
        let no_figure = || crate::Error::Input("no figure on screen".into());
        let bytes = match kind {
            // The figure alone, as a paper figure (the same renderer as `quantscape figures`);
            // a view without a figure (a table) falls back to a screenshot of its plot area.
            ExportKind::FigurePng if figure.is_some() => {
                figure.ok_or_else(no_figure).and_then(|f| {
                    crate::figures::raster::figure_png(&f, crate::figures::svg::PAGE, 150.0)
                })
            }
            ExportKind::FigurePng => {
                let Some(rect) = self.plot_rect else {
                    self.notify("no plot on screen to render".into(), true);
                    return;
                };
                let (shots, waker, ppp) = (
                    self.shots.clone(),
                    self.waker.clone(),
                    ctx.pixels_per_point(),
                );
                let cb = egui::ScreenshotCallback::new(move |image| {
                    let region = image.region(&rect, Some(ppp));
                    let rgba: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_array()).collect();
                    let [w, h] = region.size;
                    let r = export::png_bytes(&rgba, w as u32, h as u32)
                        .and_then(|b| export::write_export(&path, &b, overwrite));
                    let n = match r {
                        Ok(()) => Notice {
                            text: format!("exported {}", path.display()),
                            error: false,
                            shown_at: None,
                        },
                        Err(e) => Notice {
                            text: format!("export failed: {e}"),
                            error: true,
                            shown_at: None,
                        },
                    };
                    if let Ok(mut v) = shots.lock() {
                        v.push(n);
                    }
                    waker();
                });
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(cb));
                return;
            }
            ExportKind::FigureSvg => figure
                .ok_or_else(no_figure)
                .and_then(|f| export::figure_svg(&f))
                .map(String::into_bytes),
            ExportKind::FigureCsv => figure
                .map(|f| export::figure_csv(&f).into_bytes())
                .ok_or_else(no_figure),
            ExportKind::TableCsv => {
                let (h, rows) = self.current_table();
                let h: Vec<&str> = h.iter().map(String::as_str).collect();
                Ok(export::table_csv(&h, &rows).into_bytes())
            }
        };
        self.finish_export(bytes, &path, overwrite);
    }

    fn finish_export(
        &mut self,
        bytes: crate::Result<Vec<u8>>,
        path: &std::path::Path,
        overwrite: bool,
    ) {
        match bytes.and_then(|b| export::write_export(path, &b, overwrite)) {
            Ok(()) => self.notify(format!("exported {}", path.display()), false),
            Err(e) => self.notify(format!("export failed: {e}"), true),
        }
    }

    /// Moves messages from finished screenshot exports into the notices.
    pub(super) fn collect_shots(&mut self) {
        let done: Vec<Notice> = match self.shots.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => Vec::new(),
        };
        self.notices.extend(done);
    }

    pub(super) fn pick(&mut self, purpose: Purpose) {
        if self.dialog.is_some() {
            return;
        }
        self.dialog = Some(Job::spawn("file dialog", self.waker.clone(), move |_| {
            let d = rfd::FileDialog::new();
            let path = match purpose {
                Purpose::SaveSession => d
                    .add_filter("session", &["ron"])
                    .set_file_name("session.ron")
                    .save_file(),
                Purpose::LoadSession => d.add_filter("session", &["ron"]).pick_file(),
                Purpose::OpenData => d
                    .add_filter("points", &["csv", "sqlite", "db", "json"])
                    .pick_file(),
                Purpose::OpenModel => d.pick_folder(),
                Purpose::OpenSpec => d.add_filter("sweep spec", &["ron"]).pick_file(),
                Purpose::SaveSpec => d
                    .add_filter("sweep spec", &["ron"])
                    .set_file_name("sweep.ron")
                    .save_file(),
                Purpose::Export(k) => d
                    .set_file_name(format!("quantscape.{}", k.extension()))
                    .save_file(),
            };
            Ok(path.map(|p| (purpose, p)))
        }));
    }

    pub(super) fn poll_dialog(&mut self) {
        let Some(job) = &mut self.dialog else { return };
        let Some(r) = job.poll() else { return };
        self.dialog = None;
        match r {
            Ok(Some((purpose, path))) => self.commands.push(match purpose {
                Purpose::SaveSession => Command::SaveSession(path),
                Purpose::LoadSession => Command::LoadSession(path),
                Purpose::OpenData => Command::OpenData(path),
                Purpose::OpenModel => Command::OpenModel(path),
                Purpose::OpenSpec => Command::OpenSpec(path),
                Purpose::SaveSpec => Command::SaveSpec(path),
                // The dialog itself asked about replacing an existing file.
                Purpose::Export(kind) => Command::Export {
                    kind,
                    path,
                    overwrite: true,
                },
            }),
            Ok(None) => {}
            Err(e) => self.notify(format!("file dialog failed: {e}"), true),
        }
    }
}
