//! Linear projections shaped for decoding.
//!
//! A decoding step multiplies a few rows (one per sequence in the batch) by every weight
//! matrix of the model. Written as `x · W` (`[rows, d_in] × [d_in, d_out]`), the weight is the
//! right-hand operand, which a CPU GEMM repacks on every call — for a handful of rows that
//! repacking costs more than the product. The same product as `(Wᵀ · xᵀ)ᵀ` makes the weight the
//! left-hand operand read in place, through a transposed view, with no copy of it.
//! [`project`] picks that form for few rows and Burn's `Linear::forward` otherwise; the
//! result is the same product (up to floating-point summation order), so it is safe under
//! autodiff and on every backend.
//!
//! A decoding step is bound by reading the weights, so they may also be stored in half
//! precision ([`HalfLinearWeights`]): [`project`] then rounds its input to the weight's
//! precision, multiplies there, and returns the result in the input's precision, so
//! everything between the products (norms, softmax, residuals) stays in f32.

use burn::module::{ModuleMapper, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::quantization::{QuantScheme, QuantValue, ScaleDtype};
use burn::tensor::{DType, FloatDType};

/// Inputs with at most this many rows (all leading dimensions together) use the transposed
/// form; with more, a GEMM amortises repacking the weight and the plain form wins.
const FEW_ROWS: usize = 32;

/// `linear.forward(x)` through [`crate::kernels::linear`]: the linear kernel where the
/// backend has one, [`generic_project`] elsewhere. A weight stored in another precision than
/// `x` (see [`HalfLinearWeights`]) gives a result in `x`'s precision.
///
/// Shapes: `[..., d_in]` → `[..., d_out]`.
pub(crate) fn project<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    crate::kernels::linear(linear, x)
}

/// [`project`] from Burn's generic operations (what backends without a linear kernel run):
/// computed as `(Wᵀ · xᵀ)ᵀ + b` when `x` has between 2 and [`FEW_ROWS`] rows (a decoding
/// step's batch), where that is faster on CPU backends; a weight stored in another precision
/// than `x` is multiplied in its own precision and the result returned in `x`'s.
pub(crate) fn generic_project<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    if matches!(linear.weight.val().dtype(), DType::QFloat(_)) {
        // Burn's linear multiplies by a quantized weight itself (dequantizing it).
        return linear.forward(x);
    }
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows: usize = dims[..D - 1].iter().product();
    let weight = linear.weight.val();
    let dtype = x.dtype();
    let few = (2..=FEW_ROWS).contains(&rows);
    let converted = weight.dtype() != dtype;
    if !few && !converted {
        return linear.forward(x);
    }
    let d_out = weight.dims()[1];
    let flat: Tensor<2> = x.reshape([rows, d_in]).cast(weight.dtype());
    // A CPU GEMM converts half-precision operands to f32 as it packs them: the transposed
    // form would convert the whole weight on every call, the plain one only the few rows.
    let product = if few && !converted {
        weight.transpose().matmul(flat.transpose()).transpose()
    } else {
        flat.matmul(weight)
    };
    let mut y = product.cast(dtype);
    if let Some(bias) = &linear.bias {
        y = y + bias.val().cast(dtype).unsqueeze::<2>();
    }
    let mut out = dims;
    out[D - 1] = d_out;
    y.reshape(out)
}

/// A [`ModuleMapper`] that stores the weight matrix of every [`Linear`] in a module in
/// `dtype` (for decoding: [`FloatDType::F16`] halves the bytes a step reads), leaving biases,
/// embeddings and norms as they are. Only for inference through [`project`]: optimisers
/// and `Linear::forward` expect the weights in the activations' precision.
#[derive(Debug)]
pub(crate) struct HalfLinearWeights {
    dtype: FloatDType,
    /// For each module entered, whether it is a `Linear`.
    inside: Vec<bool>,
}

impl HalfLinearWeights {
    /// A mapper storing `Linear` weights in `dtype`.
    pub(crate) fn new(dtype: FloatDType) -> Self {
        Self {
            dtype,
            inside: Vec::new(),
        }
    }
}

impl ModuleMapper for HalfLinearWeights {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.inside.push(container_type == "Struct:Linear");
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.inside.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D == 2 && self.inside.last() == Some(&true) {
            let dtype = self.dtype;
            param.map(|w| w.cast(dtype))
        } else {
            param
        }
    }
}

/// Output columns per int8 scale: each weight row's runs of this many columns share one f32
/// scale (finer than one scale per output channel).
pub(crate) const INT8_BLOCK: usize = 32;

/// The int8 scheme of [`Int8LinearWeights`]: symmetric 8-bit values, one f32 scale per run
/// of [`INT8_BLOCK`] columns of a weight row.
pub(crate) fn int8_scheme() -> QuantScheme {
    QuantScheme::default()
        .with_value(QuantValue::Q8S)
        .per_block([INT8_BLOCK as u8], ScaleDtype::F32)
}

/// A [`ModuleMapper`] that stores the weight matrix of every [`Linear`] whose output width
/// is a multiple of [`INT8_BLOCK`] as symmetric int8 with a scale per run of
/// [`INT8_BLOCK`] output columns (quarter the bytes of f32), and every other `Linear`
/// weight in f16. For decoding only, like [`HalfLinearWeights`].
#[derive(Debug, Default)]
pub(crate) struct Int8LinearWeights {
    /// For each module entered, whether it is a `Linear`.
    inside: Vec<bool>,
}

impl ModuleMapper for Int8LinearWeights {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.inside.push(container_type == "Struct:Linear");
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.inside.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D != 2 || self.inside.last() != Some(&true) {
            return param;
        }
        param.map(|w| {
            if w.dims()[D - 1].is_multiple_of(INT8_BLOCK) {
                w.quantize_dynamic(&int8_scheme())
            } else {
                w.cast(FloatDType::F16)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::{DType, Distribution};

    fn max_difference<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn equals_the_plain_product_for_every_row_count() {
        let device = Device::flex();
        for bias in [true, false] {
            let linear = LinearConfig::new(24, 40).with_bias(bias).init(&device);
            for rows in [1, 2, 3, 8, 16, 32, 33, 64] {
                let x: Tensor<3> = Tensor::random([rows, 1, 24], Distribution::Default, &device);
                let projected = project(&linear, x.clone());
                assert_eq!(projected.dims(), [rows, 1, 40]);
                let difference = max_difference(projected, linear.forward(x));
                assert!(difference < 1e-5, "rows {rows}, bias {bias}: {difference}");
            }
        }
    }

    #[test]
    fn keeps_the_leading_dimensions() {
        let device = Device::flex();
        let linear = LinearConfig::new(8, 6).init(&device);
        let x: Tensor<4> = Tensor::random([2, 3, 2, 8], Distribution::Default, &device);
        let projected = project(&linear, x.clone());
        assert_eq!(projected.dims(), [2, 3, 2, 6]);
        assert!(max_difference(projected, linear.forward(x)) < 1e-5);
    }

    #[test]
    fn half_weights_give_the_product_within_half_precision() {
        let device = Device::flex();
        let linear = LinearConfig::new(64, 48).init(&device);
        let half = linear
            .clone()
            .map(&mut HalfLinearWeights::new(FloatDType::F16));
        assert_eq!(half.weight.val().dtype(), DType::F16);
        assert_eq!(
            half.bias.as_ref().map(|b| b.val().dtype()),
            Some(DType::F32)
        );
        // One row (matrix-vector), a decoding batch and a training-sized input.
        for rows in [1, 3, 16, 40] {
            let x: Tensor<3> = Tensor::random([rows, 1, 64], Distribution::Default, &device);
            let exact = linear.forward(x.clone());
            let approximate = project(&half, x);
            assert_eq!(approximate.dtype(), DType::F32);
            assert_eq!(approximate.dims(), [rows, 1, 48]);
            let scale = exact.clone().abs().max().into_scalar::<f32>();
            let difference = max_difference(approximate, exact);
            assert!(
                difference < 4e-3 * scale,
                "rows {rows}: {difference} of {scale}"
            );
        }
    }

    #[derive(Module, Debug)]
    struct Parts {
        linear: Linear,
        inner: Option<Vec<Linear>>,
        norm: burn::nn::LayerNorm,
        embedding: burn::nn::Embedding,
    }

    #[test]
    fn the_mapper_halves_only_linear_weights() {
        let device = Device::flex();
        let parts = Parts {
            linear: LinearConfig::new(4, 3).init(&device),
            inner: Some(vec![LinearConfig::new(3, 2).init(&device)]),
            norm: burn::nn::LayerNormConfig::new(4).init(&device),
            embedding: burn::nn::EmbeddingConfig::new(5, 4).init(&device),
        }
        .map(&mut HalfLinearWeights::new(FloatDType::F16));
        assert_eq!(parts.linear.weight.val().dtype(), DType::F16);
        let inner = &parts.inner.as_ref().expect("kept")[0];
        assert_eq!(inner.weight.val().dtype(), DType::F16);
        assert_eq!(inner.bias.as_ref().expect("bias").val().dtype(), DType::F32);
        assert_eq!(parts.norm.gamma.val().dtype(), DType::F32);
        assert_eq!(parts.embedding.weight.val().dtype(), DType::F32);
    }

    #[test]
    fn gradients_match_the_plain_product() {
        let device = Device::flex().autodiff();
        let linear = LinearConfig::new(12, 10).init(&device);
        let x: Tensor<2> = Tensor::random([4, 12], Distribution::Default, &device);
        let grads = (project(&linear, x.clone()) * 3.0).sum().backward();
        let plain = (linear.forward(x) * 3.0).sum().backward();
        let weight = |g| linear.weight.grad(g).expect("weight gradient");
        assert!(max_difference(weight(&grads), weight(&plain)) < 1e-5);
    }
}
