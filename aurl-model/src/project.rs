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

use burn::nn::Linear;
use burn::prelude::*;

/// Inputs with at most this many rows (all leading dimensions together) use the transposed
/// form; with more, a GEMM amortises repacking the weight and the plain form wins.
const FEW_ROWS: usize = 32;

/// `linear.forward(x)`, computed as `(Wᵀ · xᵀ)ᵀ + b` when `x` has between 2 and
/// [`FEW_ROWS`] rows (a decoding step's batch), where that is faster on CPU backends.
///
/// Shapes: `[..., d_in]` → `[..., d_out]`.
pub(crate) fn project<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows: usize = dims[..D - 1].iter().product();
    if !(2..=FEW_ROWS).contains(&rows) {
        return linear.forward(x);
    }
    let weight = linear.weight.val();
    let d_out = weight.dims()[1];
    let flat: Tensor<2> = x.reshape([rows, d_in]);
    let mut y = weight.transpose().matmul(flat.transpose()).transpose();
    if let Some(bias) = &linear.bias {
        y = y + bias.val().unsqueeze::<2>();
    }
    let mut out = dims;
    out[D - 1] = d_out;
    y.reshape(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

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
