//! One way to draw a table in the explorer: a striped grid with a strong header row; optional
//! clickable headers (sorting) and selectable first cells (picking a row). Cells are the same
//! strings the view exports to CSV, so what is on screen is what is exported.

use egui::{RichText, Ui};

/// What the user clicked this frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clicked {
    /// A header cell (when headers are clickable).
    pub header: Option<usize>,
    /// A row's first cell (when rows are selectable).
    pub row: Option<usize>,
}

/// How the header and the rows react.
#[derive(Default)]
pub struct Interact<'a> {
    /// Headers are clickable; the function says which one is highlighted.
    pub header_on: Option<&'a dyn Fn(usize) -> bool>,
    /// First cells are selectable; the function says which row is selected.
    pub row_on: Option<&'a dyn Fn(usize) -> bool>,
}

/// Draws `rows` under `header` as grid `id`.
pub fn table_ui<H: AsRef<str>>(
    ui: &mut Ui,
    id: &str,
    header: &[H],
    rows: &[Vec<String>],
    how: &Interact<'_>,
) -> Clicked {
    let mut clicked = Clicked::default();
    egui::Grid::new(id).striped(true).show(ui, |ui| {
        for (i, h) in header.iter().enumerate() {
            let text = RichText::new(h.as_ref()).strong();
            match how.header_on {
                Some(on) => {
                    if ui.selectable_label(on(i), text).clicked() {
                        clicked.header = Some(i);
                    }
                }
                None => {
                    ui.label(text);
                }
            }
        }
        ui.end_row();
        for (r, row) in rows.iter().enumerate() {
            let mut cells = row.iter();
            if let (Some(on), Some(first)) = (how.row_on, row.first()) {
                cells.next();
                if ui.selectable_label(on(r), first).clicked() {
                    clicked.row = Some(r);
                }
            }
            for c in cells {
                ui.label(c);
            }
            ui.end_row();
        }
    });
    clicked
}
