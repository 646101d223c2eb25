//! DET plots with probit axes, rendered as SVG or PNG from one geometry.
//!
//! [`DetLayout`] holds the geometry (the probit mapping of probabilities to pixels, the ticks, the
//! half-pixel thinning of curves, the legend box); [`DetPlot`] walks it once, back to front,
//! calling a small drawing interface (line, rectangle, curve, text) that each renderer implements,
//! so the two files put every point at the same pixel. The PNG is rasterised with `tiny-skia`
//! (anti-aliased strokes) and its text drawn with the bitmap fonts compiled into
//! `embedded-graphics`: nothing is read from the system (no font files).

use std::convert::Infallible;
use std::fmt::Write as _;

use embedded_graphics::mono_font::{iso_8859_1, MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Point, Size};
use embedded_graphics::text::{Alignment, Text};
use embedded_graphics::{Drawable, Pixel};

use super::{probit, DetPoint, MetricsError};

/// An sRGB colour, 8 bits per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb([u8; 3]);

impl Rgb {
    fn hex(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

/// Curve colours, one per system in the order added (cycled after eight).
const PLOT_COLOURS: [Rgb; 8] = [
    Rgb([0x1f, 0x77, 0xb4]),
    Rgb([0xd6, 0x27, 0x28]),
    Rgb([0x2c, 0xa0, 0x2c]),
    Rgb([0xff, 0x7f, 0x0e]),
    Rgb([0x94, 0x67, 0xbd]),
    Rgb([0x8c, 0x56, 0x4b]),
    Rgb([0xe3, 0x77, 0xc2]),
    Rgb([0x17, 0xbe, 0xcf]),
];
const GRID: Rgb = Rgb([0xdd, 0xdd, 0xdd]);
const INK: Rgb = Rgb([0, 0, 0]);
/// Stroke width of a system's curve (px).
const CURVE_WIDTH_PX: f64 = 2.0;
/// Stroke width of a legend sample line (px).
const LEGEND_WIDTH_PX: f64 = 2.0;

/// Where a DET plot puts things, in pixels of its square canvas (origin at the top-left corner,
/// y growing downwards): the one geometry that [`DetPlot::to_svg`] and [`DetPlot::to_png`] share.
///
/// Both axes are probit-scaled probabilities between the plot's limits: P_fa on x (growing
/// rightwards), P_miss on y (growing upwards), inside a frame [`Self::MARGIN_PX`] from each edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetLayout {
    /// probit of the smallest probability shown.
    lo: f64,
    /// probit of the largest probability shown.
    hi: f64,
}

impl DetLayout {
    /// Width and height of the canvas (px).
    pub const CANVAS_PX: u32 = 600;
    /// Distance from each canvas edge to the plot frame (px).
    pub const MARGIN_PX: f64 = 70.0;
    /// Candidate grid ticks (%), drawn where they fall inside the axis range.
    pub const TICKS_PERCENT: [f64; 13] = [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 60.0,
    ];

    /// The layout for axes running from `min_probability` to `max_probability` (fractions).
    /// Out-of-range or NaN limits are clamped or fall back to the defaults (0.001 and 0.5)
    /// rather than fail: min to [1e-9, 0.49], max to [0.01, 1 − 1e-9], and the axis spans at
    /// least 0.1 in probit units.
    pub fn new(min_probability: f64, max_probability: f64) -> Self {
        let min_p = if min_probability.is_finite() {
            min_probability.clamp(1e-9, 0.49)
        } else {
            0.001
        };
        let max_p = if max_probability.is_finite() {
            max_probability.clamp(0.01, 1.0 - 1e-9)
        } else {
            0.5
        };
        let lo = probit(min_p);
        let hi = probit(max_p).max(lo + 0.1);
        Self { lo, hi }
    }

    fn canvas() -> f64 {
        f64::from(Self::CANVAS_PX)
    }

    /// Side of the square plot frame (px).
    pub fn frame_side_px() -> f64 {
        Self::canvas() - 2.0 * Self::MARGIN_PX
    }

    /// Fraction (0 at the low limit, 1 at the high) of the axis where probability `p` lies,
    /// clamped to the axis.
    fn axis_fraction(&self, p: f64) -> f64 {
        (probit(p).clamp(self.lo, self.hi) - self.lo) / (self.hi - self.lo)
    }

    /// Horizontal pixel coordinate of a false-alarm probability `p_fa` (fraction), clamped to
    /// the frame.
    pub fn x_px(&self, p_fa: f64) -> f64 {
        Self::MARGIN_PX + self.axis_fraction(p_fa) * Self::frame_side_px()
    }

    /// Vertical pixel coordinate of a miss probability `p_miss` (fraction), clamped to the frame.
    pub fn y_px(&self, p_miss: f64) -> f64 {
        Self::canvas() - Self::MARGIN_PX - self.axis_fraction(p_miss) * Self::frame_side_px()
    }

    /// The ticks of [`Self::TICKS_PERCENT`] inside the axis range (%), in increasing order.
    pub fn visible_ticks_percent(&self) -> impl Iterator<Item = f64> + '_ {
        Self::TICKS_PERCENT.into_iter().filter(|&tick| {
            let z = probit(tick / 100.0);
            z >= self.lo - 1e-9 && z <= self.hi + 1e-9
        })
    }

    /// A curve's vertices (px, px): each point mapped, dropping any point closer than half a
    /// pixel on both axes to the last one kept (a DET curve of 10⁵ trials would otherwise be
    /// megabytes of SVG, and the dropped points are invisible at this scale).
    pub fn curve_px(&self, points: &[DetPoint]) -> Vec<(f64, f64)> {
        let mut vertices: Vec<(f64, f64)> = Vec::new();
        for point in points {
            let (x, y) = (self.x_px(point.p_fa), self.y_px(point.p_miss));
            if let Some(&(last_x, last_y)) = vertices.last() {
                if (x - last_x).abs() < 0.5 && (y - last_y).abs() < 0.5 {
                    continue;
                }
            }
            vertices.push((x, y));
        }
        vertices
    }

    /// The legend box for `rows` systems whose longest name has `longest_name_chars`
    /// characters: top-left corner and size (px), in the frame's upper-right corner, 6 px in
    /// from it. Names are measured at [`Self::LEGEND_CHAR_PX`] a character; a box wider than the
    /// frame starts at the frame's left side and runs off the canvas (the names are clipped).
    pub fn legend_box_px(longest_name_chars: usize, rows: usize) -> ((f64, f64), (f64, f64)) {
        let width = 2.0 * LEGEND_PAD_PX
            + LEGEND_SAMPLE_PX
            + LEGEND_GAP_PX
            + Self::LEGEND_CHAR_PX * longest_name_chars as f64;
        let height = 2.0 * LEGEND_PAD_PX + LEGEND_ROW_PX * rows as f64;
        let far = Self::canvas() - Self::MARGIN_PX;
        let left = (far - 6.0 - width).max(Self::MARGIN_PX + 6.0);
        ((left, Self::MARGIN_PX + 6.0), (width, height))
    }

    /// Width allowed for each character of a legend name (px): the PNG's 6 × 10 bitmap font
    /// needs 6, the SVG's 11 px sans-serif up to about 7 for capitals and digits.
    pub const LEGEND_CHAR_PX: f64 = 7.0;

    /// Left end of the legend sample line of the `index`-th system in a legend box whose
    /// top-left corner is `box_corner` (px, px); the line is 20 px long and its name starts 5 px
    /// after it, baseline 4 px below the line.
    pub fn legend_line_start_px(box_corner: (f64, f64), index: usize) -> (f64, f64) {
        (
            box_corner.0 + LEGEND_PAD_PX,
            box_corner.1 + LEGEND_PAD_PX + LEGEND_ROW_PX * (index as f64 + 0.5),
        )
    }
}

/// Padding inside the legend box (px).
const LEGEND_PAD_PX: f64 = 6.0;
/// Height of a legend row (px).
const LEGEND_ROW_PX: f64 = 16.0;
/// Length of a legend sample line (px).
const LEGEND_SAMPLE_PX: f64 = 20.0;
/// Gap between a legend sample line and its name (px).
const LEGEND_GAP_PX: f64 = 5.0;
/// Opacity of the legend box's white fill (curves behind it show faintly).
const LEGEND_FILL_OPACITY: f64 = 0.85;

/// Where a text's anchor point lies along it (as SVG's `text-anchor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Start,
    Middle,
    End,
}

/// The three text sizes of the plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextSize {
    Tick,
    Axis,
    Title,
}

impl TextSize {
    /// Font size in the SVG (px).
    fn svg_px(self) -> u32 {
        match self {
            Self::Tick => 11,
            Self::Axis => 13,
            Self::Title => 15,
        }
    }

    /// Bitmap fonts for the PNG, the preferred first, then smaller ones for a text that would
    /// not fit on the canvas.
    fn png_fonts(self) -> &'static [MonoFont<'static>] {
        const FONTS: [MonoFont<'static>; 3] = [
            iso_8859_1::FONT_9X15,
            iso_8859_1::FONT_7X13,
            iso_8859_1::FONT_6X10,
        ];
        match self {
            Self::Title => &FONTS,
            Self::Axis => &FONTS[1..],
            Self::Tick => &FONTS[2..],
        }
    }
}

/// What a renderer draws on, in pixel coordinates; [`DetPlot::draw`] calls it back to front
/// after the white background.
trait Canvas {
    /// A straight line.
    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: Rgb, width_px: f64);
    /// A rectangle outlined 1 px wide, filled white with an opacity in (0, 1] when given.
    fn rect(
        &mut self,
        corner: (f64, f64),
        size: (f64, f64),
        stroke: Rgb,
        white_fill_opacity: Option<f64>,
    );
    /// An open polyline with round joins; fewer than two vertices draw nothing visible.
    fn curve(&mut self, vertices: &[(f64, f64)], colour: Rgb, width_px: f64);
    /// A line of text in the ink colour whose baseline passes through `at`; `vertical` turns
    /// it a quarter turn counter-clockwise about `at` (reading upwards).
    fn text(&mut self, text: &str, at: (f64, f64), anchor: Anchor, size: TextSize, vertical: bool);
}

/// A DET plot of one or more systems, rendered as a self-contained SVG ([`Self::to_svg`]) or a
/// PNG ([`Self::to_png`]) with probit axes; both from the same [`DetLayout`].
#[derive(Debug, Clone)]
pub struct DetPlot {
    title: String,
    systems: Vec<(String, Vec<DetPoint>)>,
    /// Smallest probability shown on both axes (fraction). Default 0.001 (0.1 %).
    pub min_probability: f64,
    /// Largest probability shown on both axes (fraction). Default 0.5 (50 %).
    pub max_probability: f64,
}

impl DetPlot {
    /// An empty plot with a title (escaped when rendered).
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            systems: Vec::new(),
            min_probability: 0.001,
            max_probability: 0.5,
        }
    }

    /// Adds a system's curve (from [`super::det_curve`]) under a legend name.
    pub fn add_system(&mut self, name: &str, points: Vec<DetPoint>) {
        self.systems.push((name.to_owned(), points));
    }

    /// The geometry of this plot's axes (from its probability limits).
    pub fn layout(&self) -> DetLayout {
        DetLayout::new(self.min_probability, self.max_probability)
    }

    /// Draws everything after the white background, back to front: title, grid and tick
    /// labels, frame, axis labels, curves, legend.
    fn draw(&self, canvas: &mut impl Canvas) {
        let layout = self.layout();
        let size = DetLayout::canvas();
        let margin = DetLayout::MARGIN_PX;
        let far = size - margin;
        canvas.text(
            &self.title,
            (size / 2.0, 30.0),
            Anchor::Middle,
            TextSize::Title,
            false,
        );
        for tick in layout.visible_ticks_percent() {
            let p = tick / 100.0;
            let (x, y) = (layout.x_px(p), layout.y_px(p));
            canvas.line((x, margin), (x, far), GRID, 1.0);
            canvas.line((margin, y), (far, y), GRID, 1.0);
            let label = tick.to_string();
            canvas.text(
                &label,
                (x, far + 15.0),
                Anchor::Middle,
                TextSize::Tick,
                false,
            );
            canvas.text(
                &label,
                (margin - 5.0, y + 4.0),
                Anchor::End,
                TextSize::Tick,
                false,
            );
        }
        let side = DetLayout::frame_side_px();
        canvas.rect((margin, margin), (side, side), INK, None);
        canvas.text(
            "False alarm probability (%)",
            (size / 2.0, size - 25.0),
            Anchor::Middle,
            TextSize::Axis,
            false,
        );
        canvas.text(
            "Miss probability (%)",
            (20.0, size / 2.0),
            Anchor::Middle,
            TextSize::Axis,
            true,
        );
        for (k, (_, points)) in self.systems.iter().enumerate() {
            let colour = PLOT_COLOURS[k % PLOT_COLOURS.len()];
            canvas.curve(&layout.curve_px(points), colour, CURVE_WIDTH_PX);
        }
        if self.systems.is_empty() {
            return;
        }
        let longest = self
            .systems
            .iter()
            .map(|(name, _)| name.chars().count())
            .max()
            .unwrap_or(0);
        let (corner, legend_size) = DetLayout::legend_box_px(longest, self.systems.len());
        canvas.rect(corner, legend_size, GRID, Some(LEGEND_FILL_OPACITY));
        for (k, (name, _)) in self.systems.iter().enumerate() {
            let colour = PLOT_COLOURS[k % PLOT_COLOURS.len()];
            let (lx, ly) = DetLayout::legend_line_start_px(corner, k);
            canvas.line(
                (lx, ly),
                (lx + LEGEND_SAMPLE_PX, ly),
                colour,
                LEGEND_WIDTH_PX,
            );
            canvas.text(
                name,
                (lx + LEGEND_SAMPLE_PX + LEGEND_GAP_PX, ly + 4.0),
                Anchor::Start,
                TextSize::Tick,
                false,
            );
        }
    }

    /// Renders the plot: 600 × 600 px SVG, P_fa (%) on x, P_miss (%) on y, probit-scaled.
    pub fn to_svg(&self) -> String {
        let size = DetLayout::CANVAS_PX;
        let mut svg = SvgCanvas(String::new());
        let _ = writeln!(
            svg.0,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(svg.0, r#"<rect width="100%" height="100%" fill="white"/>"#);
        self.draw(&mut svg);
        svg.0.push_str("</svg>\n");
        svg.0
    }

    /// Renders the same figure as [`Self::to_svg`] as a PNG file's bytes: 600 × 600 px, 8-bit
    /// RGBA, opaque (white background), anti-aliased curves and bitmap-font text (texts too long
    /// for the canvas switch to a smaller font, then are clipped at its edge).
    pub fn to_png(&self) -> Result<Vec<u8>, MetricsError> {
        let size = DetLayout::CANVAS_PX;
        let mut pixmap =
            tiny_skia::Pixmap::new(size, size).ok_or_else(|| MetricsError::PlotRendering {
                reason: format!("could not allocate a {size} × {size} px canvas"),
            })?;
        pixmap.fill(tiny_skia::Color::WHITE);
        let mut png = PngCanvas(pixmap);
        self.draw(&mut png);
        png.0
            .encode_png()
            .map_err(|error| MetricsError::PlotRendering {
                reason: format!("PNG encoding failed: {error}"),
            })
    }
}

/// Writes SVG elements.
struct SvgCanvas(String);

impl Canvas for SvgCanvas {
    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: Rgb, width_px: f64) {
        let _ = writeln!(
            self.0,
            r#"<line x1="{:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="{}" stroke-width="{width_px}"/>"#,
            from.0,
            from.1,
            to.0,
            to.1,
            colour.hex()
        );
    }

    fn rect(
        &mut self,
        corner: (f64, f64),
        size: (f64, f64),
        stroke: Rgb,
        white_fill_opacity: Option<f64>,
    ) {
        let fill = match white_fill_opacity {
            Some(opacity) => format!(r#"fill="white" fill-opacity="{opacity}""#),
            None => r#"fill="none""#.to_owned(),
        };
        let _ = writeln!(
            self.0,
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" {fill} stroke="{}"/>"#,
            corner.0,
            corner.1,
            size.0,
            size.1,
            stroke.hex()
        );
    }

    fn curve(&mut self, vertices: &[(f64, f64)], colour: Rgb, width_px: f64) {
        let mut path = String::new();
        for (i, (x, y)) in vertices.iter().enumerate() {
            let _ = write!(path, "{}{x:.2},{y:.2} ", if i == 0 { "M" } else { "L" });
        }
        let _ = writeln!(
            self.0,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="{width_px}" stroke-linejoin="round"/>"#,
            path.trim_end(),
            colour.hex()
        );
    }

    fn text(&mut self, text: &str, at: (f64, f64), anchor: Anchor, size: TextSize, vertical: bool) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let (x, y) = at;
        let transform = if vertical {
            format!(r#" transform="rotate(-90 {x:.2} {y:.2})""#)
        } else {
            String::new()
        };
        let _ = writeln!(
            self.0,
            r#"<text x="{x:.2}" y="{y:.2}" text-anchor="{anchor}" font-size="{}"{transform}>{}</text>"#,
            size.svg_px(),
            xml_escape(text)
        );
    }
}

/// Rasterises into a pixmap.
struct PngCanvas(tiny_skia::Pixmap);

impl Canvas for PngCanvas {
    fn line(&mut self, from: (f64, f64), to: (f64, f64), colour: Rgb, width_px: f64) {
        let ends = [snap(from, to, width_px), snap(to, from, width_px)];
        stroke_png(&mut self.0, &ends, colour, width_px);
    }

    fn rect(
        &mut self,
        corner: (f64, f64),
        size: (f64, f64),
        stroke: Rgb,
        white_fill_opacity: Option<f64>,
    ) {
        // Whole pixels: the outline covers the rows and columns the corners fall in, the fill
        // what lies between.
        let (x0, y0) = (corner.0.floor(), corner.1.floor());
        let (x1, y1) = ((corner.0 + size.0).floor(), (corner.1 + size.1).floor());
        if let (Some(opacity), Some(rect)) = (
            white_fill_opacity,
            tiny_skia::Rect::from_ltrb(x0 as f32, y0 as f32, x1 as f32, y1 as f32),
        ) {
            let mut paint = tiny_skia::Paint::default();
            let alpha = (opacity.clamp(0.0, 1.0) * 255.0).round() as u8;
            paint.set_color_rgba8(255, 255, 255, alpha);
            self.0
                .fill_rect(rect, &paint, tiny_skia::Transform::identity(), None);
        }
        let (x0, y0, x1, y1) = (x0 + 0.5, y0 + 0.5, x1 + 0.5, y1 + 0.5);
        let outline = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
        stroke_png(&mut self.0, &outline, stroke, 1.0);
    }

    fn curve(&mut self, vertices: &[(f64, f64)], colour: Rgb, width_px: f64) {
        stroke_png(&mut self.0, vertices, colour, width_px);
    }

    fn text(&mut self, text: &str, at: (f64, f64), anchor: Anchor, size: TextSize, vertical: bool) {
        draw_text_png(&mut self.0, text, at, anchor, size, vertical);
    }
}

/// Moves the end `point` of a 1-px-wide horizontal or vertical line (from `point` towards
/// `other`) onto pixel centres across the line, so the line covers one row or column fully
/// instead of half-covering two; other lines are left as they are.
fn snap(point: (f64, f64), other: (f64, f64), width_px: f64) -> (f64, f64) {
    if width_px != 1.0 {
        return point;
    }
    let centre = |v: f64| v.floor() + 0.5;
    if point.0 == other.0 {
        (centre(point.0), point.1)
    } else if point.1 == other.1 {
        (point.0, centre(point.1))
    } else {
        point
    }
}

/// Strokes an open polyline (anti-aliased, round joins and caps). Fewer than two vertices, or
/// all of them coincident, draw nothing (as in the SVG).
fn stroke_png(pixmap: &mut tiny_skia::Pixmap, vertices: &[(f64, f64)], colour: Rgb, width_px: f64) {
    let mut builder = tiny_skia::PathBuilder::new();
    for (i, &(x, y)) in vertices.iter().enumerate() {
        if i == 0 {
            builder.move_to(x as f32, y as f32);
        } else {
            builder.line_to(x as f32, y as f32);
        }
    }
    let Some(path) = builder.finish() else {
        return;
    };
    let mut paint = tiny_skia::Paint::default();
    let [r, g, b] = colour.0;
    paint.set_color_rgba8(r, g, b, 255);
    paint.anti_alias = true;
    let stroke = tiny_skia::Stroke {
        width: width_px as f32,
        line_cap: tiny_skia::LineCap::Round,
        line_join: tiny_skia::LineJoin::Round,
        ..tiny_skia::Stroke::default()
    };
    pixmap.stroke_path(
        &path,
        &paint,
        &stroke,
        tiny_skia::Transform::identity(),
        None,
    );
}

/// Width of `text` in `font` (px).
fn text_width_px(text: &str, font: &MonoFont<'_>) -> u32 {
    let n = text.chars().count() as u32;
    n * font.character_size.width + n.saturating_sub(1) * font.character_spacing
}

/// Draws a line of text in the first of the size's fonts that fits along the canvas.
fn draw_text_png(
    pixmap: &mut tiny_skia::Pixmap,
    text: &str,
    at: (f64, f64),
    anchor: Anchor,
    size: TextSize,
    vertical: bool,
) {
    let room = DetLayout::CANVAS_PX.saturating_sub(8);
    let fonts = size.png_fonts();
    let font = fonts
        .iter()
        .find(|font| text_width_px(text, font) <= room)
        .unwrap_or(&fonts[fonts.len() - 1]);
    let origin = Point::new(at.0.round() as i32, at.1.round() as i32);
    let alignment = match anchor {
        Anchor::Start => Alignment::Left,
        Anchor::Middle => Alignment::Center,
        Anchor::End => Alignment::Right,
    };
    let mut target = GlyphTarget {
        pixmap,
        colour: INK,
        pivot: vertical.then_some(origin),
    };
    let style = MonoTextStyle::new(font, BinaryColor::On);
    // Drawing into a GlyphTarget cannot fail (its error type is Infallible).
    let _ = Text::with_alignment(text, origin, style, alignment).draw(&mut target);
}

/// Receives the glyph pixels of `embedded-graphics` text and paints them into a pixmap, turned a
/// quarter turn counter-clockwise about `pivot` when given; pixels off the canvas are dropped.
struct GlyphTarget<'a> {
    pixmap: &'a mut tiny_skia::Pixmap,
    colour: Rgb,
    pivot: Option<Point>,
}

impl OriginDimensions for GlyphTarget<'_> {
    fn size(&self) -> Size {
        Size::new(self.pixmap.width(), self.pixmap.height())
    }
}

impl DrawTarget for GlyphTarget<'_> {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Infallible>
    where
        I: IntoIterator<Item = Pixel<BinaryColor>>,
    {
        let (width, height) = (self.pixmap.width(), self.pixmap.height());
        let [r, g, b] = self.colour.0;
        let data = self.pixmap.data_mut();
        for Pixel(point, colour) in pixels {
            if colour != BinaryColor::On {
                continue;
            }
            // Screen coordinates grow downwards, so a counter-clockwise quarter turn about the
            // pivot maps an offset (dx, dy) to (dy, −dx): text running right then runs upwards.
            let point = match self.pivot {
                Some(pivot) => {
                    Point::new(pivot.x + (point.y - pivot.y), pivot.y - (point.x - pivot.x))
                }
                None => point,
            };
            let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) else {
                continue;
            };
            if x >= width || y >= height {
                continue;
            }
            // Opaque colours are the same premultiplied or not.
            let at = 4 * (y as usize * width as usize + x as usize);
            data[at..at + 4].copy_from_slice(&[r, g, b, 255]);
        }
        Ok(())
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoded image: width, height, RGB of each pixel (row-major); decoded by the `png`
    /// crate, independently of the renderer.
    struct Decoded {
        width: u32,
        height: u32,
        rgb: Vec<[u8; 3]>,
    }

    impl Decoded {
        fn at(&self, x: u32, y: u32) -> [u8; 3] {
            self.rgb[(y * self.width + x) as usize]
        }

        /// Pixels (x, y) satisfying `keep`.
        fn pixels_where(&self, keep: impl Fn([u8; 3]) -> bool) -> Vec<(u32, u32)> {
            let mut out = Vec::new();
            for y in 0..self.height {
                for x in 0..self.width {
                    if keep(self.at(x, y)) {
                        out.push((x, y));
                    }
                }
            }
            out
        }
    }

    fn decode(bytes: &[u8]) -> Decoded {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut buffer = vec![0; reader.output_buffer_size().expect("a buffer size")];
        let info = reader.next_frame(&mut buffer).expect("a PNG frame");
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("colour type {other:?}: expected RGB or RGBA"),
        };
        let rgb = buffer[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|px| {
                if channels == 4 {
                    assert_eq!(px[3], 255, "the plot is opaque");
                }
                [px[0], px[1], px[2]]
            })
            .collect();
        Decoded {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    fn distance(a: [u8; 3], b: [u8; 3]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&u, v)| (f64::from(u) - f64::from(v)).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// Pixels close to a curve colour: its solid core (anti-aliased edges, blended with white,
    /// are further away and not counted).
    fn near(colour: Rgb) -> impl Fn([u8; 3]) -> bool {
        move |px| distance(px, colour.0) < 40.0
    }

    fn is_dark(px: [u8; 3]) -> bool {
        px.iter().all(|&c| c < 96)
    }

    /// Standard normal CDF, by bisection on our probit (monotone), to build points whose probit
    /// is known exactly.
    fn normal_cdf(z: f64) -> f64 {
        let (mut lo, mut hi) = (1e-12, 1.0 - 1e-12);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if probit(mid) < z {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// The straight DET line probit(P_miss) = a + b · probit(P_fa) for probit(P_fa) in
    /// [z_from, z_to], sampled densely.
    fn probit_line(a: f64, b: f64, z_from: f64, z_to: f64) -> Vec<DetPoint> {
        (0..=400)
            .map(|i| {
                let z = z_from + (z_to - z_from) * f64::from(i) / 400.0;
                DetPoint {
                    p_fa: normal_cdf(z),
                    p_miss: normal_cdf(a + b * z),
                }
            })
            .collect()
    }

    /// Pixel coordinates of probit values on the default axes (0.1 % .. 50 %), written out from
    /// the definition: 600 px canvas, 70 px margins, probit(0.001) at the low end, 0 at the high.
    fn expected_px(z_fa: f64, z_miss: f64) -> (f64, f64) {
        let lo = -3.090_232_306_167_813;
        let span = 460.0;
        (
            70.0 + (z_fa - lo) / (0.0 - lo) * span,
            530.0 - (z_miss - lo) / (0.0 - lo) * span,
        )
    }

    /// Distance from pixel centre (x + ½, y + ½) to the segment a–b.
    fn distance_to_segment(pixel: (u32, u32), a: (f64, f64), b: (f64, f64)) -> f64 {
        let p = (f64::from(pixel.0) + 0.5, f64::from(pixel.1) + 0.5);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
    }

    /// Whether a pixel lies in (or on the outline of) the legend box of `rows` systems whose
    /// longest name has `longest_name_chars` characters.
    fn in_legend_box(pixel: (u32, u32), longest_name_chars: usize, rows: usize) -> bool {
        let ((left, top), (width, height)) = DetLayout::legend_box_px(longest_name_chars, rows);
        let (x, y) = (f64::from(pixel.0), f64::from(pixel.1));
        x >= left.floor()
            && x <= (left + width).floor()
            && y >= top.floor()
            && y <= (top + height).floor()
    }

    /// The pixels of a curve colour outside the legend box (`legend`: longest name in
    /// characters, rows), after checking that every one of them lies on the segment start–end
    /// (within the 2-px stroke's half width plus a pixel's half diagonal).
    fn pixels_on_segment(
        image: &Decoded,
        colour: Rgb,
        start: (f64, f64),
        end: (f64, f64),
        legend: (usize, usize),
    ) -> Vec<(u32, u32)> {
        let curve: Vec<_> = image
            .pixels_where(near(colour))
            .into_iter()
            .filter(|&p| !in_legend_box(p, legend.0, legend.1))
            .collect();
        for &p in &curve {
            let d = distance_to_segment(p, start, end);
            assert!(
                d < 1.6,
                "pixel {p:?} of {colour:?} is {d:.2} px off its line"
            );
        }
        curve
    }

    #[test]
    fn layout_maps_probabilities_by_probit() {
        let layout = DetLayout::new(0.001, 0.5);
        let (x, y) = expected_px(probit(0.01), probit(0.2));
        assert!((layout.x_px(0.01) - x).abs() < 1e-6);
        assert!((layout.y_px(0.2) - y).abs() < 1e-6);
        // Frame corners and clamping outside the range.
        assert!(
            (layout.x_px(0.001) - 70.0).abs() < 1e-6 && (layout.x_px(0.5) - 530.0).abs() < 1e-9
        );
        assert_eq!(layout.x_px(1e-6), layout.x_px(0.001));
        assert_eq!(layout.y_px(0.9), layout.y_px(0.5));
        let ticks: Vec<f64> = layout.visible_ticks_percent().collect();
        assert_eq!(ticks, [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0]);
        // NaN limits fall back to the defaults.
        assert_eq!(DetLayout::new(f64::NAN, f64::INFINITY), layout);
    }

    #[test]
    fn curve_thinning_drops_only_sub_half_pixel_steps() {
        let layout = DetLayout::new(0.001, 0.5);
        let points: Vec<DetPoint> = (0..1000)
            .map(|i| DetPoint {
                p_fa: 0.1 + 1e-7 * f64::from(i),
                p_miss: 0.1,
            })
            .chain([DetPoint {
                p_fa: 0.2,
                p_miss: 0.1,
            }])
            .collect();
        let vertices = layout.curve_px(&points);
        assert_eq!(vertices.len(), 2);
        assert_eq!(vertices[1], (layout.x_px(0.2), layout.y_px(0.1)));
    }

    #[test]
    fn png_is_600_square_with_white_corners_and_axes_when_empty() {
        let plot = DetPlot::new("empty");
        let image = decode(&plot.to_png().unwrap());
        assert_eq!((image.width, image.height), (600, 600));
        for (x, y) in [(0, 0), (599, 0), (0, 599), (599, 599)] {
            assert_eq!(image.at(x, y), [255, 255, 255]);
        }
        // The frame: black 1-px lines at the margins (column / row 70 and 530).
        for t in [100, 300, 500] {
            for (x, y) in [(70, t), (530, t), (t, 70), (t, 530)] {
                assert!(
                    is_dark(image.at(x, y)),
                    "frame pixel ({x}, {y}) is {:?}",
                    image.at(x, y)
                );
            }
        }
        // Grid lines of the 1 % tick, light grey, inside the frame.
        let grid_x = DetLayout::new(0.001, 0.5).x_px(0.01).floor() as u32;
        assert!(distance(image.at(grid_x, 300), GRID.0) < 4.0);
        // Tick labels below the frame and left of it; axis labels near the bottom and left edges.
        let dark_in = |x0: u32, x1: u32, y0: u32, y1: u32| {
            image
                .pixels_where(is_dark)
                .iter()
                .filter(|&&(x, y)| x >= x0 && x < x1 && y >= y0 && y < y1)
                .count()
        };
        assert!(dark_in(70, 531, 535, 550) > 50, "x tick labels");
        assert!(dark_in(20, 66, 70, 531) > 50, "y tick labels");
        assert!(dark_in(150, 450, 560, 580) > 100, "x axis label");
        assert!(dark_in(5, 30, 200, 400) > 100, "y axis label (vertical)");
        // No curve colour anywhere.
        for colour in PLOT_COLOURS {
            assert!(image.pixels_where(near(colour)).is_empty());
        }
    }

    #[test]
    fn title_pixels_lie_in_the_title_band_and_long_titles_stay_on_canvas() {
        let image = decode(&DetPlot::new("DET: dev, GMM-UBM").to_png().unwrap());
        let dark = image.pixels_where(is_dark);
        let title: Vec<_> = dark.iter().filter(|&&(_, y)| y < 60).collect();
        assert!(
            title.len() > 100,
            "{} dark pixels in the title band",
            title.len()
        );
        // Centred on x = 300, on the baseline y = 30 (descenders reach a few px below).
        assert!(title
            .iter()
            .all(|&&(x, y)| (200..400).contains(&x) && (15..36).contains(&y)));
        let mean_x = title.iter().map(|&&(x, _)| f64::from(x)).sum::<f64>() / title.len() as f64;
        assert!((mean_x - 300.0).abs() < 10.0, "title centred at {mean_x}");

        // A title wider than the canvas in every font is clipped, not wrapped or panicking,
        // and the rest of the figure is unchanged.
        let long = "W".repeat(300);
        let image_long = decode(&DetPlot::new(&long).to_png().unwrap());
        assert_eq!((image_long.width, image_long.height), (600, 600));
        let title_long = image_long
            .pixels_where(is_dark)
            .into_iter()
            .filter(|&(_, y)| y < 60)
            .collect::<Vec<_>>();
        assert!(title_long.iter().any(|&(x, _)| x < 4) && title_long.iter().any(|&(x, _)| x > 595));
        for y in 60..600 {
            for x in 0..600 {
                assert_eq!(image.at(x, y), image_long.at(x, y));
            }
        }
    }

    #[test]
    fn a_straight_probit_line_is_drawn_where_the_mapping_puts_it() {
        // probit(P_miss) = -2.2 - 0.6 probit(P_fa), well inside the default axes.
        let (a, b, z_from, z_to) = (-2.2, -0.6, -2.8, -0.2);
        let mut plot = DetPlot::new("line");
        plot.add_system("line", probit_line(a, b, z_from, z_to));
        let image = decode(&plot.to_png().unwrap());
        let start = expected_px(z_from, a + b * z_from);
        let end = expected_px(z_to, a + b * z_to);
        let blue = PLOT_COLOURS[0];
        let curve = pixels_on_segment(&image, blue, start, end, (4, 1));
        // And the segment is covered along its whole length: a curve pixel near each point.
        for i in 0..=50 {
            let t = f64::from(i) / 50.0;
            let q = (
                start.0 + t * (end.0 - start.0),
                start.1 + t * (end.1 - start.1),
            );
            let nearest = curve
                .iter()
                .map(|&(x, y)| {
                    ((f64::from(x) + 0.5 - q.0).powi(2) + (f64::from(y) + 0.5 - q.1).powi(2)).sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest < 1.0,
                "no curve pixel within 1 px of {q:?} ({nearest:.2})"
            );
        }
        // The legend: a box in the frame's upper-right corner (outlined in grey, white inside),
        // its sample line in the curve colour, the name in dark pixels after it.
        let ((left, top), (width, height)) = DetLayout::legend_box_px(4, 1);
        assert!(left + width <= 524.0 + 1e-9 && top >= 76.0 - 1e-9);
        assert!(distance(image.at(left as u32, (top + height / 2.0) as u32), GRID.0) < 4.0);
        assert_eq!(image.at(left as u32 + 2, top as u32 + 2), [255; 3]);
        let (lx, ly) = DetLayout::legend_line_start_px((left, top), 0);
        assert_eq!(image.at(lx as u32 + 10, ly as u32), blue.0);
        let name_dark = image
            .pixels_where(is_dark)
            .into_iter()
            .filter(|&(x, y)| f64::from(x) > lx + 22.0 && in_legend_box((x, y), 4, 1))
            .count();
        assert!(name_dark > 20, "{name_dark} dark pixels in the legend name");
        // Anti-aliased: the stroke's edge has pixels between the colour and white.
        let blended = image.pixels_where(|px| {
            let (d_colour, d_white) = (distance(px, blue.0), distance(px, [255; 3]));
            d_colour > 40.0 && d_white > 40.0 && px[2] > px[0]
        });
        assert!(!blended.is_empty());
    }

    #[test]
    fn two_systems_give_both_colours_each_on_its_own_line() {
        // (a, b, z_from, z_to) of probit(P_miss) = a + b · probit(P_fa); the two lines cross.
        let lines = [(-2.2, -0.6, -2.8, -0.2), (-3.0, -1.0, -2.5, -0.5)];
        let mut plot = DetPlot::new("two");
        for (k, &(a, b, z_from, z_to)) in lines.iter().enumerate() {
            plot.add_system(&format!("system {k}"), probit_line(a, b, z_from, z_to));
        }
        let image = decode(&plot.to_png().unwrap());
        for (k, &(a, b, z_from, z_to)) in lines.iter().enumerate() {
            let start = expected_px(z_from, a + b * z_from);
            let end = expected_px(z_to, a + b * z_to);
            // Where the curves cross, the later one is drawn on top: pixels of the first colour
            // may be missing there, but none may lie off its own line.
            let curve = pixels_on_segment(&image, PLOT_COLOURS[k], start, end, (8, 2));
            assert!(
                curve.len() > 100,
                "system {k}: {} pixels of its colour",
                curve.len()
            );
        }
    }

    #[test]
    fn svg_and_png_put_a_point_at_the_same_pixel() {
        let points = vec![
            DetPoint {
                p_fa: 0.3,
                p_miss: 0.004,
            },
            DetPoint {
                p_fa: 0.02,
                p_miss: 0.07,
            },
        ];
        let mut plot = DetPlot::new("two points");
        plot.add_system("s", points.clone());
        let layout = plot.layout();
        let svg = plot.to_svg();
        let path = svg
            .split("<path d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let svg_vertices: Vec<(f64, f64)> = path
            .split_whitespace()
            .map(|v| {
                let (x, y) = v[1..].split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        let image = decode(&plot.to_png().unwrap());
        assert_eq!(svg_vertices.len(), 2);
        for (point, (sx, sy)) in points.iter().zip(svg_vertices) {
            let (x, y) = (layout.x_px(point.p_fa), layout.y_px(point.p_miss));
            assert!((sx - x).abs() < 0.006 && (sy - y).abs() < 0.006);
            let (ex, ey) = expected_px(probit(point.p_fa), probit(point.p_miss));
            assert!((x - ex).abs() < 1e-6 && (y - ey).abs() < 1e-6);
            // The PNG pixel containing the point is in the curve colour.
            let px = image.at(x.floor() as u32, y.floor() as u32);
            assert!(
                near(PLOT_COLOURS[0])(px),
                "PNG pixel at ({x:.1}, {y:.1}) is {px:?}"
            );
        }
    }

    #[test]
    fn svg_has_the_marks_of_the_shared_layout() {
        let mut plot = DetPlot::new("t");
        plot.add_system("s", probit_line(-2.2, -0.6, -2.8, -0.2));
        let svg = plot.to_svg();
        let ticks = plot.layout().visible_ticks_percent().count();
        // Two grid lines per tick and one legend line.
        assert_eq!(svg.matches("<line").count(), 2 * ticks + 1);
        assert!(svg.contains(r##"stroke="#1f77b4""##));
        assert!(svg.contains(r#"transform="rotate(-90 20.00 300.00)""#));
    }
}
