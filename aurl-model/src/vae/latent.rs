//! Latent codes and the tools over them: seeded reparameterization noise, spherical
//! interpolation and attribute vectors.

use aurl_core::rng::SeedRng;
use burn::prelude::*;

/// A batch of latent codes: one global `z` per sequence `[b, z_dim]`, and with a
/// hierarchical VAE one local `z` per segment `[b, segments, local_z_dim]`.
#[derive(Debug, Clone)]
pub struct Latent {
    /// The global code.
    pub global: Tensor<2>,
    /// The per-segment codes, if the model has them.
    pub local: Option<Tensor<3>>,
}

impl Latent {
    /// Rows in the batch.
    #[must_use]
    pub fn batch(&self) -> usize {
        self.global.dims()[0]
    }

    /// Row `i` alone (a batch of one).
    #[must_use]
    pub fn row(&self, i: usize) -> Self {
        Self {
            global: self.global.clone().narrow(0, i, 1),
            local: self.local.as_ref().map(|l| l.clone().narrow(0, i, 1)),
        }
    }

    /// The codes as host vectors, one per row (global, then local flattened), for storage
    /// or plotting.
    #[must_use]
    pub fn to_rows(&self) -> Vec<Vec<f32>> {
        let b = self.batch();
        let flat = |t: Tensor<2>| {
            t.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        };
        let global = flat(self.global.clone());
        let local = self
            .local
            .as_ref()
            .map(|l| {
                let [_, s, z] = l.dims();
                flat(l.clone().reshape([b, s * z]))
            })
            .unwrap_or_default();
        let (gw, lw) = (global.len() / b.max(1), local.len() / b.max(1));
        (0..b)
            .map(|i| {
                let mut row = global[i * gw..(i + 1) * gw].to_vec();
                row.extend_from_slice(&local[i * lw..(i + 1) * lw]);
                row
            })
            .collect()
    }
}

/// A diagonal Gaussian posterior `q(z | x)`: means and log-variances of the global code
/// `[b, z]` and of the local codes `[b, segments, z_local]`.
#[derive(Debug, Clone)]
pub struct Posterior {
    /// Global means.
    pub mean: Tensor<2>,
    /// Global log-variances `ln σ²`.
    pub log_var: Tensor<2>,
    /// Local means and log-variances.
    pub local: Option<(Tensor<3>, Tensor<3>)>,
}

impl Posterior {
    /// The most likely code: the means.
    #[must_use]
    pub fn mode(&self) -> Latent {
        Latent {
            global: self.mean.clone(),
            local: self.local.as_ref().map(|(m, _)| m.clone()),
        }
    }

    /// A sample `μ + σ·ε` (the reparameterization trick: differentiable in μ and σ), with ε
    /// from `rng`.
    #[must_use]
    pub fn sample(&self, rng: &mut LatentRng) -> Latent {
        let draw = |mean: Tensor<2>, log_var: Tensor<2>, rng: &mut LatentRng| {
            let eps = rng.normal(mean.dims(), &mean.device());
            mean + log_var.mul_scalar(0.5).exp() * eps
        };
        let global = draw(self.mean.clone(), self.log_var.clone(), rng);
        let local = self.local.as_ref().map(|(m, v)| {
            let [b, s, z] = m.dims();
            draw(
                m.clone().reshape([b, s * z]),
                v.clone().reshape([b, s * z]),
                rng,
            )
            .reshape([b, s, z])
        });
        Latent { global, local }
    }
}

/// The noise source of reparameterization and prior sampling: the workspace's
/// [`SeedRng`] (so a seed means the same draws on every backend and dependency version) and
/// Box–Muller normals generated on the host.
#[derive(Debug, Clone)]
pub struct LatentRng {
    bits: SeedRng,
}

impl LatentRng {
    /// A generator from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            bits: SeedRng::new(seed),
        }
    }

    /// A uniform draw in (0, 1] (never 0, so its logarithm is finite).
    pub fn uniform(&mut self) -> f64 {
        self.bits.unit() + f64::EPSILON / 2.0
    }

    /// Standard normal draws, `n` of them.
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let (u, v) = (self.uniform(), self.uniform());
            let r = (-2.0 * u.ln()).sqrt();
            let a = std::f64::consts::TAU * v;
            out.push((r * a.cos()) as f32);
            out.push((r * a.sin()) as f32);
        }
        out.truncate(n);
        out
    }

    /// A `[rows, cols]` tensor of standard normal draws on `device`.
    pub fn normal(&mut self, [rows, cols]: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::<1>::from_data(
            TensorData::new(self.normals(rows * cols), [rows * cols]),
            device,
        )
        .reshape([rows, cols])
    }
}

/// Spherical interpolation (Shoemake, 1985; White, "Sampling Generative Networks", 2016)
/// between codes `a` and `b` at `t ∈ [0, 1]`: follows the great circle, so intermediate
/// codes keep the norm a Gaussian prior expects (a straight line passes through the
/// improbable low-norm middle). Falls back to the straight line for (anti)parallel codes.
///
/// ```
/// use aurl_model::vae::slerp;
/// let a = [1.0f32, 0.0];
/// let b = [0.0f32, 1.0];
/// let mid = slerp(&a, &b, 0.5);
/// assert!((mid[0] - 0.5f32.sqrt()).abs() < 1e-6 && (mid[1] - 0.5f32.sqrt()).abs() < 1e-6);
/// ```
///
/// # Panics
/// If the codes differ in length.
#[must_use]
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "codes of one model have one length");
    let norm = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    let cos = if na > 0.0 && nb > 0.0 {
        (a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (na * nb)).clamp(-1.0, 1.0)
    } else {
        1.0
    };
    let omega = cos.acos();
    let (wa, wb) = if omega.sin().abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * omega).sin() / omega.sin(),
            (t * omega).sin() / omega.sin(),
        )
    };
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

/// `steps` codes from `a` to `b` (both ends included) along [`slerp`].
#[must_use]
pub fn interpolate(a: &[f32], b: &[f32], steps: usize) -> Vec<Vec<f32>> {
    match steps {
        0 => Vec::new(),
        1 => vec![a.to_vec()],
        n => (0..n)
            .map(|i| slerp(a, b, i as f32 / (n - 1) as f32))
            .collect(),
    }
}

/// An attribute vector (Roberts et al., MusicVAE, 2018): the mean code of pieces with an
/// attribute minus the mean code of pieces without it. Adding a multiple of it to a code
/// moves the decoded piece towards the attribute. `None` if either set is empty or the
/// lengths differ.
#[must_use]
pub fn attribute_vector(with: &[Vec<f32>], without: &[Vec<f32>]) -> Option<Vec<f32>> {
    let mean = |set: &[Vec<f32>]| -> Option<Vec<f32>> {
        let first = set.first()?;
        let mut m = vec![0.0f32; first.len()];
        for code in set {
            if code.len() != m.len() {
                return None;
            }
            m.iter_mut().zip(code).for_each(|(a, b)| *a += b);
        }
        m.iter_mut().for_each(|a| *a /= set.len() as f32);
        Some(m)
    };
    let (a, b) = (mean(with)?, mean(without)?);
    (a.len() == b.len()).then(|| a.iter().zip(&b).map(|(x, y)| x - y).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_are_seeded_and_standard() {
        let a = LatentRng::new(5).normals(20_000);
        assert_eq!(a, LatentRng::new(5).normals(20_000));
        assert_ne!(a[..10], LatentRng::new(6).normals(10)[..]);
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    #[test]
    fn slerp_keeps_the_norm_between_equal_norm_codes_and_hits_the_ends() {
        let a = [3.0f32, 0.0, 4.0];
        let b = [0.0f32, 5.0, 0.0];
        for t in [0.0, 0.25, 0.5, 0.9, 1.0] {
            let c = slerp(&a, &b, t);
            let n = c.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((n - 5.0).abs() < 1e-4, "t {t}: {n}");
        }
        assert_eq!(slerp(&a, &b, 0.0), a.to_vec());
        let path = interpolate(&a, &b, 5);
        assert_eq!(path.len(), 5);
        assert!(path[4].iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
        // Parallel codes: the straight line.
        assert_eq!(slerp(&[1.0, 1.0], &[2.0, 2.0], 0.5), vec![1.5, 1.5]);
    }

    #[test]
    fn attribute_vectors_are_differences_of_means() {
        let v = attribute_vector(&[vec![1.0, 2.0], vec![3.0, 4.0]], &[vec![0.0, 1.0]]).unwrap();
        assert_eq!(v, vec![2.0, 2.0]);
        assert!(attribute_vector(&[], &[vec![0.0]]).is_none());
        assert!(attribute_vector(&[vec![1.0]], &[vec![0.0, 1.0]]).is_none());
    }
}
