"""Per-agent parameters stacked along dim 0 (the agent axis): independent Adam
optimisers, per-agent gradient-norm clipping and orthogonal initialisation,
each in a few batched tensor ops instead of one call per agent."""

from __future__ import annotations

import torch
import torch.nn as nn


class StackedAdam:
    """Independent Adam optimisers, one per agent, over parameters stacked
    along dim 0 (agent axis).

    Moments and step counts are kept per agent, and `step(agents)` updates
    only the given agents, so an agent that is not in a loss is never moved
    by another agent's momentum.  Parameters without a gradient are skipped
    (as torch.optim.Adam does).  Numerically this is torch.optim.Adam run
    separately for every agent (tested), in a handful of batched ops.
    """

    def __init__(self, params, num_agents: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-5):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        # Moments and gradients live in flat buffers, the tensors one after the other; exp_avg, exp_avg_sq
        # and the gradients are contiguous per-tensor views of them, laid out as the parameters are.
        total = sum(p.numel() for p in self.params)
        self._m, self._v, self.grad, self._work = (torch.zeros(total) for _ in range(4))
        self.exp_avg, self.exp_avg_sq = self._views(self._m), self._views(self._v)
        self._grad_views, self._work_views = self._views(self.grad), self._views(self._work)
        # for every element of the flat buffers, its (tensor, agent) block's index into a flattened [tensors, agents]
        blocks = torch.tensor([p[0].numel() for p in self.params for _ in range(num_agents)])
        self._owner = torch.repeat_interleave(torch.arange(len(blocks)), blocks)
        self.steps = torch.zeros(len(self.params), num_agents)  # per tensor, per agent

    def _views(self, flat: torch.Tensor) -> list:
        """Per-tensor views [agents, ...] of a flat buffer."""
        out, start = [], 0
        for p in self.params:
            out.append(flat[start : start + p.numel()].view(p.shape))
            start += p.numel()
        return out

    def zero_grad(self, flat: bool = False) -> None:
        """Clear the gradients. flat: make the zeroed flat buffer every parameter's .grad, so that
        backward accumulates into it and step() and clip_grad_norm_() work on the whole buffer in a few
        ops (for a loss that reaches every parameter, as PPO's does); otherwise .grad = None."""
        if flat:
            self.grad.zero_()
            for p, g in zip(self.params, self._grad_views):
                p.grad = g
        else:
            for p in self.params:
                p.grad = None

    def flat_grads(self) -> bool:
        """True when every parameter's gradient is its view of the flat buffer (zero_grad(flat=True))."""
        return all(p.grad is g for p, g in zip(self.params, self._grad_views))

    @torch.no_grad()
    def step(self, agents=None) -> None:
        """One Adam step for the given agent indices (default: all agents)."""
        if agents is None and all(p.grad is not None for p in self.params):
            if not self.flat_grads():  # gradients set by hand: into the flat buffer (an exact copy)
                for g, p in zip(self._grad_views, self.params):
                    g.copy_(p.grad)
            return self._step_flat()
        b1, b2 = self.betas
        live = [k for k, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        rows = torch.as_tensor(live)
        idx = torch.arange(self.steps.shape[1]) if agents is None else torch.as_tensor(agents)
        self.steps[rows[:, None], idx[None, :]] += 1
        t = self.steps[rows][:, idx]  # [live tensors, agents]
        step_size = self.lr / (1 - b1**t)  # bias corrections for every tensor and agent at once
        bc2_sqrt = (1 - b2**t).sqrt()
        shape = lambda k: (-1, *[1] * (self.params[k].dim() - 1))
        for n, k in enumerate(live):  # some agents or tensors only (distillation students): gather, update, scatter
            p, g = self.params[k], self.params[k].grad[idx]
            m = self.exp_avg[k][idx].lerp(g, 1 - b1)
            v = self.exp_avg_sq[k][idx] * b2 + (1 - b2) * g * g
            update = step_size[n].view(shape(k)) * m / (v.sqrt() / bc2_sqrt[n].view(shape(k)) + self.eps)
            self.exp_avg[k][idx], self.exp_avg_sq[k][idx] = m, v
            p.data[idx] = p.data[idx] - update

    def _spread(self, x: torch.Tensor) -> torch.Tensor:
        """[tensors, agents] -> one value per element of the flat buffers (each tensor-agent block's own)."""
        return x.flatten().index_select(0, self._owner)

    def _step_flat(self) -> None:
        """The per-tensor path's element-wise operations over the flat buffers at once (every tensor and
        agent steps); p - u / d is the per-tensor path's addcdiv(p, u, d, value=-1), bit for bit."""
        b1, b2 = self.betas
        self.steps += 1
        step_size = self.lr / (1 - b1**self.steps)
        bc2_sqrt = (1 - b2**self.steps).sqrt()
        g, m, v = self.grad, self._m, self._v
        m.lerp_(g, 1 - b1)
        v.mul_(b2)
        v.addcmul_(g, g, value=1 - b2)
        denom = v.sqrt().div_(self._spread(bc2_sqrt)).add_(self.eps)
        torch.mul(m, self._spread(step_size), out=self._work).div_(denom)
        torch._foreach_sub_(self.params, self._work_views)

    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """clip_grad_norm_per_agent over the parameters' gradients; with the flat buffer, the scaling is
        one multiplication over it. Returns the per-agent norms before clipping."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if not self.flat_grads():
            return clip_grad_norm_per_agent(grads, max_norm)
        norm, coef = _clip_coefficients(grads, max_norm)
        self.grad.mul_(self._spread(coef.expand(len(self.params), len(coef))))
        return norm

    def state_dict(self) -> dict:
        return {
            "exp_avg": [t.clone() for t in self.exp_avg],
            "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
            "steps": self.steps.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"]):
            dst.copy_(src)
        self.steps.copy_(state["steps"])


@torch.no_grad()
def clip_grad_norm_per_agent(grads, max_norm: float) -> torch.Tensor:
    """clip_grad_norm_ for every agent separately: grads are stacked [A, ...]
    tensors; agent i's global norm over all its tensors is clipped to max_norm.
    Returns the per-agent norms before clipping."""
    norm, coef = _clip_coefficients(grads, max_norm)
    torch._foreach_mul_(grads, [coef.view(-1, *[1] * (g.dim() - 1)) for g in grads])
    return norm


def _clip_coefficients(grads, max_norm: float) -> tuple:
    """(per-agent norms over all tensors [A], the factor that clips each to max_norm [A])."""
    n = grads[0].shape[0]
    norm = torch.cat([g.reshape(n, -1) for g in grads], dim=1).norm(dim=1)
    return norm, (max_norm / (norm + 1e-6)).clamp(max=1.0)


def orthogonal(n, fan_in, fan_out, gain, generator=None):
    """n independent orthogonal-initialised weight matrices [n, fan_in, fan_out]."""
    w = torch.empty(n, fan_out, fan_in)
    for k in range(n):
        nn.init.orthogonal_(w[k], gain, generator=generator)
    return w.transpose(1, 2).contiguous()
