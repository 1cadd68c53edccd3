//! The decoding path: `x·W + b` for a few rows (one token per sequence), reading f32, f16
//! or int8 weights as stored — each weight row widened once per group of rows instead of
//! converted at packing time — on both cores.

use burn::backend::flex::{FlexQTensor, FlexTensor};
use burn::tensor::{DType, f16};

use super::super::simd::vectorized;
use super::super::{SharedMut, contiguous, filled, run, tensor, worth_parallel};
use super::{dims2, parallelism};
use crate::project::INT8_BLOCK;

/// Rows per task when filling or reducing rows in parallel.
pub(super) const ROWS: usize = 64;

/// Rows up to which [`few_rows`] replaces gemm (a decoding step's batch).
pub(in crate::kernels::flex) const FEW_ROWS: usize = 32;

/// Rows of the input that [`few_rows`] accumulates together per pass over the weight.
pub(super) const ROW_GROUP: usize = FEW_ROWS;

/// `x [rows, d_in] · w [d_in, d_out] + bias` for a few rows (a decoding step), with the
/// weight in f32 or f16. A decoding step is bound by reading the weights, so they are
/// streamed once, row after row (a strip of columns per task when two cores are worth
/// waking), each weight row applied to every input row while it is in cache; an f16 weight
/// is widened as it is read. For several rows of an f32 weight, gemm computes `(wᵀ·xᵀ)ᵀ`
/// instead, reading the weight in place (as the left operand it is not repacked), on both
/// cores when the product is worth a hand-off; a lone f32 row is summed as gemm sums a row
/// of a batch ([`lone_row`]), so a sequence's logits do not depend on how many rows it is
/// decoded with (what keeps a server's pieces reproducible whatever its load).
pub(in crate::kernels::flex) fn few_rows(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> FlexTensor {
    let (rows, d_in) = dims2(x);
    let d_out = dims2(weight).1;
    let x = contiguous(x);
    let bias = bias.map(contiguous);
    let weight = weight.to_contiguous();
    if rows > 1 && weight.dtype() == DType::F32 {
        let y = transposed(
            &x,
            weight.storage::<f32>(),
            bias.as_deref(),
            (rows, d_in, d_out),
        );
        return tensor(y, [rows, d_out]);
    }
    let work = rows * d_in * d_out;
    // Two strips (one per core) when the product is worth a hand-off, each a multiple of
    // 16 columns.
    let strips = if worth_parallel(work) { 2 } else { 1 };
    let width = d_out
        .div_ceil(strips)
        .next_multiple_of(16)
        .min(d_out.max(1));
    let y = filled(rows * d_out, |y| {
        let y = SharedMut(y.as_mut_ptr().cast());
        let spans: Vec<usize> = (0..d_out.div_ceil(width.max(1))).collect();
        run(spans, work, Vec::new, |acc: &mut Vec<f32>, _, strip| {
            let j0 = strip * width;
            let cols = width.min(d_out - j0);
            for r0 in (0..rows).step_by(ROW_GROUP) {
                let group = ROW_GROUP.min(rows - r0);
                acc.clear();
                let x = &x[r0 * d_in..(r0 + group) * d_in];
                let shape = (d_in, d_out, j0, cols);
                if weight.dtype() == DType::F32 {
                    lone_row(x, weight.storage::<f32>(), bias.as_deref(), shape, acc);
                } else {
                    match &bias {
                        Some(bias) => {
                            (0..group).for_each(|_| acc.extend_from_slice(&bias[j0..j0 + cols]))
                        }
                        None => acc.resize(group * cols, 0.0),
                    }
                    accumulate_f16(x, weight.storage::<f16>(), shape, acc);
                }
                for r in 0..group {
                    for c in 0..cols {
                        // SAFETY: columns j0.. of rows r0.. belong to this task alone.
                        unsafe { y.write((r0 + r) * d_out + j0 + c, acc[r * cols + c]) };
                    }
                }
            }
        });
    });
    tensor(y, [rows, d_out])
}

/// [`few_rows`] for a weight quantized by [`crate::project::Int8LinearWeights`]: int8
/// values with an f32 scale per run of [`INT8_BLOCK`] columns of each row, widened and
/// scaled as each weight row is read.
pub(in crate::kernels::flex) fn few_rows_int8(
    x: &FlexTensor,
    weight: &FlexQTensor,
    bias: Option<&FlexTensor>,
) -> FlexTensor {
    let (rows, d_in) = dims2(x);
    let values = weight.tensor().to_contiguous();
    let d_out = dims2(&values).1;
    let scales = weight.scales();
    let x = contiguous(x);
    let bias = bias.map(contiguous);
    let work = rows * d_in * d_out;
    let strips = if worth_parallel(work) { 2 } else { 1 };
    let width = d_out
        .div_ceil(strips)
        .next_multiple_of(INT8_BLOCK)
        .min(d_out.max(1));
    let y = filled(rows * d_out, |y| {
        let y = SharedMut(y.as_mut_ptr().cast());
        let spans: Vec<usize> = (0..d_out.div_ceil(width.max(1))).collect();
        run(spans, work, Vec::new, |acc: &mut Vec<f32>, _, strip| {
            let j0 = strip * width;
            let cols = width.min(d_out - j0);
            acc.clear();
            match &bias {
                Some(bias) => (0..rows).for_each(|_| acc.extend_from_slice(&bias[j0..j0 + cols])),
                None => acc.resize(rows * cols, 0.0),
            }
            let shape = (d_in, d_out, j0, cols);
            accumulate_int8(&x, (values.storage::<i8>(), scales), shape, acc);
            for r in 0..rows {
                for c in 0..cols {
                    // SAFETY: columns j0.. of every row belong to this task alone.
                    unsafe { y.write(r * d_out + j0 + c, acc[r * cols + c]) };
                }
            }
        });
    });
    tensor(y, [rows, d_out])
}

/// Weight rows widened per block before a gemm call in the several-row paths.
pub(super) const WIDEN_ROWS: usize = 64;

/// `acc[r] += Σ_i x[r][i] · w[i][j0..j0 + cols]` for every row `r` of `x`, with int8
/// weights and a scale per [`INT8_BLOCK`] columns of a row (`j0` and `cols` whole blocks,
/// or `cols` up to the row's end). One input row: each weight row is widened, scaled and
/// accumulated in one pass; several: blocks of weight rows are widened into f32 and
/// multiplied by gemm.
pub(super) fn accumulate_int8(
    x: &[f32],
    (q, scales): (&[i8], &[f32]),
    shape: (usize, usize, usize, usize),
    acc: &mut [f32],
) {
    let (d_in, d_out, j0, cols) = shape;
    let per_row = d_out / INT8_BLOCK;
    let rows = acc.len() / cols.max(1);
    if rows == 1 {
        for i in 0..d_in {
            let q = &q[i * d_out + j0..i * d_out + j0 + cols];
            let scales = &scales[i * per_row + j0 / INT8_BLOCK..];
            axpy_int8(x[i], q, scales, acc);
        }
        return;
    }
    widened_products(x, (d_in, cols), acc, |i, row| {
        let q = &q[i * d_out + j0..i * d_out + j0 + cols];
        let scales = &scales[i * per_row + j0 / INT8_BLOCK..];
        widen_int8(q, scales, row);
    });
}

/// `acc[r] += Σ_i x[r][i] · w[i][j0..j0 + cols]` for every row `r` of `x`, with the weight
/// in IEEE half precision, widened as it is read (one pass per weight row for one input
/// row, gemm over widened blocks for several).
pub(super) fn accumulate_f16(
    x: &[f32],
    w: &[f16],
    shape: (usize, usize, usize, usize),
    acc: &mut [f32],
) {
    let (d_in, d_out, j0, cols) = shape;
    let rows = acc.len() / cols.max(1);
    if rows == 1 {
        for i in 0..d_in {
            axpy_f16(x[i], &w[i * d_out + j0..i * d_out + j0 + cols], acc);
        }
        return;
    }
    widened_products(x, (d_in, cols), acc, |i, row| {
        widen(&w[i * d_out + j0..i * d_out + j0 + cols], row);
    });
}

/// `acc [rows, cols] += x [rows, d_in] · w` where `widen_row(i, out)` writes row `i` of `w`
/// in f32: [`WIDEN_ROWS`] rows at a time into a scratch block, multiplied by gemm.
pub(super) fn widened_products(
    x: &[f32],
    (d_in, cols): (usize, usize),
    acc: &mut [f32],
    widen_row: impl Fn(usize, &mut [f32]),
) {
    let rows = acc.len() / cols.max(1);
    let mut block = vec![0f32; WIDEN_ROWS * cols];
    for i0 in (0..d_in).step_by(WIDEN_ROWS) {
        let k = WIDEN_ROWS.min(d_in - i0);
        for (r, out) in block.chunks_exact_mut(cols).take(k).enumerate() {
            widen_row(i0 + r, out);
        }
        // SAFETY: acc is rows × cols, x rows × d_in (columns i0..i0 + k), block k × cols,
        // all row-major.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                acc.as_mut_ptr(),
                1,
                cols as isize,
                true,
                x.as_ptr().add(i0),
                1,
                d_in as isize,
                block.as_ptr(),
                1,
                cols as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

/// `out = q · scale` for int8 values with a scale per [`INT8_BLOCK`] values.
pub(super) fn widen_int8(q: &[i8], scales: &[f32], out: &mut [f32]) {
    for ((out, q), &s) in out
        .chunks_mut(INT8_BLOCK)
        .zip(q.chunks(INT8_BLOCK))
        .zip(scales)
    {
        for (o, &v) in out.iter_mut().zip(q) {
            *o = f32::from(v) * s;
        }
    }
}

/// `acc += a · w` for a half-precision `w`, widened in registers (`vcvtph2ps`) where the CPU
/// has AVX-512.
pub(super) fn axpy_f16(a: f32, w: &[f16], acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { axpy_f16_avx512(a, w, acc) };
    }
    for (acc, w) in acc.iter_mut().zip(w) {
        *acc += a * f16_to_f32(w.to_bits());
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn axpy_f16_avx512(a: f32, w: &[f16], acc: &mut [f32]) {
    use std::arch::x86_64::{
        __m256i, _mm256_loadu_si256, _mm512_cvtph_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
        _mm512_set1_ps, _mm512_storeu_ps,
    };
    let n = w.len().min(acc.len());
    let factor = _mm512_set1_ps(a);
    let mut j = 0;
    while j + 16 <= n {
        // SAFETY: elements j..j + 16 lie inside both slices.
        unsafe {
            let wide = _mm512_cvtph_ps(_mm256_loadu_si256(w.as_ptr().add(j).cast::<__m256i>()));
            let sum = _mm512_fmadd_ps(factor, wide, _mm512_loadu_ps(acc.as_ptr().add(j)));
            _mm512_storeu_ps(acc.as_mut_ptr().add(j), sum);
        }
        j += 16;
    }
    for k in j..n {
        acc[k] += a * f16_to_f32(w[k].to_bits());
    }
}

/// `acc += a · q · scale` for int8 values with a scale per [`INT8_BLOCK`] values, widened in
/// registers where the CPU has AVX-512.
pub(super) fn axpy_int8(a: f32, q: &[i8], scales: &[f32], acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { axpy_int8_avx512(a, q, scales, acc) };
    }
    for ((acc, q), &s) in acc
        .chunks_mut(INT8_BLOCK)
        .zip(q.chunks(INT8_BLOCK))
        .zip(scales)
    {
        for (acc, &v) in acc.iter_mut().zip(q) {
            *acc += a * s * f32::from(v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn axpy_int8_avx512(a: f32, q: &[i8], scales: &[f32], acc: &mut [f32]) {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm512_cvtepi8_epi32, _mm512_cvtepi32_ps, _mm512_fmadd_ps,
        _mm512_loadu_ps, _mm512_set1_ps, _mm512_storeu_ps,
    };
    let n = q.len().min(acc.len());
    let mut j = 0;
    while j + 16 <= n {
        let factor = _mm512_set1_ps(a * scales[j / INT8_BLOCK]);
        // SAFETY: elements j..j + 16 lie inside both slices (16 divides INT8_BLOCK, so they
        // share one scale).
        unsafe {
            let bytes = _mm_loadu_si128(q.as_ptr().add(j).cast::<__m128i>());
            let wide = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
            let sum = _mm512_fmadd_ps(factor, wide, _mm512_loadu_ps(acc.as_ptr().add(j)));
            _mm512_storeu_ps(acc.as_mut_ptr().add(j), sum);
        }
        j += 16;
    }
    for k in j..n {
        acc[k] += a * scales[k / INT8_BLOCK] * f32::from(q[k]);
    }
}

/// `(wᵀ·xᵀ)ᵀ + bias` by gemm, the weight as the left operand read in place.
pub(super) fn transposed(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    (rows, d_in, d_out): (usize, usize, usize),
) -> Vec<f32> {
    let mut y: Vec<f32> = Vec::with_capacity(rows * d_out);
    if let Some(bias) = bias {
        for _ in 0..rows {
            y.extend_from_slice(bias);
        }
    }
    // SAFETY: w is d_in × d_out and x rows × d_in, row-major; y holds rows × d_out (the bias
    // rows when accumulating), every element written by gemm.
    unsafe {
        gemm::gemm(
            d_out,
            rows,
            d_in,
            y.as_mut_ptr(),
            d_out as isize,
            1,
            bias.is_some(),
            w.as_ptr(),
            d_out as isize,
            1,
            x.as_ptr(),
            d_in as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            if worth_parallel(rows * d_in * d_out) {
                gemm::Parallelism::Rayon(0)
            } else {
                parallelism(d_out, rows, d_in)
            },
        );
        y.set_len(rows * d_out);
    }
    y
}

/// Columns `j0..j0 + cols` of `x·w + bias` for one row `x`, into `acc`, summed as gemm 0.19
/// sums each element of a product of several rows ([`transposed`]): the inner dimension in
/// blocks (of 512 when `d_out` ≤ 64, else of equal size at most 512 — gemm's blocking on
/// CPUs with 32–48 KB of L1 data cache per core), each block one fused multiply-add per
/// term from zero, added to the bias or the sum so far. A row decoded alone then gets the
/// logits it gets in a batch (`tests/kv_cache.rs` checks it at several widths).
fn lone_row(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    (d_in, d_out, j0, cols): (usize, usize, usize, usize),
    acc: &mut Vec<f32>,
) {
    let block = if d_out <= 64 {
        d_in.min(512)
    } else {
        d_in.div_ceil(d_in.div_ceil(512).max(1))
    };
    acc.clear();
    match bias {
        Some(bias) => acc.extend_from_slice(&bias[j0..j0 + cols]),
        None => acc.resize(cols, 0.0),
    }
    let mut sums = vec![0f32; cols];
    let mut i0 = 0;
    while i0 < d_in {
        let n = block.max(1).min(d_in - i0);
        sums.fill(0.0);
        fused_sums(
            &x[i0..i0 + n],
            &w[i0 * d_out..],
            (n, d_out, j0, cols),
            &mut sums,
        );
        for (a, &s) in acc.iter_mut().zip(&sums) {
            *a += s;
        }
        i0 += n;
    }
}

vectorized! {
    /// `acc += Σ_i x[i] · w[i][j0..j0 + cols]` for one row `x`, one fused multiply-add per
    /// term in order of `i`.
    pub(super) fn fused_sums(x: &[f32], w: &[f32], shape: (usize, usize, usize, usize), acc: &mut [f32]) {
        let (d_in, d_out, j0, cols) = shape;
        for (i, &a) in x.iter().enumerate().take(d_in) {
            let w = &w[i * d_out + j0..i * d_out + j0 + cols];
            for (acc, &w) in acc.iter_mut().zip(w) {
                *acc = a.mul_add(w, *acc);
            }
        }
    }
}

/// Widens IEEE half-precision values to f32: by the CPU's conversion instruction where it has
/// one (`vcvtph2ps`, 16 values at a time with AVX-512, 8 with F16C), else by [`f16_to_f32`].
pub(super) fn widen(src: &[f16], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { widen_avx512(src, dst) };
        }
        if std::arch::is_x86_feature_detected!("f16c") && std::arch::is_x86_feature_detected!("avx")
        {
            // SAFETY: the CPU has F16C and AVX.
            return unsafe { widen_f16c(src, dst) };
        }
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f16_to_f32(s.to_bits());
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn widen_avx512(src: &[f16], dst: &mut [f32]) {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm512_cvtph_ps, _mm512_storeu_ps};
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: elements i..i + 16 lie inside both slices.
        unsafe {
            let half = _mm256_loadu_si256(src.as_ptr().add(i).cast::<__m256i>());
            _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_cvtph_ps(half));
        }
        i += 16;
    }
    for j in i..n {
        dst[j] = f16_to_f32(src[j].to_bits());
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "f16c,avx")]
unsafe fn widen_f16c(src: &[f16], dst: &mut [f32]) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm256_cvtph_ps, _mm256_storeu_ps};
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: elements i..i + 8 lie inside both slices.
        unsafe {
            let half = _mm_loadu_si128(src.as_ptr().add(i).cast::<__m128i>());
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(half));
        }
        i += 8;
    }
    for j in i..n {
        dst[j] = f16_to_f32(src[j].to_bits());
    }
}

/// IEEE half to single precision without branches (so it vectorises): the exponent is
/// rebased by a multiplication, which also handles subnormals; infinities and NaN keep
/// their all-ones exponent.
#[inline(always)]
pub(super) fn f16_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let magnitude = h & 0x7FFF;
    let shifted = magnitude << 13;
    // 2^(127 − 15): moves the 5-bit exponent into f32's range.
    let rebased = (f32::from_bits(shifted) * f32::from_bits(0x7780_0000)).to_bits();
    let special = if magnitude >= 0x7C00 {
        shifted | 0x7F80_0000
    } else {
        rebased
    };
    f32::from_bits(special | sign)
}
