"""Phase 1 of every PPO learner here (IPPO, Method I, MAPPO): the rollout as a batch (GAE on the stored values,
with reward scaling and value normalisation as configured) and the clipped PPO update of one group of agents.

A group is a method_i.AgentGroup: per-agent networks stacked on one axis (or one shared network), its
config, its Adam; MAPPO passes its centralised critic for the value loss."""

from __future__ import annotations

import numpy as np
import torch

from memeplex import ppo_fused
from memeplex.policy_gradient import LOG_SQRT_2PI, compute_gae, gaussian_logprob, ppo_losses, value_loss

PPO_DIAGNOSTICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac")  # ppo_update's, per agent


def rollout_batch(learner, k: int, buf, scaler, next_obs: dict) -> dict:
    """Group k of `learner` (a method_i.LAIPPO) with its rollout `buf` and reward scaler: PPO's batch, tensors
    [A, T * E, ...] (time-major per agent) of obs, actions, logprobs, GAE's advantages and returns on the (scaled)
    rewards, and the values (with value normalisation, both in normalised units: ValueNormaliser.normalise_batch)."""
    cfg, g = learner.cfg, learner.groups[k]
    last_v = learner.values(k, np.stack([next_obs[a] for a in g.agent_ids]))  # [A, E]
    next_values = np.concatenate([buf.values[1:], last_v[None]], axis=0)
    # inside an episode: V(s_{t+1}); at an episode end: the stored bootstrap
    next_values = np.where(buf.dones.astype(bool), buf.next_values, next_values)
    moments = (g.ret_mean, g.ret_var, g.ret_count)  # kept with the weights
    rewards = scaler(buf.rewards, buf.dones, moments) if cfg.norm_reward else buf.rewards
    adv, ret = compute_gae(rewards, buf.values, next_values, buf.dones, cfg.gamma, cfg.gae_lambda)
    # [T, A, E, ...] -> [A, T * E, ...]
    flat = lambda x: torch.as_tensor(np.ascontiguousarray(np.moveaxis(x, 1, 0)).reshape(len(g), -1, *x.shape[3:]))
    values, returns = flat(buf.values), flat(ret)
    if (norm := g.value_norm if learner.critics[k] is None else learner.critics[k].value_norm) is not None:
        values, returns = norm.normalise_batch(values, returns)
    return {
        "obs": flat(buf.obs),
        "actions": flat(buf.actions),
        "logprobs": flat(buf.logprobs),
        "advantages": flat(adv),
        "returns": returns,
        "values": values,
    }


def ppo_update(group, batch: dict, generator: torch.Generator, critic=None) -> dict:
    """update_epochs x num_minibatches PPO steps of a group on a flattened rollout.

    `batch` holds tensors shaped [A, N, ...]: obs, actions, logprobs,
    advantages, returns (the value targets) and, with clip_value_loss, values
    (the predictions that generated them).  With a `critic` (MAPPO's
    centralised critic: critic(obs) -> values [A, B] of the group's normalised
    observations [A, B, D]) the value loss trains the critic with its own
    optimiser, not the actors' value heads.  Returns mean diagnostics per agent
    (PPO_DIAGNOSTICS).
    """
    cfg = group.cfg
    n = batch["obs"].shape[1]
    mb_size = max(1, n // cfg.num_minibatches)
    totals = torch.zeros(len(PPO_DIAGNOSTICS), len(group))
    steps = 0
    # The normaliser is fixed during the update: normalise once, and pack
    # every per-sample field into one tensor so an epoch's shuffle is one gather.
    with torch.no_grad():
        obs = group._normalise(group._tensors(), batch["obs"])
    keys = ("actions", "logprobs", "advantages", "returns", *(("values",) if cfg.clip_value_loss else ()))
    fields = [obs] + [batch[k] if k == "actions" else batch[k][..., None] for k in keys]
    cuts = np.cumsum([f.shape[-1] for f in fields])[:-1].tolist()
    packed = torch.cat(fields, dim=-1)
    fused = ppo_fused.applies(cfg, critic)
    grads = ppo_fused.GradientViews(group) if fused else None
    for _ in range(cfg.update_epochs):
        shuffled = packed.index_select(1, torch.randperm(n, generator=generator))
        if fused:  # the hand-written step's layout: samples on the last axis (feature-major)
            shuffled = shuffled.transpose(1, 2).contiguous()
        for start in range(0, n - mb_size + 1, mb_size):
            if fused:
                minibatch = torch.tensor_split(shuffled[..., start : start + mb_size], cuts, dim=1)
                totals += ppo_fused.minibatch_step(group, grads, *minibatch)
            else:
                minibatch = torch.tensor_split(shuffled[:, start : start + mb_size], cuts, dim=-1)
                totals += autograd_step(group, minibatch, critic)
            steps += 1
    totals /= max(steps, 1)
    return dict(zip(PPO_DIAGNOSTICS, totals.tolist()))


def autograd_step(group, minibatch: tuple, critic=None) -> torch.Tensor:
    """One PPO step of a group on a minibatch (obs, actions, logprobs, advantages, returns and, with
    clip_value_loss, values; each [A, B, ...]), gradients by loss.backward(). Returns the diagnostics [5, A]."""
    cfg = group.cfg
    mb_obs, mb_actions, mb_logprobs, mb_adv, mb_returns, *mb_values = minibatch
    mean, value, log_std = group._forward(group._tensors(), mb_obs, normalised=True)
    if critic is not None:
        value = critic(mb_obs)
    new_logprob = gaussian_logprob(mb_actions, mean, log_std)
    adv = mb_adv.squeeze(-1)
    if cfg.norm_adv and adv.shape[-1] > 1:
        adv = (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, keepdim=True) + 1e-8)
    policy_loss, approx_kl, clip_frac = ppo_losses(new_logprob, mb_logprobs.squeeze(-1), adv, cfg.clip_coef)
    old_value = mb_values[0].squeeze(-1) if mb_values else None
    value_clip = cfg.clip_coef if cfg.clip_value_loss else None
    v_loss = value_loss(value, mb_returns.squeeze(-1), old_value, value_clip, cfg.huber_delta)
    entropy = (log_std + 0.5 + LOG_SQRT_2PI).sum(-1).squeeze(-1)  # [A]
    if critic is None:
        loss = policy_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
    else:
        loss = policy_loss - cfg.ent_coef * entropy
        critic.gradient_step(cfg.vf_coef * v_loss.mean())
    group.gradient_step(loss.mean() if cfg.share_params else loss.sum())
    return torch.stack([policy_loss, v_loss, entropy, approx_kl, clip_frac]).detach()
