"""The policy-gradient maths of a PPO learner, on numpy arrays and tensors with any
leading axes (time, envs, agents): generalised advantage estimation, PPO's clipped
surrogate loss, and the log-density of a diagonal Gaussian policy."""

from __future__ import annotations

import math

import numpy as np
import torch

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def compute_gae(rewards, values, next_values, dones, gamma, gae_lambda):
    """Generalised advantage estimation along the first (time) axis.

    All arrays have shape [T, ...] (e.g. [T, envs, agents]) and every trailing
    index is an independent stream.  `next_values[t]` is the value of the
    state reached after step t: V(s_{t+1}) inside an episode, V(final obs)
    when the episode was truncated by the time limit, 0 when it terminated.
    `dones[t]` marks that an episode ended at step t (termination or
    truncation), which stops the advantage from leaking across episodes.
    Returns (advantages, returns) with returns = advantages + values.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    deltas = rewards + gamma * np.asarray(next_values, dtype=np.float64) - values
    continues = 1.0 - np.asarray(dones, dtype=np.float64)
    advantages = np.zeros_like(deltas)
    last = np.zeros_like(deltas[0])
    for t in range(len(deltas) - 1, -1, -1):
        last = deltas[t] + gamma * gae_lambda * continues[t] * last
        advantages[t] = last
    return advantages.astype(np.float32), (advantages + values).astype(np.float32)


def ppo_losses(new_logprob, old_logprob, advantages, clip_coef):
    """Clipped surrogate policy loss (to minimise) and diagnostics.

    Tensors share any shape; means are taken over the last axis so a leading
    agent axis yields one loss per agent.
    """
    log_ratio = new_logprob - old_logprob
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)
    policy_loss = torch.maximum(unclipped, clipped).mean(-1)
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean(-1)
        clip_frac = ((ratio - 1.0).abs() > clip_coef).float().mean(-1)
    return policy_loss, approx_kl, clip_frac


def gaussian_logprob(action, mean, log_std):
    """log N(action; mean, exp(log_std)), summed over the last (action) axis."""
    return (-0.5 * ((action - mean) / log_std.exp()) ** 2 - log_std - LOG_SQRT_2PI).sum(-1)


def value_loss(value, target, old_value=None, clip_coef: float | None = None, huber_delta: float = 0.0):
    """The value loss, meaned over the last axis: 0.5 * (value - target)^2, or with huber_delta > 0
    the Huber loss of the error (quadratic within delta, linear beyond); with clip_coef, PPO's value
    clipping: the larger of the losses of the prediction and of old_value + clip(value - old_value,
    -clip_coef, clip_coef) (the MAPPO authors' value loss)."""

    def loss(error):
        if huber_delta > 0:
            return torch.nn.functional.huber_loss(error, torch.zeros_like(error), reduction="none", delta=huber_delta)
        return 0.5 * error**2

    if clip_coef is None:
        if huber_delta > 0:
            return loss(value - target).mean(-1)
        return 0.5 * ((value - target) ** 2).mean(-1)  # the default: exactly the historical expression
    clipped = old_value + (value - old_value).clamp(-clip_coef, clip_coef)
    return torch.maximum(loss(value - target), loss(clipped - target)).mean(-1)
