"""PPO's minibatch step with its gradients written out by hand: the same losses, the same gradients, in a third
of the tensor operations autograd issues, on a layout that suits the CPU's matrix kernels.

ppo.ppo_update's step (forward, loss, loss.backward(), per-agent clip, Adam) costs about 3 ms for 3 agents x 512
samples of spread on one core, of which the matrix products are a third: the rest is the dispatch of ~150 small
operations (autograd's graph, its backward nodes, the gradient copies). For the default network (an MLP encoder of
relu or tanh layers, one linear head for the Gaussian mean and the value, a state-independent log_std) the
backward pass is short enough to write down, and this module does so:

    forward   x_{l+1} = act(W_l^T x_l + b_l);  [mean; V] = W_h^T x_L + b_h
    loss_i    = mean_b max(-A r, -A clip(r, 1 - eps, 1 + eps)) + c1 * mean_b 0.5 (V - R)^2 - c2 * H(log_std)
    backward  dL/dr = -A / B where the unclipped term is the larger (or equal), else 0;  dL/dlogp = dL/dr * r
              dlogp/dmean = z / std,  dlogp/dlog_std = z^2 - 1  (z = (a - mean) / std),  dH/dlog_std = 1
              dW_l = x_l g_l^T,  db_l = sum_b g_l,  g_{l-1} = (W_l g_l) * act'(x_l)

These are exactly the derivatives autograd takes of ppo.ppo_update's loss (torch.maximum splits a tie in half
between its two branches, and inside the clip range both are the same term, so a tie passes the whole gradient;
outside it, a tie means A = 0). Rounding differs from autograd's, so runs are equivalent, not bit-identical
(tests/test_ppo_fused.py checks every gradient against autograd's; docs/speed.md the learning over 20 seeds).

The activations are kept feature-major, [agents, features, batch]: MKL's batched products are up to 4x faster that
way for these shapes (64 -> 6 heads above all) than batch-major. The gradients are written straight into the
Adam's flat gradient buffer (memeplex.stacked.StackedAdam), which then clips and steps as on the autograd path.

Options outside the default network or loss (layer norm, Huber or clipped value losses, parameter sharing,
MAPPO's critic) take the autograd path: `applies` says which.
"""

from __future__ import annotations

import torch

from memeplex.policy_gradient import LOG_SQRT_2PI


def applies(cfg, critic=None) -> bool:
    """Whether the hand-written step covers this configuration (else ppo.ppo_update's autograd step)."""
    return (
        cfg.ppo_backward == "fused"
        and critic is None
        and not (cfg.share_params or cfg.layer_norm or cfg.clip_value_loss)
        and cfg.huber_delta == 0
        and cfg.activation in ("relu", "tanh")
    )


class GradientViews:
    """Where each of a group's parameters keeps its gradient in the Adam's flat buffer (as [A, ...] views)."""

    def __init__(self, group):
        opt = group.optimizer
        opt.zero_grad(flat=True)  # every .grad is its view of the flat buffer; the step overwrites them all
        grad = {id(p): g for p, g in zip(opt.params, opt._grad_views)}
        self.enc_w = [grad[id(w)] for w in group.enc_w]
        self.enc_b = [grad[id(b)] for b in group.enc_b]
        self.head_w, self.head_b, self.log_std = grad[id(group.head_w)], grad[id(group.head_b)], grad[id(group.log_std)]


def minibatch_step(group, grads: GradientViews, obs, actions, old_logprob, adv, returns) -> torch.Tensor:
    """One PPO step of every agent of `group` on a minibatch, feature-major: obs [A, D, B] (normalised), actions
    [A, act, B], old_logprob, adv, returns [A, 1, B]. Writes the gradients of the sum over agents of
    policy_loss + vf_coef * value_loss - ent_coef * entropy into `grads`, then group.apply_gradients() clips each
    agent's gradient norm and steps its Adam, as after autograd's backward. Returns the diagnostics [5, A]
    (ppo.PPO_DIAGNOSTICS)."""
    cfg = group.cfg
    relu = cfg.activation == "relu"
    old_logprob, adv, returns = old_logprob.squeeze(1), adv.squeeze(1), returns.squeeze(1)
    with torch.no_grad():
        # forward, keeping every layer's input
        xs = [obs]
        for w, b in zip(group.enc_w, group.enc_b):
            x = torch.baddbmm(b.transpose(1, 2), w.transpose(1, 2), xs[-1])
            xs.append(x.relu_() if relu else x.tanh_())
        out = torch.baddbmm(group.head_b.transpose(1, 2), group.head_w.transpose(1, 2), xs[-1])  # [A, act + 1, B]
        mean, value = out[:, :-1], out[:, -1]
        log_std = group.log_std.transpose(1, 2)  # [A, act, 1]
        std = log_std.exp()
        z = (actions - mean) / std
        logprob = -0.5 * z.square().sum(1) - (log_std.sum(1) + log_std.shape[1] * LOG_SQRT_2PI)  # [A, B]
        # the loss
        n = adv.shape[-1]
        if cfg.norm_adv and n > 1:
            adv = (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, keepdim=True) + 1e-8)
        log_ratio = logprob - old_logprob
        ratio = log_ratio.exp()
        unclipped = -adv * ratio
        clipped = -adv * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef)
        policy_loss = torch.maximum(unclipped, clipped).mean(-1)
        error = value - returns
        value_loss = 0.5 * error.square().mean(-1)
        entropy = (group.log_std + 0.5 + LOG_SQRT_2PI).sum(-1).squeeze(-1)
        approx_kl = ((ratio - 1.0) - log_ratio).mean(-1)
        clip_frac = ((ratio - 1.0).abs() > cfg.clip_coef).float().mean(-1)
        # backward: the loss's gradient with respect to the head's output [A, act + 1, B] ...
        g_logprob = torch.where(unclipped >= clipped, adv * ratio, 0.0).mul_(-1.0 / n).unsqueeze(1)  # [A, 1, B]
        g_out = torch.cat([g_logprob * z / std, (cfg.vf_coef / n) * error.unsqueeze(1)], dim=1)
        torch.sum(g_logprob * (z.square() - 1.0), -1, keepdim=True, out=grads.log_std.view(log_std.shape))
        grads.log_std.sub_(cfg.ent_coef)
        # ... then through the head and the encoder's layers, every weight's gradient into its view
        torch.bmm(xs[-1], g_out.transpose(1, 2), out=grads.head_w)
        torch.sum(g_out, -1, out=grads.head_b.view(g_out.shape[:2]))
        g = torch.bmm(group.head_w, g_out)
        for k in range(len(xs) - 2, -1, -1):
            x = xs[k + 1]
            # relu': autograd's own kernel (a boolean mask costs 20x more on CPU); tanh' = 1 - tanh^2
            g = torch.ops.aten.threshold_backward(g, x, 0.0) if relu else g.mul_(1.0 - x.square())
            torch.bmm(xs[k], g.transpose(1, 2), out=grads.enc_w[k])
            torch.sum(g, -1, out=grads.enc_b[k].view(g.shape[:2]))
            if k > 0:
                g = torch.bmm(group.enc_w[k], g)
    group.apply_gradients()
    return torch.stack([policy_loss, value_loss, entropy, approx_kl, clip_frac])
