//! Learning-rate schedule: linear warm-up, then cosine decay to a floor.

/// The learning rate at `step` (0-based) of `total`: rises linearly from `peak / warmup` to
/// `peak` over `warmup` steps, then follows a half cosine down to `floor` at the last step.
///
/// ```
/// use aurl_model::train::learning_rate;
/// assert_eq!(learning_rate(0, 100, 10, 1e-3, 1e-4), 1e-4);
/// assert_eq!(learning_rate(9, 100, 10, 1e-3, 1e-4), 1e-3);
/// assert!((learning_rate(99, 100, 10, 1e-3, 1e-4) - 1e-4).abs() < 1e-12);
/// ```
#[must_use]
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64, floor: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).saturating_sub(1).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::learning_rate;

    #[test]
    fn warms_up_then_decays_monotonically() {
        let lr: Vec<f64> = (0..50).map(|s| learning_rate(s, 50, 5, 1.0, 0.1)).collect();
        assert!(lr[..5].windows(2).all(|w| w[0] < w[1]));
        assert!(lr[4..].windows(2).all(|w| w[0] >= w[1]));
        assert!((lr[4] - 1.0).abs() < 1e-12 && (lr[49] - 0.1).abs() < 1e-12);
        // Without warm-up the first step runs at the peak.
        assert_eq!(learning_rate(0, 10, 0, 2.0, 0.0), 2.0);
    }
}
