//! The kernels of the rest of a step against their generic bodies: layer norm, GELU,
//! dropout, the token NLL, the linear and residual kernels, and the Adam update.

use burn::backend::Dispatch;
use burn::prelude::*;

use super::super::{AdamStep, AurlOps, Dropout, reference};
use super::{assert_close, random};

#[test]
fn layer_norm_kernel_equals_the_generic_body_and_burns_layer_norm() {
    let device = Device::flex().autodiff();
    device.seed(15);
    for (rows, d) in [(1, 32), (77, 64), (130, 256)] {
        let x = random([rows, d], &device).require_grad();
        let gamma = random([d], &device).require_grad();
        let beta = random([d], &device).require_grad();
        let weight = random([rows, d], &device);
        let run = |fused: bool| {
            let (y, _, _) = if fused {
                <Dispatch as AurlOps>::fused_layer_norm(
                    x.clone().into_dispatch(),
                    gamma.clone().into_dispatch(),
                    beta.clone().into_dispatch(),
                    crate::kernels::LAYER_NORM_EPSILON,
                )
            } else {
                reference::layer_norm::<Dispatch>(
                    x.clone().into_dispatch(),
                    gamma.clone().into_dispatch(),
                    beta.clone().into_dispatch(),
                    crate::kernels::LAYER_NORM_EPSILON,
                )
            };
            let y = Tensor::<2>::from_dispatch(y);
            let grads = (y.clone() * weight.clone()).sum().backward();
            let grad = |t: &Tensor<2>| t.grad(&grads).expect("tracked");
            let grad1 = |t: &Tensor<1>| t.grad(&grads).expect("tracked");
            (y.inner(), grad(&x), grad1(&gamma), grad1(&beta))
        };
        let (y, dx, dg, db) = run(true);
        let (ry, rdx, rdg, rdb) = run(false);
        assert_close(y.clone(), ry, "layer norm");
        assert_close(dx, rdx, "layer norm dx");
        assert_close(dg, rdg, "layer norm dγ");
        assert_close(db, rdb, "layer norm dβ");
        let mut norm = burn::nn::LayerNormConfig::new(d).init(&device);
        norm.gamma = burn::module::Param::from_tensor(gamma.clone().detach());
        norm.beta = Some(burn::module::Param::from_tensor(beta.clone().detach()));
        assert_close(
            y,
            norm.forward(x.clone().detach()).inner(),
            "burn's layer norm",
        );
    }
}

#[test]
fn the_layer_norm_epsilon_is_burns_default() {
    let config = burn::nn::LayerNormConfig::new(8);
    assert_eq!(config.epsilon as f32, crate::kernels::LAYER_NORM_EPSILON);
}

#[test]
fn gelu_kernel_equals_the_generic_body() {
    let device = Device::flex().autodiff();
    device.seed(16);
    let x = (random([3, 1000], &device) * 3.0).require_grad();
    let weight = random([3, 1000], &device);
    let run = |fused: bool| {
        let y = if fused {
            <Dispatch as AurlOps>::fused_gelu(x.clone().into_dispatch())
        } else {
            reference::gelu::<Dispatch>(x.clone().into_dispatch())
        };
        let y = Tensor::<2>::from_dispatch(y);
        let grads = (y.clone() * weight.clone()).sum().backward();
        (y.inner(), x.grad(&grads).expect("tracked"))
    };
    let ((y, dx), (ry, rdx)) = (run(true), run(false));
    assert_close(y, ry.clone(), "gelu");
    assert_close(dx, rdx, "gelu dx");
    let burn = burn::tensor::activation::gelu(x.clone().detach()).inner();
    assert_close(ry, burn, "burn's gelu");
}

#[test]
fn dropout_kernel_draws_the_generic_mask_and_masks_its_gradient() {
    let device = Device::flex().autodiff();
    device.seed(17);
    let x = random([4, 333, 64], &device).require_grad();
    let dropout = Dropout {
        prob: 0.25,
        seed: 99,
    };
    let run = |fused: bool| {
        let y = if fused {
            <Dispatch as AurlOps>::fused_dropout(x.clone().into_dispatch(), dropout)
        } else {
            reference::dropout::<Dispatch>(x.clone().into_dispatch(), dropout)
        };
        let y = Tensor::<3>::from_dispatch(y);
        let grads = (y.clone() * 2.0).sum().backward();
        (y.inner(), x.grad(&grads).expect("tracked"))
    };
    let ((y, dx), (ry, rdx)) = (run(true), run(false));
    assert_eq!(y.to_data(), ry.to_data());
    assert_eq!(dx.to_data(), rdx.to_data());
    let zeros = y.equal_elem(0.0).int().sum().into_scalar::<i64>() as f64;
    let rate = zeros / (4.0 * 333.0 * 64.0);
    assert!((rate - 0.25).abs() < 0.01, "dropped {rate}");
}

#[test]
fn token_nll_kernel_equals_the_generic_body() {
    let device = Device::flex().autodiff();
    device.seed(18);
    for (n, v, smoothing) in [(1, 7, 0.0), (150, 431, 0.0), (77, 100, 0.1)] {
        let logits = (random([n, v], &device) * 4.0).require_grad();
        let targets: Vec<i64> = (0..n).map(|i| ((i * 37 + 5) % v) as i64).collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), &device);
        let weight = random([n], &device);
        let run = |fused: bool| {
            let (loss, _) = if fused {
                <Dispatch as AurlOps>::fused_token_nll(
                    logits.clone().into_dispatch(),
                    targets.clone().into_dispatch(),
                    smoothing,
                )
            } else {
                reference::token_nll::<Dispatch>(
                    logits.clone().into_dispatch(),
                    targets.clone().into_dispatch(),
                    smoothing,
                )
            };
            let loss = Tensor::<1>::from_dispatch(loss);
            let grads = (loss.clone() * weight.clone()).sum().backward();
            (loss.inner(), logits.grad(&grads).expect("tracked"))
        };
        let ((l, dl), (rl, rdl)) = (run(true), run(false));
        assert_close(l, rl, &format!("token nll {n}×{v}"));
        assert_close(dl, rdl, &format!("token nll gradient {n}×{v}"));
    }
}

#[test]
fn linear_kernel_equals_the_generic_body() {
    let device = Device::flex().autodiff();
    device.seed(19);
    for (rows, d_in, d_out, bias) in [(1, 3, 5, true), (77, 64, 130, true), (300, 256, 96, false)] {
        let x = random([rows, d_in], &device).require_grad();
        let w = random([d_in, d_out], &device).require_grad();
        let b = random([d_out], &device).require_grad();
        let weight = random([rows, d_out], &device);
        let run = |fused: bool| {
            let bias = if bias {
                b.clone()
            } else {
                Tensor::empty([0], &device)
            };
            let y = if fused {
                <Dispatch as AurlOps>::fused_linear(
                    x.clone().into_dispatch(),
                    w.clone().into_dispatch(),
                    bias.into_dispatch(),
                )
            } else {
                reference::linear::<Dispatch>(
                    x.clone().into_dispatch(),
                    w.clone().into_dispatch(),
                    reference::bias::<Dispatch>(bias.into_dispatch()),
                )
            };
            let y = Tensor::<2>::from_dispatch(y);
            let grads = (y.clone() * weight.clone()).sum().backward();
            let db = b.grad(&grads);
            (
                y.inner(),
                x.grad(&grads).expect("tracked"),
                w.grad(&grads).expect("tracked"),
                db,
            )
        };
        let ((y, dx, dw, db), (ry, rdx, rdw, rdb)) = (run(true), run(false));
        let what = format!("linear {rows}×{d_in}→{d_out}");
        assert_close(y, ry, &what);
        assert_close(dx, rdx, &format!("{what} dx"));
        assert_close(dw, rdw, &format!("{what} dw"));
        assert_eq!(db.is_some(), bias);
        if let (Some(db), Some(rdb)) = (db, rdb) {
            assert_close(db, rdb, &format!("{what} db"));
        }
    }
}

#[test]
fn few_row_linear_kernel_reads_f32_and_f16_weights_as_the_generic_projection() {
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::FloatDType;
    let device = Device::flex();
    device.seed(20);
    for (d_in, d_out) in [(64, 48), (256, 300)] {
        let linear = LinearConfig::new(d_in, d_out).init(&device);
        let half = linear
            .clone()
            .map(&mut crate::project::HalfLinearWeights::new(FloatDType::F16));
        // The kernel keeps the input in f32 and widens each half weight exactly: its oracle
        // is the f32 product with the rounded weights.
        let rounded = half
            .clone()
            .map(&mut crate::project::HalfLinearWeights::new(FloatDType::F32));
        for rows in [1, 2, 7, 16, 32] {
            let x = random([rows, d_in], &device);
            for (name, l, oracle) in [("f32", &linear, &linear), ("f16", &half, &rounded)] {
                let fused = crate::kernels::linear(l, x.clone());
                let generic = crate::project::generic_project(oracle, x.clone());
                assert_close(fused, generic, &format!("{name} {rows}×{d_in}→{d_out}"));
            }
        }
    }
}

#[test]
fn few_row_int8_kernel_equals_the_product_with_the_dequantized_weight() {
    use burn::module::{Module, Param};
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::DType;
    let device = Device::flex();
    device.seed(21);
    for (d_in, d_out) in [(64, 64), (256, 1024), (96, 100)] {
        let linear = LinearConfig::new(d_in, d_out).init(&device);
        let quantized = linear
            .clone()
            .map(&mut crate::project::Int8LinearWeights::default());
        let dtype = quantized.weight.val().dtype();
        // Widths off the 32-column blocks fall back to f16.
        assert_eq!(
            matches!(dtype, DType::QFloat(_)),
            d_out % 32 == 0,
            "{dtype:?}"
        );
        let widened = Linear {
            weight: Param::from_tensor(
                quantized
                    .weight
                    .val()
                    .dequantize()
                    .cast(burn::tensor::FloatDType::F32),
            ),
            bias: quantized.bias.clone(),
        };
        for rows in [1, 3, 16, 32, 40] {
            let x = random([rows, d_in], &device);
            let fused = crate::kernels::linear(&quantized, x.clone());
            let oracle = crate::project::generic_project(&widened, x.clone());
            assert_close(fused, oracle, &format!("int8 {rows}×{d_in}→{d_out}"));
        }
    }
}

#[test]
fn residual_kernel_equals_the_generic_body() {
    let device = Device::flex().autodiff();
    device.seed(22);
    let x = random([3, 77, 64], &device).require_grad();
    let a = random([3, 77, 64], &device).require_grad();
    let weight = random([3, 77, 64], &device);
    for dropout in [None, Some(Dropout { prob: 0.2, seed: 5 })] {
        let run = |fused: bool| {
            let y = if fused {
                <Dispatch as AurlOps>::fused_residual(
                    x.clone().into_dispatch(),
                    a.clone().into_dispatch(),
                    dropout,
                )
            } else {
                reference::residual::<Dispatch>(
                    x.clone().into_dispatch(),
                    a.clone().into_dispatch(),
                    dropout,
                )
            };
            let y = Tensor::<3>::from_dispatch(y);
            let grads = (y.clone() * weight.clone()).sum().backward();
            let grad = |t: &Tensor<3>| t.grad(&grads).expect("tracked");
            (y.inner(), grad(&x), grad(&a))
        };
        let ((y, dx, da), (ry, rdx, rda)) = (run(true), run(false));
        assert_close(y, ry, &format!("residual {dropout:?}"));
        assert_close(dx, rdx, &format!("residual dx {dropout:?}"));
        assert_close(da, rda, &format!("residual da {dropout:?}"));
    }
}

/// The Adam kernel takes the generic body's step (several steps in a row, an L2 penalty and
/// a decoupled decay, large tensors split over tasks and a transposed gradient), and never
/// writes into a tensor another owner still holds.
#[test]
fn adam_kernel_equals_the_generic_body_and_leaves_shared_tensors_alone() {
    let device = Device::flex();
    device.seed(21);
    for (shape, decay, penalty) in [
        ([3, 70], 0.0, 0.0),
        ([300, 400], 0.1, 0.0),
        ([64, 9], 0.0, 0.05),
    ] {
        let param = random(shape, &device);
        let snapshot: Vec<f32> = param.clone().into_data().try_to_vec().unwrap_or_default();
        let (mut p, mut m, mut v) = (param.clone(), param.zeros_like(), param.zeros_like());
        let (mut rp, mut rm, mut rv) = (p.clone(), m.clone(), v.clone());
        for time in 1..=4 {
            let [rows, cols] = shape;
            let grad = random([cols, rows], &device).transpose();
            let step = AdamStep {
                lr: 1e-2,
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-5,
                decay,
                penalty,
                time,
            };
            let (a, b, c) = <Dispatch as AurlOps>::fused_adam(
                p.into_dispatch(),
                grad.clone().into_dispatch(),
                m.into_dispatch(),
                v.into_dispatch(),
                step,
            );
            (p, m, v) = (
                Tensor::from_dispatch(a),
                Tensor::from_dispatch(b),
                Tensor::from_dispatch(c),
            );
            let (a, b, c) = reference::adam::<Dispatch>(
                rp.into_dispatch(),
                grad.into_dispatch(),
                rm.into_dispatch(),
                rv.into_dispatch(),
                &step,
            );
            (rp, rm, rv) = (
                Tensor::from_dispatch(a),
                Tensor::from_dispatch(b),
                Tensor::from_dispatch(c),
            );
            assert_close(p.clone(), rp.clone(), "adam parameter");
            assert_close(m.clone(), rm.clone(), "adam first moment");
            assert_close(v.clone(), rv.clone(), "adam second moment");
        }
        // `param` shared its storage with the first step's input: the kernel copied it.
        let after: Vec<f32> = param.into_data().try_to_vec().unwrap_or_default();
        assert_eq!(after, snapshot, "a shared parameter was written in place");
    }
}
