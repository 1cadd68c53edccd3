//! Set-level comparison of a metric between generated and reference pieces, in the style
//! of mgeval (Yang & Lerch, 2020): each set's values become a smooth distribution (Gaussian
//! kernel density; one bandwidth for both sets, the wider of their Scott's-rule widths), compared by their overlapping area and the
//! Kullback–Leibler divergence. mgeval applies this to pairwise distances between pieces;
//! here it applies to the metric values themselves, which reads more directly ("how often
//! would a generated piece pass for a reference one on this metric").

use serde::Serialize;

/// Mean, standard deviation and count of one set's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1; 0 for one value).
    pub sd: f64,
    /// Number of values.
    pub count: usize,
}

impl Summary {
    /// The summary of some values (`None` for none; non-finite values are skipped).
    #[must_use]
    pub fn of(values: &[f64]) -> Option<Summary> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Some(Summary {
            mean,
            sd: var.sqrt(),
            count: v.len(),
        })
    }
}

/// How one metric's distribution differs between two sets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SetComparison {
    /// The generated (or candidate) set.
    pub generated: Summary,
    /// The reference set.
    pub reference: Summary,
    /// Overlapping area of the two densities, 0 (disjoint) to 1 (identical).
    pub overlap: f64,
    /// KL(reference ‖ generated) in nats: the cost of describing the reference with the
    /// generated distribution; 0 when they agree.
    pub kl_divergence: f64,
}

/// Bounds on the integration grid's size: fine enough for the narrowest kernel (a quarter of
/// its bandwidth per step), bounded so a comparison stays in milliseconds.
const GRID_POINTS: (usize, usize) = (512, 20_000);
/// Density floor for the KL divergence, so that an empty region costs a finite amount.
const FLOOR: f64 = 1e-12;

/// Scott's rule `h = σ n^(-1/5)`, at least `min_width` so a constant set stays a narrow
/// spike instead of a zero-width one.
fn bandwidth(summary: Summary, min_width: f64) -> f64 {
    (summary.sd * (summary.count as f64).powf(-0.2)).max(min_width)
}

/// Gaussian kernel density of `values` with bandwidth `h` at the points of `grid`.
fn density(values: &[f64], h: f64, grid: &[f64]) -> Vec<f64> {
    let norm = 1.0 / (values.len() as f64 * h * (2.0 * std::f64::consts::PI).sqrt());
    grid.iter()
        .map(|&x| {
            norm * values
                .iter()
                .map(|v| (-0.5 * ((x - v) / h).powi(2)).exp())
                .sum::<f64>()
        })
        .collect()
}

/// Compares two sets of values of one metric. `None` if either set has no finite value.
///
/// ```
/// use aurl_core::metrics::compare_sets;
/// let a = [0.1, 0.2, 0.3, 0.4];
/// let same = compare_sets(&a, &a).unwrap();
/// assert!(same.overlap > 0.999 && same.kl_divergence < 1e-9);
/// let far = compare_sets(&[10.0, 10.1, 10.2], &a).unwrap();
/// assert!(far.overlap < 1e-6);
/// ```
#[must_use]
pub fn compare_sets(generated: &[f64], reference: &[f64]) -> Option<SetComparison> {
    let g: Vec<f64> = generated
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let r: Vec<f64> = reference
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let (gs, rs) = (Summary::of(&g)?, Summary::of(&r)?);
    let lo = g.iter().chain(&r).copied().fold(f64::INFINITY, f64::min);
    let hi = g
        .iter()
        .chain(&r)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let spread = (hi - lo).max(gs.sd).max(rs.sd).max(1e-9 * (1.0 + lo.abs()));
    // One bandwidth for both (the wider Scott's rule), so a set of near-constant values is
    // not a sharper spike than its counterpart and identical sets overlap fully.
    let h = bandwidth(gs, spread / 200.0).max(bandwidth(rs, spread / 200.0));
    let (hg, hr) = (h, h);
    let (from, to) = (lo - 6.0 * hg.max(hr), hi + 6.0 * hg.max(hr));
    let points =
        (((to - from) / (hg.min(hr) / 4.0)).ceil() as usize).clamp(GRID_POINTS.0, GRID_POINTS.1);
    let step = (to - from) / (points - 1) as f64;
    let grid: Vec<f64> = (0..points).map(|i| from + step * i as f64).collect();
    let (pg, pr) = (density(&g, hg, &grid), density(&r, hr, &grid));
    let overlap: f64 = pg.iter().zip(&pr).map(|(a, b)| a.min(*b)).sum::<f64>() * step;
    let kl: f64 = pr
        .iter()
        .zip(&pg)
        .map(|(&p, &q)| {
            if p > FLOOR {
                p * (p / q.max(FLOOR)).ln()
            } else {
                0.0
            }
        })
        .sum::<f64>()
        * step;
    Some(SetComparison {
        generated: gs,
        reference: rs,
        overlap: overlap.clamp(0.0, 1.0),
        kl_divergence: kl.max(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_the_sample_deviation() {
        // 2 4 4 4 5 5 7 9: mean 5, squared deviations sum 32 → sd = √(32/7).
        let s = Summary::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0, f64::NAN]).unwrap();
        assert_eq!((s.mean, s.count), (5.0, 8));
        assert!((s.sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn shifted_sets_overlap_as_two_gaussians_do() {
        // Many points from N(0,1) and N(1,1) (via evenly spaced quantiles): the overlap of two
        // unit Gaussians one sd apart is 2Φ(−1/2) ≈ 0.6171, and KL = 1/2. Kernel smoothing
        // widens both a little (h ≈ 0.25 at n = 1000), which raises the overlap slightly.
        let quantiles: Vec<f64> = (1..1000)
            .map(|i| inverse_normal(f64::from(i) / 1000.0))
            .collect();
        let shifted: Vec<f64> = quantiles.iter().map(|x| x + 1.0).collect();
        let c = compare_sets(&shifted, &quantiles).unwrap();
        assert!((c.overlap - 0.617).abs() < 0.03, "overlap {}", c.overlap);
        assert!(
            (c.kl_divergence - 0.5).abs() < 0.05,
            "kl {}",
            c.kl_divergence
        );
        let same = compare_sets(&[3.0, 3.0], &[3.0]).unwrap();
        assert!(same.overlap > 0.99);
    }

    /// Acklam's rational approximation (|error| < 1.2e-9) — enough for test data.
    #[allow(
        clippy::excessive_precision,
        reason = "the published coefficients, verbatim"
    )]
    fn inverse_normal(p: f64) -> f64 {
        let a = [
            -3.969683028665376e1,
            2.209460984245205e2,
            -2.759285104469687e2,
            1.383577518672690e2,
            -3.066479806614716e1,
            2.506628277459239,
        ];
        let b = [
            -5.447609879822406e1,
            1.615858368580409e2,
            -1.556989798598866e2,
            6.680131188771972e1,
            -1.328068155288572e1,
        ];
        let c = [
            -7.784894002430293e-3,
            -3.223964580411365e-1,
            -2.400758277161838,
            -2.549732539343734,
            4.374664141464968,
            2.938163982698783,
        ];
        let d = [
            7.784695709041462e-3,
            3.224671290700398e-1,
            2.445134137142996,
            3.754408661907416,
        ];
        let tail = |q: f64| {
            (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
        };
        if p < 0.02425 {
            tail((-2.0 * p.ln()).sqrt())
        } else if p > 1.0 - 0.02425 {
            -tail((-2.0 * (1.0 - p).ln()).sqrt())
        } else {
            let q = p - 0.5;
            let r = q * q;
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        }
    }
}
