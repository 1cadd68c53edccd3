//! A model's gradients and weights as one flat buffer, in the order the module visits its
//! parameters — the same in every process that built the same model, where parameter ids
//! are not.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// The layout of a model's parameters in a flat buffer: their sizes in visiting order.
/// Gradients pack as every parameter's values (zeros where a parameter has no gradient)
/// followed by one presence flag per parameter, so after a sum a parameter that no rank
/// trained stays without a gradient, as it would in one process.
///
/// ```
/// use aurl_model::TransformerConfig;
/// use aurl_model::train::distributed::GradientPacking;
/// use burn::prelude::*;
/// let model = TransformerConfig::tiny(32).init(&Device::flex()).unwrap();
/// let packing = GradientPacking::of(&model);
/// assert_eq!(packing.weights(&model).len(), packing.parameters());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradientPacking {
    sizes: Vec<usize>,
    values: usize,
}

impl GradientPacking {
    /// The layout of `module`'s float parameters.
    #[must_use]
    pub fn of<M: Module>(module: &M) -> Self {
        let mut sizes = Sizes(Vec::new());
        module.visit(&mut sizes);
        let values = sizes.0.iter().sum();
        Self {
            sizes: sizes.0,
            values,
        }
    }

    /// Scalar parameters in all.
    #[must_use]
    pub fn parameters(&self) -> usize {
        self.values
    }

    /// Length of a packed gradient buffer (values, then one flag per parameter tensor).
    #[must_use]
    pub fn gradient_len(&self) -> usize {
        self.values + self.sizes.len()
    }

    /// `grads` of `module` as one buffer of [`GradientPacking::gradient_len`] values.
    #[must_use]
    pub fn pack<M: Module>(&self, module: &M, grads: &GradientsParams) -> Vec<f32> {
        let mut pack = Pack {
            grads,
            values: Vec::with_capacity(self.gradient_len()),
            present: Vec::with_capacity(self.sizes.len()),
        };
        module.visit(&mut pack);
        pack.values.extend(pack.present);
        pack.values
    }

    /// The gradients of `module` in `packed` (a buffer from [`GradientPacking::pack`],
    /// possibly summed over ranks), on the device of each parameter's gradients. A
    /// parameter whose flag is 0 gets none.
    ///
    /// # Panics
    /// If `packed` is not [`GradientPacking::gradient_len`] long.
    #[must_use]
    pub fn unpack<M: Module>(&self, module: &M, packed: &[f32]) -> GradientsParams {
        assert_eq!(
            packed.len(),
            self.gradient_len(),
            "a packed gradient buffer"
        );
        let (values, present) = packed.split_at(self.values);
        let mut unpack = Unpack {
            values,
            present,
            index: 0,
            offset: 0,
            grads: GradientsParams::new(),
        };
        module.visit(&mut unpack);
        unpack.grads
    }

    /// `module`'s weights as one buffer of [`GradientPacking::parameters`] values (to
    /// broadcast the initial weights, or checksum replicas).
    #[must_use]
    pub fn weights<M: Module>(&self, module: &M) -> Vec<f32> {
        let mut weights = Weights(Vec::with_capacity(self.values));
        module.visit(&mut weights);
        weights.0
    }

    /// A 64-bit checksum of `module`'s weights, bit for bit and in packing order: equal on
    /// two replicas exactly when (up to hash collisions) their weights are identical.
    #[must_use]
    pub fn checksum<M: Module>(&self, module: &M) -> u64 {
        self.weights(module).iter().fold(0x5EED, |h, w| {
            aurl_core::rng::mix64(h ^ u64::from(w.to_bits()))
        })
    }

    /// `module` with its weights replaced by `weights` (from [`GradientPacking::weights`]).
    ///
    /// # Panics
    /// If `weights` is not [`GradientPacking::parameters`] long.
    #[must_use]
    pub fn load_weights<M: Module>(&self, module: M, weights: &[f32]) -> M {
        assert_eq!(weights.len(), self.values, "a packed weight buffer");
        module.map(&mut Load { weights, offset: 0 })
    }
}

struct Sizes(Vec<usize>);

impl ModuleVisitor for Sizes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.shape().num_elements());
    }
}

struct Pack<'a> {
    grads: &'a GradientsParams,
    values: Vec<f32>,
    present: Vec<f32>,
}

impl ModuleVisitor for Pack<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        match self.grads.get::<D>(param.id) {
            Some(g) => {
                let data = g.into_data().convert::<f32>();
                self.values
                    .extend_from_slice(data.as_slice::<f32>().unwrap_or(&[]));
                self.present.push(1.0);
            }
            None => {
                let n = param.shape().num_elements();
                self.values.resize(self.values.len() + n, 0.0);
                self.present.push(0.0);
            }
        }
    }
}

struct Unpack<'a> {
    values: &'a [f32],
    present: &'a [f32],
    index: usize,
    offset: usize,
    grads: GradientsParams,
}

impl ModuleVisitor for Unpack<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = param.shape();
        let n = shape.num_elements();
        let slice = &self.values[self.offset..self.offset + n];
        if self.present[self.index] > 0.0 {
            let device = param.device().inner();
            let g = Tensor::<D>::from_data(TensorData::new(slice.to_vec(), shape), &device);
            self.grads.register::<D>(param.id, g);
        }
        self.offset += n;
        self.index += 1;
    }
}

struct Weights(Vec<f32>);

impl ModuleVisitor for Weights {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data().convert::<f32>();
        self.0
            .extend_from_slice(data.as_slice::<f32>().unwrap_or(&[]));
    }
}

struct Load<'a> {
    weights: &'a [f32],
    offset: usize,
}

impl ModuleMapper for Load<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| {
            let shape = tensor.shape();
            let n = shape.num_elements();
            let values = self.weights[self.offset..self.offset + n].to_vec();
            self.offset += n;
            let loaded = Tensor::<D>::from_data(TensorData::new(values, shape), &tensor.device());
            if tensor.is_require_grad() {
                loaded.require_grad()
            } else {
                loaded
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::optim::GradientsParams;
    use burn::prelude::*;

    use super::GradientPacking;
    use crate::{Transformer, TransformerConfig};

    fn model(seed: u64, device: &Device) -> Transformer {
        device.seed(seed);
        TransformerConfig::tiny(24).init(device).unwrap()
    }

    fn grads(model: &Transformer, rows: &[[i64; 6]], device: &Device) -> GradientsParams {
        let ids: Vec<i64> = rows.iter().flatten().copied().collect();
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(ids, [rows.len(), 6]), device);
        let loss = model
            .forward(inputs, 0, None)
            .unwrap()
            .powf_scalar(2.0)
            .sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    #[test]
    fn gradients_survive_a_round_trip_and_sum_like_the_whole_batch() {
        let device = Device::flex().autodiff();
        let m = model(3, &device);
        let packing = GradientPacking::of(&m);
        let (a, b) = ([[1, 2, 3, 4, 5, 6]], [[6, 5, 4, 3, 2, 1]]);
        let packed_a = packing.pack(&m, &grads(&m, &a, &device));
        assert_eq!(packed_a.len(), packing.gradient_len());
        let round_trip = packing.pack(&m, &packing.unpack(&m, &packed_a));
        assert_eq!(round_trip, packed_a);
        // A summed loss's gradient is the sum of its parts': two ranks' packed gradients
        // add up to the gradient of the batch of both rows.
        let packed_b = packing.pack(&m, &grads(&m, &b, &device));
        let both = packing.pack(&m, &grads(&m, &[a[0], b[0]], &device));
        let n = packing.parameters();
        for i in 0..n {
            let sum = packed_a[i] + packed_b[i];
            assert!(
                (sum - both[i]).abs() <= 1e-3 * (1.0 + both[i].abs()),
                "{i}: {sum} vs {}",
                both[i]
            );
        }
        // Every parameter had a gradient: its flag is 1 in each part.
        assert!(packed_a[n..].iter().all(|&f| f == 1.0));
    }

    #[test]
    fn a_parameter_without_gradient_stays_without_one() {
        let device = Device::flex().autodiff();
        let m = model(3, &device);
        let packing = GradientPacking::of(&m);
        let packed = packing.pack(&m, &GradientsParams::new());
        assert!(packed.iter().all(|&x| x == 0.0));
        assert!(packing.unpack(&m, &packed).is_empty());
    }

    #[test]
    fn weights_loaded_into_another_replica_make_it_the_same_model() {
        let device = Device::flex().autodiff();
        let (a, b) = (model(1, &device), model(2, &device));
        let packing = GradientPacking::of(&a);
        assert_ne!(packing.weights(&a), packing.weights(&b));
        let b = packing.load_weights(b, &packing.weights(&a));
        assert_eq!(packing.weights(&a), packing.weights(&b));
        // Still trainable: the loaded weights take gradients.
        let g = grads(&b, &[[1, 2, 3, 4, 5, 6]], &device);
        assert_eq!(
            g.len(),
            GradientPacking::of(&b).gradient_len() - packing.parameters()
        );
    }
}
