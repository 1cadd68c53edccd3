//! A piece's onset clock in seconds, following its Tempo tokens.

/// Follows a row's onset time in seconds through its tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    steps: u64,
    micros_per_quarter: f64,
    pub(crate) seconds: f64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            steps: 0,
            micros_per_quarter: 500_000.0,
            seconds: 0.0,
        }
    }

    /// The time after a token that moved the grammar to `steps` (at `resolution` steps per
    /// quarter), then adopts the token's tempo if it is one.
    /// Seconds per grid step at the tempo in force.
    pub(crate) fn seconds_per_step(&self, resolution: f64) -> f64 {
        self.micros_per_quarter / 1e6 / resolution
    }

    pub(crate) fn advance(&mut self, steps: u64, resolution: f64, tempo: Option<u32>) -> f64 {
        let delta = steps.saturating_sub(self.steps) as f64;
        self.steps = self.steps.max(steps);
        self.seconds += delta / resolution * self.micros_per_quarter / 1e6;
        if let Some(t) = tempo {
            self.micros_per_quarter = f64::from(t);
        }
        self.seconds
    }
}
