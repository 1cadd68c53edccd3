//! `AurlOps` for Burn's `Flex` CPU backend: kernels on the raw f32 storage, parallel over
//! independent rows, heads or blocks on rayon's pool (the one Flex's own operations use).
//! Every task writes its own part of the output and reductions run in a fixed order, so
//! results do not depend on how tasks are scheduled (runs stay bit-identical).
//!
//! Other element types (f16, f64, …) take the generic bodies.

mod attention;
mod elementwise;
mod linear;
pub(crate) mod math;
mod optim;
mod rows;
mod simd;

use burn::backend::TensorMetadata;
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::ops::{FloatTensorOps, QTensorOps};
use burn::tensor::quantization::QuantStore;

use crate::project::int8_scheme;
use burn::backend::tensor::{FloatTensor, IntTensor, QuantizedTensor};
use burn::tensor::{DType, FloatDType, Shape, TensorData};
use rayon::prelude::*;

use super::reference;
use super::{AdamStep, AttentionOptions, AurlOps, Dropout};

impl AurlOps for Flex {
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let shape = param.layout().shape();
        let same = [&grad, &moment_1, &moment_2]
            .iter()
            .all(|t| t.layout().shape() == shape);
        if !all_f32(&[&param, &grad, &moment_1, &moment_2]) || !same {
            return reference::adam::<Self>(param, grad, moment_1, moment_2, &step);
        }
        let mut param = optim::writable(param);
        let mut moment_1 = optim::writable(moment_1);
        let mut moment_2 = optim::writable(moment_2);
        if optim::adam(&mut param, &grad, &mut moment_1, &mut moment_2, &step) {
            (param, moment_1, moment_2)
        } else {
            reference::adam::<Self>(param, grad, moment_1, moment_2, &step)
        }
    }

    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_bias: FloatTensor<Self>,
        options: AttentionOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let key_bias = reference::bias::<Self>(key_bias);
        if !all_f32(&[&q, &k, &v]) || key_bias.as_ref().is_some_and(|b| b.dtype() != DType::F32) {
            let keep = reference::keep_mask::<Self>(&q, &k, &options);
            return reference::attention::<Self>(q, k, v, key_bias, &options, keep);
        }
        attention::forward(&q, &k, &v, key_bias.as_ref(), &options)
    }

    fn fused_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_bias: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: AttentionOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let key_bias = reference::bias::<Self>(key_bias);
        if !all_f32(&[&q, &k, &v, &out, &lse, &grad])
            || key_bias.as_ref().is_some_and(|b| b.dtype() != DType::F32)
        {
            let keep = reference::keep_mask::<Self>(&q, &k, &options);
            return reference::attention_backward::<Self>(
                q, k, v, key_bias, out, lse, grad, &options, keep,
            );
        }
        attention::backward(&q, &k, &v, key_bias.as_ref(), &out, &lse, &grad, &options)
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&x, &gamma, &beta]) {
            return reference::layer_norm::<Self>(x, gamma, beta, epsilon);
        }
        rows::layer_norm(&x, &gamma, &beta, epsilon)
    }

    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&x, &gamma, &mean, &rstd, &grad]) {
            return reference::layer_norm_backward::<Self>(x, gamma, mean, rstd, grad);
        }
        rows::layer_norm_backward(&x, &gamma, &mean, &rstd, &grad)
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 {
            return reference::gelu::<Self>(x);
        }
        elementwise::gelu(&x)
    }

    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if !all_f32(&[&x, &grad]) {
            return reference::gelu_backward::<Self>(x, grad);
        }
        elementwise::gelu_backward(&x, &grad)
    }

    fn fused_dropout(x: FloatTensor<Self>, dropout: Dropout) -> FloatTensor<Self> {
        if x.dtype() != DType::F32 {
            return reference::dropout::<Self>(x, dropout);
        }
        elementwise::dropout(&x, dropout)
    }

    fn fused_residual(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        dropout: Option<Dropout>,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&x, &a]) || x.layout().shape() != a.layout().shape() {
            return reference::residual::<Self>(x, a, dropout);
        }
        elementwise::residual(&x, &a, dropout)
    }

    fn fused_token_nll(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        smoothing: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if logits.dtype() != DType::F32 {
            return reference::token_nll::<Self>(logits, targets, smoothing);
        }
        rows::token_nll(&logits, &targets, smoothing)
    }

    fn fused_token_nll_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        smoothing: f32,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&logits, &lse, &grad]) {
            return reference::token_nll_backward::<Self>(logits, targets, lse, grad, smoothing);
        }
        rows::token_nll_backward(&logits, &targets, &lse, &grad, smoothing)
    }

    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let bias = reference::bias::<Self>(bias);
        let rows = x.layout().shape()[0];
        let floats =
            x.dtype() == DType::F32 && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        match weight.dtype() {
            DType::F32 | DType::F16 if floats && rows <= linear::FEW_ROWS => {
                linear::few_rows(&x, &weight, bias.as_ref())
            }
            DType::F32 if floats => linear::forward(&x, &weight, bias.as_ref()),
            // A half-precision decoding copy prefilling a prompt: widen the weight once.
            DType::F16 if floats => {
                let weight = <Self as FloatTensorOps<Self>>::float_cast(weight, FloatDType::F32);
                linear::forward(&x, &weight, bias.as_ref())
            }
            _ => reference::linear::<Self>(x, weight, bias),
        }
    }

    fn fused_linear_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&weight, &grad]) {
            return reference::linear_input_grad::<Self>(weight, grad);
        }
        linear::input_grad(&weight, &grad)
    }

    fn fused_linear_weight_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&x, &grad]) {
            return reference::linear_weight_grad::<Self>(x, grad);
        }
        linear::weight_grad(&x, &grad)
    }

    fn fused_linear_bias_grad(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if grad.dtype() != DType::F32 {
            return reference::linear_bias_grad::<Self>(grad);
        }
        linear::bias_grad(&grad)
    }

    fn fused_linear_quantized(
        x: FloatTensor<Self>,
        weight: QuantizedTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let bias = reference::bias::<Self>(bias);
        let rows = x.layout().shape()[0];
        let kernel = DType::QFloat(int8_scheme().with_store(QuantStore::Native));
        let floats =
            x.dtype() == DType::F32 && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        if floats && rows <= linear::FEW_ROWS && weight.dtype() == kernel {
            return linear::few_rows_int8(&x, &weight, bias.as_ref());
        }
        let weight = <Self as QTensorOps<Self>>::dequantize(weight, FloatDType::F32);
        match (floats, rows <= linear::FEW_ROWS) {
            (true, true) => linear::few_rows(&x, &weight, bias.as_ref()),
            (true, false) => linear::forward(&x, &weight, bias.as_ref()),
            _ => reference::linear::<Self>(x, weight, bias),
        }
    }
}

fn all_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// The elements of `t` in row-major order: borrowed when `t` is contiguous, copied otherwise.
fn contiguous(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().map_or_else(
            || unreachable!("a contiguous copy is contiguous"),
            <[f32]>::to_vec,
        )),
    }
}

/// A tensor of `shape` over `data` (row-major).
fn tensor(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.into()))
}

/// A tensor of logical `shape` whose elements sit in `data` at `strides` (a permuted
/// row-major layout).
fn strided(data: Vec<f32>, shape: [usize; 4], strides: [isize; 4]) -> FlexTensor {
    let n = data.len();
    FlexTensor::from_data(TensorData::new(data, [n])).with_layout(Layout::new(
        Shape::from(shape),
        strides.to_vec(),
        0,
    ))
}

/// Work (about the number of multiply-adds or elements touched) below which a kernel called
/// from outside rayon's pool runs on the calling thread: such a call hands its job to a pool
/// thread and sleeps until it is done (tens of microseconds when the pool's threads have
/// gone to sleep), which a decoding step's small products cannot repay.
const PARALLEL_WORK: usize = 1 << 18;

/// The same threshold for a kernel called on one of the pool's own threads (a decoding job
/// the sampler runs there): it pushes tasks to its own queue and runs them itself unless
/// another thread steals them first, so splitting pays off much earlier.
const PARALLEL_WORK_IN_POOL: usize = 1 << 14;

/// Whether `work` is worth spreading over rayon's pool from the current thread.
fn worth_parallel(work: usize) -> bool {
    let threshold = if rayon::current_thread_index().is_some() {
        PARALLEL_WORK_IN_POOL
    } else {
        PARALLEL_WORK
    };
    work >= threshold
}

/// Runs `f(scratch, index, item)` for every item, spread over rayon's pool when `work` is
/// worth it (each pool thread with its own `init()` scratch), else in order on the calling
/// thread. Items write disjoint outputs, so the results are the same either way.
fn run<I: Send, S>(
    items: Vec<I>,
    work: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, I) + Sync + Send,
) {
    if worth_parallel(work) && items.len() > 1 {
        items
            .into_par_iter()
            .enumerate()
            .for_each_init(&init, |scratch, (i, item)| f(scratch, i, item));
    } else {
        let mut scratch = init();
        for (i, item) in items.into_iter().enumerate() {
            f(&mut scratch, i, item);
        }
    }
}

/// `n` floats, every one of which `fill` initialises (in parallel tasks, or through
/// [`SharedMut`] writes): spares the serial zeroing of `vec![0.0; n]` before parallel work
/// overwrites it.
fn filled(n: usize, fill: impl FnOnce(&mut [std::mem::MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    fill(&mut out.spare_capacity_mut()[..n]);
    // SAFETY: `fill` wrote all `n` elements (every caller's loop covers its whole output).
    unsafe { out.set_len(n) };
    out
}

/// A raw pointer that tasks on other threads write through, each to its own elements.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);

// SAFETY: every use writes disjoint elements from different tasks, and the buffer outlives
// the parallel loop that uses it.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// Writes element `index`.
    ///
    /// # Safety
    /// `index` is inside the buffer and no other task writes or reads it concurrently.
    unsafe fn write(self, index: usize, value: f32) {
        // SAFETY: as the caller promises.
        unsafe { *self.0.add(index) = value };
    }
}
