//! PNG plots for evaluations: per-metric histograms of two sets and piano rolls, drawn on a
//! small RGB canvas with a built-in 3×5 pixel font (no system fonts, no plotting stack) and
//! encoded by the `png` crate.

use std::path::Path;

use aurl_core::Score;
use aurl_core::metrics::bars;

/// An RGB colour.
type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [20, 20, 20];
const GREY: Rgb = [200, 200, 200];
/// Generated set / reference set colours (blue, orange), as in most evaluation papers.
const GENERATED: Rgb = [31, 119, 180];
const REFERENCE: Rgb = [255, 127, 14];

/// 3×5 glyphs, bit `row * 3 + column` set where the pixel is ink.
const FONT: [(char, u16); 48] = [
    ('0', 0x7b6f),
    ('1', 0x749a),
    ('2', 0x73e7),
    ('3', 0x79a7),
    ('4', 0x49ed),
    ('5', 0x79cf),
    ('6', 0x7bcf),
    ('7', 0x24a7),
    ('8', 0x7bef),
    ('9', 0x79ef),
    ('A', 0x5bea),
    ('B', 0x3aeb),
    ('C', 0x624e),
    ('D', 0x3b6b),
    ('E', 0x72cf),
    ('F', 0x12cf),
    ('G', 0x6b4e),
    ('H', 0x5bed),
    ('I', 0x7497),
    ('J', 0x2b24),
    ('K', 0x5aed),
    ('L', 0x7249),
    ('M', 0x5bfd),
    ('N', 0x5ffd),
    ('O', 0x2b6a),
    ('P', 0x12eb),
    ('Q', 0x6f6a),
    ('R', 0x5aeb),
    ('S', 0x388e),
    ('T', 0x2497),
    ('U', 0x7b6d),
    ('V', 0x256d),
    ('W', 0x5fed),
    ('X', 0x5aad),
    ('Y', 0x24ad),
    ('Z', 0x72a7),
    ('.', 0x2000),
    ('-', 0x01c0),
    ('_', 0x7000),
    (':', 0x0410),
    ('/', 0x12a4),
    ('(', 0x224a),
    (')', 0x2922),
    ('+', 0x05d0),
    ('=', 0x0e38),
    (' ', 0x0000),
    ('%', 0x52a5),
    (',', 0x1400),
];

/// An RGB image in memory.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: WHITE.repeat(width * height),
        }
    }

    /// Fills `[x0, x1) × [y0, y1)` (clipped), blending with `alpha` (0–1).
    fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, colour: Rgb, alpha: f32) {
        for y in y0.min(self.height)..y1.min(self.height) {
            for x in x0.min(self.width)..x1.min(self.width) {
                let i = 3 * (y * self.width + x);
                for (p, &c) in self.pixels[i..i + 3].iter_mut().zip(&colour) {
                    let old = f32::from(*p);
                    *p = (old + (f32::from(c) - old) * alpha).round() as u8;
                }
            }
        }
    }

    /// Draws a line of width 2 from `(x0, y0)` to `(x1, y1)` (pixel coordinates, clipped).
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), colour: Rgb) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            if x >= 0.0 && y >= 0.0 {
                let (x, y) = (x as usize, y as usize);
                self.rect(x, y, x + 2, y + 2, colour, 1.0);
            }
        }
    }

    /// Writes `text` (upper-cased; unknown characters as blanks) with its top-left corner at
    /// `(x, y)`, each font pixel `scale` pixels wide.
    fn text(&mut self, x: usize, y: usize, text: &str, scale: usize) {
        for (k, ch) in text.chars().enumerate() {
            let ch = ch.to_ascii_uppercase();
            let Some(&(_, bits)) = FONT.iter().find(|g| g.0 == ch) else {
                continue;
            };
            let left = x + k * 4 * scale;
            for bit in 0..15 {
                if bits & (1 << bit) != 0 {
                    let (r, c) = (bit / 3, bit % 3);
                    self.rect(
                        left + c * scale,
                        y + r * scale,
                        left + (c + 1) * scale,
                        y + (r + 1) * scale,
                        BLACK,
                        1.0,
                    );
                }
            }
        }
    }

    /// Encodes as PNG and writes atomically.
    fn save(&self, path: &Path) -> Result<(), PlotError> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder
                .write_header()
                .map_err(|e| PlotError::Encode(e.to_string()))?;
            writer
                .write_image_data(&self.pixels)
                .map_err(|e| PlotError::Encode(e.to_string()))?;
        }
        aurl_data::write_atomically(path, &bytes).map_err(|e| PlotError::Write(e.to_string()))
    }
}

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The PNG encoder failed (an empty image, for example).
    #[error("PNG encoding failed: {0}")]
    Encode(String),
    /// The file could not be written; nothing partial is left behind.
    #[error("writing the plot failed: {0}")]
    Write(String),
}

/// Short number formatting for axis labels.
fn label(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e6 {
        format!("{x:.0}")
    } else if x != 0.0 && (x.abs() >= 1e4 || x.abs() < 1e-2) {
        format!("{x:.1e}")
    } else {
        format!("{x:.2}")
    }
}

/// Writes overlaid histograms (as densities, 30 bins over the joint range) of one metric
/// for two sets: generated in blue, reference in orange. Non-finite values are skipped; a
/// set without values draws nothing.
///
/// # Errors
/// [`PlotError`] if the file cannot be encoded or written.
pub fn histogram_png(
    path: &Path,
    title: &str,
    generated: &[f64],
    reference: &[f64],
) -> Result<(), PlotError> {
    const BINS: usize = 30;
    let (w, h, margin, top) = (480usize, 300usize, 30usize, 40usize);
    let mut canvas = Canvas::new(w, h);
    canvas.text(margin, 10, title, 2);
    let finite = |v: &[f64]| {
        v.iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect::<Vec<_>>()
    };
    let (g, r) = (finite(generated), finite(reference));
    let lo = g.iter().chain(&r).copied().fold(f64::INFINITY, f64::min);
    let hi = g
        .iter()
        .chain(&r)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() {
        let width = (hi - lo).max(1e-9);
        let counts = |v: &[f64]| {
            let mut c = [0.0f64; BINS];
            for x in v {
                let b = (((x - lo) / width) * BINS as f64) as usize;
                c[b.min(BINS - 1)] += 1.0 / v.len() as f64;
            }
            c
        };
        let (cg, cr) = (counts(&g), counts(&r));
        let peak = cg.iter().chain(&cr).copied().fold(0.0, f64::max).max(1e-12);
        let (plot_w, plot_h) = (w - 2 * margin, h - top - margin);
        for (bins, colour) in [(&cr, REFERENCE), (&cg, GENERATED)] {
            for (b, &share) in bins.iter().enumerate() {
                let x0 = margin + b * plot_w / BINS;
                let x1 = margin + (b + 1) * plot_w / BINS;
                let bar = (share / peak * plot_h as f64) as usize;
                canvas.rect(
                    x0,
                    top + plot_h - bar,
                    x1.saturating_sub(1),
                    top + plot_h,
                    colour,
                    0.55,
                );
            }
        }
        canvas.rect(
            margin,
            top + plot_h,
            w - margin,
            top + plot_h + 1,
            BLACK,
            1.0,
        );
        canvas.text(margin, top + plot_h + 6, &label(lo), 2);
        let hi_label = label(hi);
        canvas.text(
            w - margin - hi_label.len() * 8,
            top + plot_h + 6,
            &hi_label,
            2,
        );
    }
    // Legend.
    canvas.rect(w - 150, 12, w - 140, 22, GENERATED, 0.8);
    canvas.text(w - 134, 14, "GENERATED", 1);
    canvas.rect(w - 150, 26, w - 140, 36, REFERENCE, 0.8);
    canvas.text(w - 134, 28, "REFERENCE", 1);
    canvas.save(path)
}

/// Writes a piano roll of `score`: time left to right (at most `max_bars` bars from the
/// start, bar lines in grey), pitch bottom to top, one colour per track, drums in grey.
///
/// # Errors
/// [`PlotError`] if the file cannot be encoded or written.
pub fn piano_roll_png(
    path: &Path,
    title: &str,
    score: &Score,
    max_bars: usize,
) -> Result<(), PlotError> {
    const PALETTE: [Rgb; 6] = [
        GENERATED,
        REFERENCE,
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
    ];
    let bars = bars(score);
    let shown = &bars[..bars.len().min(max_bars.max(1))];
    let end = shown.last().map_or(1, |b| b.end).max(1);
    let notes = score.tracks.iter().flat_map(|t| t.notes.iter());
    let lo = notes
        .clone()
        .map(|n| n.pitch.get())
        .min()
        .unwrap_or(60)
        .saturating_sub(2);
    let hi = notes
        .map(|n| n.pitch.get())
        .max()
        .unwrap_or(72)
        .saturating_add(2)
        .min(127);
    let (w, top, row) = (1200usize, 30usize, 4usize);
    let h = top + (usize::from(hi - lo) + 1) * row + 10;
    let mut canvas = Canvas::new(w, h);
    canvas.text(10, 10, title, 2);
    let x_of = |tick: u64| 10 + ((tick.min(end) as f64 / end as f64) * (w - 20) as f64) as usize;
    for b in shown {
        canvas.rect(x_of(b.start), top, x_of(b.start) + 1, h - 10, GREY, 1.0);
    }
    for (i, track) in score.tracks.iter().enumerate() {
        let colour = if track.is_drum {
            [90, 90, 90]
        } else {
            PALETTE[i % PALETTE.len()]
        };
        for n in track.notes.iter().filter(|n| n.start < end) {
            let y = top + usize::from(hi - n.pitch.get()) * row;
            let x1 = x_of(n.start + n.duration.max(1)).max(x_of(n.start) + 2);
            canvas.rect(x_of(n.start), y, x1, y + row - 1, colour, 0.85);
        }
    }
    canvas.save(path)
}

/// One curve of [`curves_png`]: a name for the legend and `(x, y)` points in x order.
#[derive(Debug, Clone, Copy)]
pub struct Curve<'a> {
    /// Legend text.
    pub name: &'a str,
    /// The points; non-finite ones are skipped.
    pub points: &'a [(f64, f64)],
}

/// Writes line charts of `curves` on shared axes (the loss curves of a training run: the
/// training loss per step and the validation NLL at each validation). Colours follow the
/// curves' order (blue, orange, green, …); the axes are labelled with their ranges.
///
/// # Errors
/// [`PlotError`] if the file cannot be encoded or written.
pub fn curves_png(
    path: &Path,
    title: &str,
    x_label: &str,
    curves: &[Curve<'_>],
) -> Result<(), PlotError> {
    const COLOURS: [Rgb; 4] = [GENERATED, REFERENCE, [44, 160, 44], [214, 39, 40]];
    let (w, h, left, right, top, bottom) = (640usize, 360usize, 60usize, 20usize, 40usize, 40usize);
    let mut canvas = Canvas::new(w, h);
    canvas.text(left, 10, title, 2);
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let all = || curves.iter().flat_map(|c| c.points.iter().filter(finite));
    let (x_lo, x_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (y_lo, y_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    let (plot_w, plot_h) = ((w - left - right) as f64, (h - top - bottom) as f64);
    if x_lo.is_finite() && y_lo.is_finite() {
        let (x_span, y_span) = ((x_hi - x_lo).max(1e-9), (y_hi - y_lo).max(1e-9));
        let at = |p: &(f64, f64)| {
            (
                left as f64 + (p.0 - x_lo) / x_span * plot_w,
                top as f64 + (1.0 - (p.1 - y_lo) / y_span) * plot_h,
            )
        };
        for (curve, colour) in curves.iter().zip(COLOURS.iter().cycle()) {
            let points: Vec<(f64, f64)> = curve.points.iter().filter(finite).map(at).collect();
            if let [only] = points.as_slice() {
                canvas.rect(
                    only.0 as usize,
                    only.1 as usize,
                    only.0 as usize + 4,
                    only.1 as usize + 4,
                    *colour,
                    1.0,
                );
            }
            for pair in points.windows(2) {
                canvas.line(pair[0], pair[1], *colour);
            }
        }
        canvas.text(4, top, &label(y_hi), 1);
        canvas.text(4, h - bottom - 5, &label(y_lo), 1);
        canvas.text(left, h - bottom + 8, &label(x_lo), 2);
        let hi = label(x_hi);
        canvas.text(w - right - hi.len() * 8, h - bottom + 8, &hi, 2);
        canvas.text(w / 2 - x_label.len() * 4, h - bottom + 8, x_label, 2);
    }
    canvas.rect(left, top, left + 1, h - bottom, BLACK, 1.0);
    canvas.rect(left, h - bottom, w - right, h - bottom + 1, BLACK, 1.0);
    for (k, (curve, colour)) in curves.iter().zip(COLOURS.iter().cycle()).enumerate() {
        let y = 12 + 14 * k;
        canvas.rect(w - 200, y, w - 190, y + 10, *colour, 1.0);
        canvas.text(w - 184, y + 2, curve.name, 1);
    }
    canvas.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_are_drawn_in_their_colours() {
        let dir = std::env::temp_dir().join(format!("aurl-curves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("loss.png");
        let train: Vec<(f64, f64)> = (0..50)
            .map(|i| (f64::from(i), 5.0 - f64::from(i) * 0.05))
            .collect();
        let valid = [(10.0, 4.8), (50.0, f64::NAN), (49.0, 3.0)];
        let curves = [
            Curve {
                name: "train loss",
                points: &train,
            },
            Curve {
                name: "valid nll",
                points: &valid,
            },
        ];
        curves_png(&path, "loss", "step", &curves).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // Decode and count pixels of each curve's colour.
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let count = |c: Rgb| buf.chunks(3).filter(|p| *p == c).count();
        assert!(count(GENERATED) > 500 && count(REFERENCE) > 200);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_glyph_is_distinct_and_text_draws_ink() {
        let mut glyphs: Vec<u16> = FONT.iter().filter(|g| g.0 != ' ').map(|g| g.1).collect();
        glyphs.sort_unstable();
        glyphs.dedup();
        assert_eq!(glyphs.len(), FONT.len() - 1);
        let mut c = Canvas::new(40, 10);
        c.text(0, 0, "a1", 1);
        let ink = c.pixels.chunks(3).filter(|p| p[0] < 100).count();
        // 'A' has 10 ink pixels, '1' has 8.
        assert_eq!(ink, 18);
    }
}
