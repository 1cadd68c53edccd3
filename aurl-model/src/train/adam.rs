//! Adam and AdamW as Burn optimizers whose update is one fused kernel per parameter
//! ([`crate::kernels::adam`]) instead of Burn's dozen one-core tensor operations.
//!
//! They keep Burn's state types (`AdamState`, `AdamWState`), so optimizer records, and the
//! checkpoints that hold them, load either way between these and Burn's `Adam`/`AdamW`.

use burn::optim::{AdamState, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::prelude::*;

use crate::kernels::{AdamStep, adam};

/// The moments' decays and epsilon: Burn's defaults for `Adam` and `AdamW`.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

/// AdamW (decoupled weight decay) with Burn's defaults (β₁ 0.9, β₂ 0.999, ε 1e-5), fused.
///
/// ```
/// use aurl_model::train::FusedAdamW;
/// use burn::optim::ModuleOptimizer;
///
/// let optimizer = ModuleOptimizer::from(FusedAdamW::new(0.01));
/// # let _ = optimizer;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedAdamW {
    /// Decoupled weight decay.
    pub weight_decay: f32,
}

impl FusedAdamW {
    /// AdamW with `weight_decay`.
    #[must_use]
    pub fn new(weight_decay: f32) -> Self {
        Self { weight_decay }
    }
}

/// Adam with an optional L2 penalty added to the gradient (Burn's `Adam` with
/// `WeightDecayConfig`), Burn's defaults otherwise, fused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedAdam {
    /// L2 penalty (0 for none).
    pub penalty: f32,
}

impl FusedAdam {
    /// Adam with an L2 `penalty`.
    #[must_use]
    pub fn new(penalty: f32) -> Self {
        Self { penalty }
    }
}

/// One step from `state` (fresh zero moments at the first step): the parameter and the
/// moments' new state.
fn step<const D: usize>(
    lr: LearningRate,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    state: Option<AdaptiveMomentumState<D>>,
    decay: f32,
    penalty: f32,
) -> (Tensor<D>, AdaptiveMomentumState<D>) {
    let (time, moment_1, moment_2) = match state {
        Some(state) => (state.time + 1, state.moment_1, state.moment_2),
        None => (1, grad.zeros_like(), grad.zeros_like()),
    };
    let settings = AdamStep {
        lr,
        beta_1: BETA_1,
        beta_2: BETA_2,
        epsilon: EPSILON,
        decay,
        penalty,
        time,
    };
    let (tensor, moment_1, moment_2) = adam(tensor, grad, moment_1, moment_2, &settings);
    (tensor, AdaptiveMomentumState::new(time, moment_1, moment_2))
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let momentum = state.map(|s| s.momentum);
        let (tensor, momentum) = step(lr, tensor, grad, momentum, self.weight_decay, 0.0);
        (tensor, Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let momentum = state.map(|s| s.momentum);
        let (tensor, momentum) = step(lr, tensor, grad, momentum, 0.0, self.penalty);
        (tensor, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::Linear;
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
    use burn::prelude::*;

    use super::{FusedAdam, FusedAdamW};
    use crate::kernels::{KernelMode, set_kernel_mode};

    /// Uniform values in `[-1, 1)` from `seed`, without the device's generator (which tests
    /// running in parallel share).
    fn values<const D: usize>(seed: u64, shape: [usize; D], device: &Device) -> Tensor<D> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    fn layer(device: &Device) -> Linear {
        Linear {
            weight: Param::from_tensor(values(1, [48, 40], device)),
            bias: Some(Param::from_tensor(values(2, [40], device))),
        }
    }

    /// Trains `model` for `steps` steps with `optim` on a linear objective (gradients that
    /// do not depend on the weights, so rounding differences do not feed back); returns it.
    fn train(mut model: Linear, optim: &mut ModuleOptimizer, steps: usize) -> Linear {
        let device = model.weight.device();
        for step in 0..steps {
            let x = values(10 + step as u64, [16, 48], &device);
            let c = values(100 + step as u64, [16, 40], &device);
            let y = (model.forward(x) * c).sum();
            let grads = GradientsParams::from_grads(y.backward(), &model);
            model = optim.step(1e-2 / (1.0 + step as f64), model, grads);
        }
        model
    }

    fn flat(model: &Linear) -> Vec<f32> {
        let mut out: Vec<f32> = model
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .unwrap_or_default();
        if let Some(bias) = &model.bias {
            out.extend(
                bias.val()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap_or_default(),
            );
        }
        out
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < 2e-5, "{what}: max difference {worst}");
    }

    /// The fused optimizers take Burn's steps (the same formulas up to rounding), with and
    /// without weight decay, on the fused and the generic path.
    #[test]
    fn fused_adam_and_adamw_take_burns_steps() {
        let device = Device::default().autodiff();
        for mode in [KernelMode::Fused, KernelMode::Generic] {
            set_kernel_mode(mode);
            for decay in [0.0, 0.1] {
                let mut ours = ModuleOptimizer::from(FusedAdamW::new(decay));
                let mut burns = AdamWConfig::new().with_weight_decay(decay).init();
                let a = train(layer(&device), &mut ours, 20);
                let b = train(layer(&device), &mut burns, 20);
                assert_close(&flat(&a), &flat(&b), &format!("AdamW {decay} {mode:?}"));

                let mut ours = ModuleOptimizer::from(FusedAdam::new(decay));
                let mut burns = AdamConfig::new()
                    .with_weight_decay((decay > 0.0).then(|| WeightDecayConfig::new(decay)))
                    .init();
                let a = train(layer(&device), &mut ours, 20);
                let b = train(layer(&device), &mut burns, 20);
                assert_close(&flat(&a), &flat(&b), &format!("Adam {decay} {mode:?}"));
            }
        }
        set_kernel_mode(KernelMode::Fused);
    }

    /// An optimizer record moves between Burn's AdamW and the fused one (checkpoints written
    /// before the fused optimizer existed still resume), and training continues identically.
    #[test]
    fn records_move_between_burns_adamw_and_the_fused_one() {
        let device = Device::default().autodiff();
        let mut burns = AdamWConfig::new().with_weight_decay(0.01).init();
        let model = train(layer(&device), &mut burns, 20);
        let mut ours = ModuleOptimizer::from(FusedAdamW::new(0.01)).load_record(burns.to_record());
        let mut again = AdamWConfig::new()
            .with_weight_decay(0.01)
            .init()
            .load_record(burns.to_record());
        let a = train(model.clone(), &mut ours, 4);
        let b = train(model, &mut again, 4);
        assert_close(&flat(&a), &flat(&b), "resumed");

        let back = AdamWConfig::new().init().load_record(ours.to_record());
        assert_eq!(back.to_record().len(), ours.to_record().len());
    }
}
