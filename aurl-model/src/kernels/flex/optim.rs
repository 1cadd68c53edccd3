//! The Adam(W) update on Flex: one pass over the parameter, its gradient and both moments,
//! in place where the tensors are not shared, parallel over fixed chunks.

use burn::backend::flex::FlexTensor;

use super::simd::vectorized;
use super::{contiguous, run, tensor};
use crate::kernels::AdamStep;

/// Elements per parallel task (as the element-wise kernels).
const CHUNK: usize = 1 << 15;

vectorized! {
    fn adam_chunk(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], s: [f32; 6]) {
        let [penalty, beta_1, beta_2, keep, rate, epsilon] = s;
        for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            let g = g + penalty * *p;
            *m = beta_1 * *m + (1.0 - beta_1) * g;
            *v = beta_2 * *v + (1.0 - beta_2) * (g * g);
            *p = *p * keep - rate * *m / (v.sqrt() + epsilon);
        }
    }
}

/// `t` as a tensor [`adam`] may overwrite: `t` itself when it owns its contiguous storage
/// alone, else a contiguous copy.
pub(super) fn writable(mut t: FlexTensor) -> FlexTensor {
    let whole = t
        .layout()
        .contiguous_offsets()
        .is_some_and(|(start, end)| start == 0 && end == t.bytes().len() / 4);
    if whole && t.try_storage_mut::<f32>().is_some() {
        return t;
    }
    tensor(contiguous(&t).into_owned(), t.layout().shape().clone())
}

/// One Adam step of [`crate::kernels::adam`], overwriting the parameter and both moments
/// (tensors from [`writable`], the same length as `grad`); `false` when one of them cannot
/// be written in place, which [`writable`] rules out (the caller then runs the generic body).
pub(super) fn adam(
    param: &mut FlexTensor,
    grad: &FlexTensor,
    moment_1: &mut FlexTensor,
    moment_2: &mut FlexTensor,
    step: &AdamStep,
) -> bool {
    let g = contiguous(grad);
    let scalars = step.scalars();
    let s = [
        scalars.penalty,
        step.beta_1,
        step.beta_2,
        scalars.keep,
        scalars.rate,
        scalars.epsilon,
    ];
    let (Some(ps), Some(ms), Some(vs)) = (
        param.try_storage_mut::<f32>(),
        moment_1.try_storage_mut::<f32>(),
        moment_2.try_storage_mut::<f32>(),
    ) else {
        return false;
    };
    if ps.len() != g.len() || ms.len() != g.len() || vs.len() != g.len() {
        return false;
    }
    let chunks: Vec<_> = ps
        .chunks_mut(CHUNK)
        .zip(ms.chunks_mut(CHUNK))
        .zip(vs.chunks_mut(CHUNK))
        .zip(g.chunks(CHUNK))
        .collect();
    run(
        chunks,
        g.len(),
        || (),
        |(), _, (((p, m), v), g)| {
            adam_chunk(p, m, v, g, s);
        },
    );
    true
}
