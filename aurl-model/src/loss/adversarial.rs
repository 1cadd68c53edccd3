//! GAN losses on discriminator logits, and feature matching.

use burn::prelude::*;
use burn::tensor::activation::{relu, softplus};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Which adversarial objective the discriminator and the generator minimise. The inputs are
/// raw discriminator outputs (logits, any shape); results are means, scalars `[1]`.
///
/// ```
/// use aurl_model::loss::AdversarialLoss;
/// use burn::prelude::*;
/// let device = Device::flex();
/// // A discriminator that is right by a margin pays nothing under the hinge loss.
/// let real = Tensor::<1>::from_data([2.0f32], &device);
/// let fake = Tensor::<1>::from_data([-3.0f32], &device);
/// let d = AdversarialLoss::Hinge.discriminator(real, fake.clone()).into_scalar::<f32>();
/// assert_eq!(d, 0.0);
/// assert_eq!(AdversarialLoss::Hinge.generator(fake).into_scalar::<f32>(), 3.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdversarialLoss {
    /// Goodfellow et al. (2014) with the non-saturating generator loss:
    /// D: `softplus(−real) + softplus(fake)`, G: `softplus(−fake)`.
    #[default]
    NonSaturating,
    /// Lim & Ye (2017), Miyato et al. (2018): D: `relu(1 − real) + relu(1 + fake)`,
    /// G: `−fake`.
    Hinge,
    /// Mao et al. (LSGAN, 2017): D: `½(real − 1)² + ½fake²`, G: `½(fake − 1)²`.
    LeastSquares,
}

impl AdversarialLoss {
    /// The discriminator's loss on logits for real and generated inputs.
    #[must_use]
    pub fn discriminator<const D: usize>(&self, real: Tensor<D>, fake: Tensor<D>) -> Tensor<1> {
        match self {
            Self::NonSaturating => softplus(real.neg(), 1.0).mean() + softplus(fake, 1.0).mean(),
            Self::Hinge => {
                relu(real.neg().add_scalar(1.0)).mean() + relu(fake.add_scalar(1.0)).mean()
            }
            Self::LeastSquares => (real.sub_scalar(1.0).powi_scalar(2).mean()
                + fake.powi_scalar(2).mean())
            .mul_scalar(0.5),
        }
    }

    /// The generator's loss on the discriminator's logits for generated inputs.
    #[must_use]
    pub fn generator<const D: usize>(&self, fake: Tensor<D>) -> Tensor<1> {
        match self {
            Self::NonSaturating => softplus(fake.neg(), 1.0).mean(),
            Self::Hinge => fake.mean().neg(),
            Self::LeastSquares => fake.sub_scalar(1.0).powi_scalar(2).mean().mul_scalar(0.5),
        }
    }
}

/// Feature matching (Salimans et al., 2016): the squared distance between the batch means of
/// the discriminator's intermediate features on real and on generated inputs, averaged over
/// feature elements and summed over layers. Real and generated batches need not be paired
/// (only their means meet) nor of the same size; each pair of layers must have the same
/// shape past the batch dimension.
///
/// # Errors
/// [`ModelError::Shape`] when the two lists differ in length (two empty lists give 0).
pub fn feature_matching<const D: usize>(
    real: &[Tensor<D>],
    fake: &[Tensor<D>],
) -> Result<Tensor<1>, ModelError> {
    if real.len() != fake.len() {
        return Err(ModelError::Shape(format!(
            "feature matching needs one generated feature per real one ({} real, {} generated)",
            real.len(),
            fake.len()
        )));
    }
    let mut total: Option<Tensor<1>> = None;
    for (r, f) in real.iter().zip(fake) {
        let gap = (r.clone().mean_dim(0) - f.clone().mean_dim(0))
            .powi_scalar(2)
            .mean();
        total = Some(match total {
            Some(t) => t + gap,
            None => gap,
        });
    }
    Ok(total.unwrap_or_else(|| {
        let device = real.first().map_or_else(Device::default, |t| t.device());
        Tensor::zeros([1], &device)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(values: &[f32]) -> Tensor<1> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            &Device::flex(),
        )
    }

    fn v(x: Tensor<1>) -> f32 {
        x.into_scalar::<f32>()
    }

    #[test]
    fn non_saturating_is_binary_cross_entropy() {
        // D(real) = σ(0) = ½ and D(fake) = σ(0) = ½: each term ln 2.
        let l = AdversarialLoss::NonSaturating;
        assert!((v(l.discriminator(t(&[0.0]), t(&[0.0]))) - 2.0 * 2f32.ln()).abs() < 1e-6);
        // Generator: −ln σ(ln 3) = ln(4/3).
        assert!((v(l.generator(t(&[3f32.ln()]))) - (4.0f32 / 3.0).ln()).abs() < 1e-6);
    }

    #[test]
    fn hinge_and_least_squares_by_hand() {
        let h = AdversarialLoss::Hinge;
        // relu(1 − 0.5) = 0.5 and relu(1 − 2) = 0 → mean 0.25; relu(1 + 0) = 1.
        assert!((v(h.discriminator(t(&[0.5, 2.0]), t(&[0.0]))) - 1.25).abs() < 1e-6);
        let ls = AdversarialLoss::LeastSquares;
        // ½((0 − 1)² + 0.5²) = 0.625; generator ½(0.5 − 1)² = 0.125.
        assert!((v(ls.discriminator(t(&[0.0]), t(&[0.5]))) - 0.625).abs() < 1e-6);
        assert!((v(ls.generator(t(&[0.5]))) - 0.125).abs() < 1e-6);
    }

    #[test]
    fn feature_matching_compares_batch_means() {
        let device = Device::flex();
        // Real batch mean (1, 2), generated mean (1, 4): ((0)² + (2)²)/2 = 2.
        let real = Tensor::<2>::from_data([[0.0f32, 1.0], [2.0, 3.0]], &device);
        let fake = Tensor::<2>::from_data([[1.0f32, 4.0]], &device);
        let l = v(feature_matching(std::slice::from_ref(&real), &[fake]).unwrap());
        assert!((l - 2.0).abs() < 1e-6, "{l}");
        let same = [real.clone(), real];
        assert_eq!(v(feature_matching(&same[..1], &same[1..]).unwrap()), 0.0);
        assert!(feature_matching(&same[..1], &same).is_err());
        assert_eq!(v(feature_matching::<2>(&[], &[]).unwrap()), 0.0);
    }
}
