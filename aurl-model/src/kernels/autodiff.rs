//! Hand-written backward passes: the `Autodiff<B>` implementation of [`AurlOps`] runs `B`'s
//! forward (the fused kernel on `Flex`, the generic body elsewhere), keeps what the backward
//! needs, and registers gradients computed by `B`'s `*_backward` operation.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};

use super::{AttentionOptions, AurlOps, Dropout};

impl<B: AurlOps, C: CheckpointStrategy> AurlOps for Autodiff<B, C> {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_bias: FloatTensor<Self>,
        options: AttentionOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        type State<B> = (
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
            AttentionOptions,
        );

        #[derive(Debug)]
        struct Attention;

        impl<B: AurlOps> Backward<B, 3> for Attention {
            type State = State<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_q, node_k, node_v] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (q, k, v, key_bias, out, lse, options) = ops.state;
                let (dq, dk, dv) =
                    B::fused_attention_backward(q, k, v, key_bias, out, lse, grad, options);
                for (node, grad) in [(node_q, dq), (node_k, dk), (node_v, dv)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        let nodes = [q.node(), k.node(), v.node()];
        let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
        // The bias is a constant mask (padding): no gradient flows to it.
        let key_bias = key_bias.into_primitive();
        let (out, lse) =
            B::fused_attention(q.clone(), k.clone(), v.clone(), key_bias.clone(), options);
        let out = match Attention.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = (q, k, v, key_bias, out.clone(), lse.clone(), options);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        (out, <FloatTensor<Self>>::new(lse))
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        type State<B> = (
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
            FloatTensor<B>,
        );

        #[derive(Debug)]
        struct LayerNorm;

        impl<B: AurlOps> Backward<B, 3> for LayerNorm {
            type State = State<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_gamma, node_beta] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, gamma, mean, rstd) = ops.state;
                let (dx, dgamma, dbeta) = B::fused_layer_norm_backward(x, gamma, mean, rstd, grad);
                for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let (y, mean, rstd) = B::fused_layer_norm(x.clone(), gamma.clone(), beta, epsilon);
        let y = match LayerNorm.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x, gamma, mean.clone(), rstd.clone()), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (
            y,
            <FloatTensor<Self>>::new(mean),
            <FloatTensor<Self>>::new(rstd),
        )
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Gelu;

        impl<B: AurlOps> Backward<B, 1> for Gelu {
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                if let Some(node) = node {
                    grads.register::<B>(node.id, B::fused_gelu_backward(ops.state, grad));
                }
            }
        }

        let nodes = [x.node()];
        let x = x.into_primitive();
        let y = B::fused_gelu(x.clone());
        match Gelu.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(x, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn fused_dropout(x: FloatTensor<Self>, dropout: Dropout) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct DropoutBackward;

        impl<B: AurlOps> Backward<B, 1> for DropoutBackward {
            type State = Dropout;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                if let Some(node) = node {
                    // The mask is a function of the seed: the same call masks the gradient.
                    grads.register::<B>(node.id, B::fused_dropout(grad, ops.state));
                }
            }
        }

        let nodes = [x.node()];
        let y = B::fused_dropout(x.into_primitive(), dropout);
        match DropoutBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(dropout, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn fused_residual(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        dropout: Option<Dropout>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Residual;

        impl<B: AurlOps> Backward<B, 2> for Residual {
            type State = Option<Dropout>;

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_a] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                if let Some(node) = node_a {
                    let da = match ops.state {
                        Some(dropout) => B::fused_dropout(grad.clone(), dropout),
                        None => grad.clone(),
                    };
                    grads.register::<B>(node.id, da);
                }
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, grad);
                }
            }
        }

        let nodes = [x.node(), a.node()];
        let y = B::fused_residual(x.into_primitive(), a.into_primitive(), dropout);
        match Residual.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(dropout, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn fused_token_nll(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        smoothing: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        type State<B> = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>, f32);

        #[derive(Debug)]
        struct TokenNll;

        impl<B: AurlOps> Backward<B, 1> for TokenNll {
            type State = State<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (logits, targets, lse, smoothing) = ops.state;
                if let Some(node) = node {
                    let grad = B::fused_token_nll_backward(logits, targets, lse, grad, smoothing);
                    grads.register::<B>(node.id, grad);
                }
            }
        }

        let nodes = [logits.node()];
        let logits = logits.into_primitive();
        let (loss, lse) = B::fused_token_nll(logits.clone(), targets.clone(), smoothing);
        let loss = match TokenNll.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((logits, targets, lse.clone(), smoothing), loss),
            OpsKind::UnTracked(prep) => prep.finish(loss),
        };
        (loss, <FloatTensor<Self>>::new(lse))
    }

    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Linear;

        impl<B: AurlOps> Backward<B, 3> for Linear {
            type State = (FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_weight, node_bias] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, weight) = ops.state;
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::fused_linear_input_grad(weight, grad.clone()));
                }
                if let Some(node) = node_weight {
                    grads.register::<B>(node.id, B::fused_linear_weight_grad(x, grad.clone()));
                }
                if let Some(node) = node_bias {
                    grads.register::<B>(node.id, B::fused_linear_bias_grad(grad));
                }
            }
        }

        let nodes = [x.node(), weight.node(), bias.node()];
        let (x, weight, bias) = (
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
        );
        let y = B::fused_linear(x.clone(), weight.clone(), bias);
        match Linear.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x, weight), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}
