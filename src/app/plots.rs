//! Drawing [`Figure`]s (computed in [`crate::figures`], no drawing there) with egui_plot: the
//! heatmap as one cached texture, lines broken at non-finite points, dots, labels, a legend in
//! insertion order. The same figures are written as SVG/PNG/CSV by [`crate::figures::svg`] and
//! [`crate::figures::raster`].

use std::hash::{Hash, Hasher};

use egui::{Color32, RichText, TextureHandle, Ui};
use egui_plot::{
    Bar, BarChart, GridInput, GridMark, HoverPosition, Legend, Line, Plot, PlotImage, PlotPoint,
    PlotPoints, Points, Text,
};

use crate::figures::svg::{pow2_text, value_text};
pub use crate::figures::{
    colour, finite_pieces, human, nice_levels, tick, viridis, Figure, Heat, Label, Mark, Series,
    PALETTE, VIRIDIS_RGB,
};
use crate::figures::{log_marks, pow2_marks};

impl Figure {
    /// Draws the figure with egui_plot into the remaining space (at most `height` points tall
    /// when given).
    pub fn show(&self, ui: &mut Ui, height: Option<f32>) {
        let (x_log, y_log) = (self.x_log, self.y_log);
        let mut plot = Plot::new(self.id.as_str())
            .x_axis_label(self.x_label.as_str())
            .y_axis_label(self.y_label.as_str())
            .x_axis_formatter(move |m, _| tick(m.value, x_log))
            .y_axis_formatter(move |m, _| tick(m.value, y_log));
        if self.heat.is_none() {
            // Entries in the order the series were added (sizes ascending, formats as listed),
            // not sorted by name ("N = 13.9K" would sort after "N = 100K").
            plot = plot.legend(Legend::default().follow_insertion_order(true).position(
                match (self.legend_top, self.legend_left) {
                    (true, false) => egui_plot::Corner::RightTop,
                    (false, false) => egui_plot::Corner::RightBottom,
                    (true, true) => egui_plot::Corner::LeftTop,
                    (false, true) => egui_plot::Corner::LeftBottom,
                },
            ));
        }
        // A heatmap fills the whole frame, so its key goes in a row under the plot instead of
        // a legend over the data.
        let avail = ui.available_height();
        match (height, self.heat.is_some() && avail.is_finite()) {
            (Some(h), true) => plot = plot.height(h.min(avail - KEY_ROW_H).max(120.0)),
            (None, true) => plot = plot.height((avail - KEY_ROW_H).max(120.0)),
            (Some(h), false) => plot = plot.height(h),
            (None, false) => {}
        }
        plot = self.axes(plot);
        // Hovering reads the axes in data units and the heatmap's value under the cursor.
        let ctx = ui.ctx().clone();
        plot = plot.label_formatter(move |pos| {
            let text = match pos {
                HoverPosition::NearDataPoint {
                    plot_name,
                    position,
                    ..
                } => self.readout(position.x, position.y, Some(plot_name)),
                HoverPosition::Elsewhere { position } => self.readout(position.x, position.y, None),
            };
            ctx.data_mut(|d| d.insert_temp(readout_id(&self.id), text.clone()));
            Some(text)
        });
        // A heatmap gets a colour bar on the right, labelled with values.
        if let Some(h) = &self.heat {
            plot = plot.width((ui.available_width() - COLOUR_BAR_W).max(120.0));
            ui.horizontal_top(|ui| {
                let rect = self.draw(ui, plot);
                colour_bar(ui, h, rect);
            });
            self.key_row(ui);
        } else {
            self.draw(ui, plot);
        }
    }

    /// The axes' ticks: powers of two for block sizes, decades or 1-2-5 values on other log
    /// axes (labelled with values), and the names of categorical x positions.
    fn axes<'a>(&'a self, mut plot: Plot<'a>) -> Plot<'a> {
        // Block-size axes are ticked at powers of two.
        let pow2 = |g: GridInput| -> Vec<GridMark> {
            pow2_marks(g.bounds.0, g.bounds.1)
                .into_iter()
                .map(|value| GridMark {
                    value,
                    step_size: std::f64::consts::LOG10_2,
                })
                .collect()
        };
        // Other log axes: decades, else 1-2-5 values, labelled with values (never 3.162).
        // egui_plot labels a mark when its step_size spans enough pixels for the text, so the
        // step is the real gap between marks (two decades when a wide axis keeps every other
        // one), else a wide axis at a large font showed no labels at all.
        let log125 = |g: GridInput| -> Vec<GridMark> {
            let marks = log_marks(g.bounds.0, g.bounds.1);
            let gap = marks
                .windows(2)
                .map(|w| w[1] - w[0])
                .fold(f64::INFINITY, f64::min);
            marks
                .iter()
                .map(|&value| GridMark {
                    value,
                    step_size: if gap.is_finite() { gap.max(0.3) } else { 1.0 },
                })
                .collect()
        };
        if self.x_log && !self.x_base2 {
            plot = plot
                .x_grid_spacer(log125)
                .x_axis_formatter(|m, _| value_text(10f64.powf(m.value)));
        }
        if self.y_log && !self.y_base2 {
            plot = plot
                .y_grid_spacer(log125)
                .y_axis_formatter(|m, _| value_text(10f64.powf(m.value)));
        }
        if self.x_base2 {
            plot = plot
                .x_grid_spacer(pow2)
                .x_axis_formatter(|m, _| pow2_text(m.value));
        }
        if self.y_base2 {
            plot = plot
                .y_grid_spacer(pow2)
                .y_axis_formatter(|m, _| pow2_text(m.value));
        }
        // Categorical x (a bar per configuration): the names, not 0, 1, 2…
        if !self.x_names.is_empty() {
            let names = self.x_names.clone();
            // No vertical grid lines: they would run through the bars' whiskers.
            plot = plot
                .show_grid([false, true])
                .x_grid_spacer(move |g| {
                    // Only names inside the shown range: egui_plot draws a mark just outside
                    // it at the axis's end, where it reads as a stray label.
                    names
                        .iter()
                        .filter(|(value, _)| (g.bounds.0..=g.bounds.1).contains(value))
                        .map(|(value, _)| GridMark {
                            value: *value,
                            step_size: 1.0,
                        })
                        .collect()
                })
                .x_axis_formatter(|m, _| {
                    self.x_names
                        .iter()
                        .find(|(v, _)| (v - m.value).abs() < 1e-9)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_default()
                });
        }
        plot
    }

    /// Draws the plot; returns its frame.
    fn draw(&self, ui: &mut Ui, plot: Plot<'_>) -> egui::Rect {
        let texture = self.heat.as_ref().map(|h| heat_texture(ui, &self.id, h));
        plot.show(ui, |p| {
            if let (Some(h), Some(tex)) = (&self.heat, &texture) {
                // One textured quad (uploaded when the values change), not a shape per cell.
                // Unnamed: the colour bar says what the colours mean, not a legend dot.
                p.image(PlotImage::new(
                    "",
                    tex.id(),
                    PlotPoint::new(h.origin[0] + h.size[0] / 2.0, h.origin[1] + h.size[1] / 2.0),
                    [h.size[0] as f32, h.size[1] as f32],
                ));
            }
            // egui_plot must never see a non-finite coordinate: lines break there (a NaN
            // point separates pieces of one series), dots are dropped.
            // A legend in a bottom corner stacks upwards (egui_plot lays it out bottom-up), so
            // the series go in reverse there and the legend still reads top-down in the
            // figure's order (sizes ascending).
            let series: Vec<&Series> = if self.legend_top {
                self.series.iter().collect()
            } else {
                self.series.iter().rev().collect()
            };
            for s in series {
                let c = Color32::from_rgb(s.rgb[0], s.rgb[1], s.rgb[2]);
                match s.mark {
                    Mark::Line(w) => {
                        for piece in finite_pieces(&s.points) {
                            p.line(
                                Line::new(s.name.as_str(), PlotPoints::from(piece))
                                    .color(c)
                                    .width(w),
                            );
                        }
                    }
                    Mark::Bars(w) => {
                        let bars: Vec<Bar> = s
                            .points
                            .iter()
                            .filter(|q| q[0].is_finite() && q[1].is_finite())
                            .map(|q| {
                                Bar::new(q[0], q[1])
                                    .width(f64::from(w))
                                    .fill(c)
                                    .stroke(egui::Stroke::new(0.5, Color32::BLACK))
                            })
                            .collect();
                        p.bar_chart(BarChart::new(s.name.as_str(), bars).color(c));
                    }
                    Mark::Dots(r) => {
                        let pts: Vec<[f64; 2]> = s
                            .points
                            .iter()
                            .copied()
                            .filter(|q| q[0].is_finite() && q[1].is_finite())
                            .collect();
                        p.points(
                            Points::new(s.name.as_str(), PlotPoints::from(pts))
                                .color(c)
                                .radius(r),
                        );
                    }
                }
            }
            // Labels start at their point (above right of it), as in the SVG; near the right
            // edge they end there instead, and none runs off the left edge.
            let x_split = self
                .bounds()
                .map_or(f64::INFINITY, |(lo, hi)| lo[0] + 0.8 * (hi[0] - lo[0]));
            for l in &self.labels {
                let anchor = if l.at[0] > x_split {
                    egui::Align2::RIGHT_BOTTOM
                } else {
                    egui::Align2::LEFT_BOTTOM
                };
                p.text(
                    Text::new(
                        "",
                        PlotPoint::new(l.at[0], l.at[1]),
                        RichText::new(l.text.as_str())
                            .color(Color32::WHITE)
                            .size(13.0),
                    )
                    .anchor(anchor),
                );
            }
        })
        .response
        .rect
    }
}

/// Height of the key row under a heatmap (points).
const KEY_ROW_H: f32 = 22.0;

impl Figure {
    /// The key of a heatmap figure, off the data: a coloured mark and the name of each named
    /// series, in the order they were added.
    fn key_row(&self, ui: &mut Ui) {
        let mut seen: Vec<&str> = Vec::new();
        ui.horizontal(|ui| {
            ui.set_height(KEY_ROW_H);
            for s in self.series.iter().filter(|s| !s.name.is_empty()) {
                if seen.contains(&s.name.as_str()) {
                    continue;
                }
                seen.push(&s.name);
                let c = Color32::from_rgb(s.rgb[0], s.rgb[1], s.rgb[2]);
                // The mark is painted (the default font has no line or disc glyphs).
                let (rect, _) =
                    ui.allocate_exact_size(egui::vec2(16.0, 12.0), egui::Sense::hover());
                match s.mark {
                    Mark::Line(_) => {
                        ui.painter().line_segment(
                            [rect.left_center(), rect.right_center()],
                            egui::Stroke::new(2.0, c),
                        );
                    }
                    Mark::Dots(_) | Mark::Bars(_) => {
                        ui.painter().circle_filled(rect.center(), 4.0, c);
                    }
                }
                ui.label(s.name.as_str());
                ui.add_space(10.0);
            }
        });
    }
}

fn readout_id(figure: &str) -> egui::Id {
    egui::Id::unique(("quantscape_readout", figure))
}

/// The last hover readout shown on figure `id` (what the tooltip said), if any.
pub fn last_readout(ctx: &egui::Context, id: &str) -> Option<String> {
    ctx.data(|d| d.get_temp::<String>(readout_id(id)))
}

/// Width of the colour bar beside a heatmap (points).
const COLOUR_BAR_W: f32 = 84.0;

/// The heatmap's colour scale as a vertical gradient beside the plot frame `plot`, with tick
/// labels in the quantity's units (values, not exponents) and its name on top.
fn colour_bar(ui: &mut Ui, h: &Heat, plot: egui::Rect) {
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(COLOUR_BAR_W, plot.height()),
        egui::Sense::hover(),
    );
    let bar = egui::Rect::from_min_max(
        egui::pos2(rect.left() + 8.0, rect.top() + 24.0),
        egui::pos2(rect.left() + 22.0, rect.bottom() - 28.0),
    );
    let painter = ui.painter_at(rect);
    let mut mesh = egui::Mesh::default();
    let stops = VIRIDIS_RGB.len() - 1;
    for (i, c) in VIRIDIS_RGB.iter().enumerate() {
        let y = bar.bottom() - bar.height() * i as f32 / stops as f32;
        let col = Color32::from_rgb(c[0], c[1], c[2]);
        mesh.colored_vertex(egui::pos2(bar.left(), y), col);
        mesh.colored_vertex(egui::pos2(bar.right(), y), col);
        if i > 0 {
            let k = (2 * i) as u32;
            mesh.add_triangle(k - 2, k - 1, k);
            mesh.add_triangle(k - 1, k + 1, k);
        }
    }
    painter.add(egui::Shape::mesh(mesh));
    let stroke = ui.visuals().widgets.noninteractive.fg_stroke;
    painter.rect_stroke(bar, 0.0, stroke, egui::StrokeKind::Outside);
    let font = egui::FontId::proportional(12.0);
    for (at, text) in h.bar_ticks() {
        let y = bar.bottom() - bar.height() * at as f32;
        painter.line_segment(
            [egui::pos2(bar.right(), y), egui::pos2(bar.right() + 4.0, y)],
            stroke,
        );
        painter.text(
            egui::pos2(bar.right() + 6.0, y),
            egui::Align2::LEFT_CENTER,
            text,
            font.clone(),
            stroke.color,
        );
    }
    painter.text(
        egui::pos2(bar.left(), rect.top() + 4.0),
        egui::Align2::LEFT_TOP,
        h.name.strip_prefix("log10 ").unwrap_or(&h.name),
        font,
        stroke.color,
    );
}

/// The heatmap as a texture, cached in egui's memory under the figure id and re-uploaded only
/// when the values or the colour range change. Rows are flipped (images run top-down); NaN cells
/// are transparent.
fn heat_texture(ui: &Ui, id: &str, h: &Heat) -> TextureHandle {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    h.nx.hash(&mut hasher);
    for v in h.values.iter().chain(&h.range) {
        v.to_bits().hash(&mut hasher);
    }
    let key = hasher.finish();
    let mem = egui::Id::unique(("quantscape_heat", id));
    let cached = ui
        .ctx()
        .data(|d| d.get_temp::<(u64, TextureHandle)>(mem))
        .filter(|(k, _)| *k == key);
    if let Some((_, t)) = cached {
        return t;
    }
    let nx = h.nx.max(1);
    let ny = h.values.len() / nx;
    let span = (h.range[1] - h.range[0]).max(1e-12);
    let mut pixels = Vec::with_capacity(nx * ny);
    for row in (0..ny).rev() {
        for v in &h.values[row * nx..(row + 1) * nx] {
            pixels.push(if v.is_finite() {
                let c = viridis((v - h.range[0]) / span);
                Color32::from_rgb(c[0], c[1], c[2])
            } else {
                Color32::TRANSPARENT
            });
        }
    }
    let image = egui::ColorImage::new([nx, ny], pixels);
    let t = ui
        .ctx()
        .load_texture(format!("{id}_heat"), image, egui::TextureOptions::NEAREST);
    ui.ctx().data_mut(|d| d.insert_temp(mem, (key, t.clone())));
    t
}
