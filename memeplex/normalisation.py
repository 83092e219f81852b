"""Running statistics that keep a learner's inputs and targets O(1), per agent and
stacked along the agent axis: the moments update shared by the observation
normaliser and the reward scaler, and the reward scaler itself (--norm-reward)."""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def update_moments(mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor, x: torch.Tensor) -> None:
    """Merge samples x [A, N, ...] into every agent's running mean and (population) variance
    [A, ...] over its count [A] samples so far, in place (the parallel update of Chan et al.):
    x's statistics are taken over dim 1 and computed in float64; count is float64."""
    x = x.double()
    n = x.shape[1]
    batch_mean, batch_var = x.mean(1).view(mean.shape), x.var(1, unbiased=False).view(mean.shape)
    prior = count.view(-1, *[1] * (mean.dim() - 1))
    total = prior + n
    delta = batch_mean - mean.double()
    m2 = var.double() * prior + batch_var * n + delta**2 * prior * n / total
    mean.copy_(mean.double() + delta * n / total)
    var.copy_(m2 / total)
    count.add_(n)


class RewardScaler:
    """Divide each agent's rewards by the running std of its discounted return.
    Returns keep their sign and relative size; value targets stay O(1), so the
    value loss does not swamp the policy gradient in a shared encoder.  Each
    agent's discounted return so far in every env is carried across rollouts
    here; the running moments are given with every call (a learner keeps them
    with its weights)."""

    def __init__(self, gamma: float):
        self.gamma = gamma
        self.discounted_return = None  # [A, E]

    @torch.no_grad()
    def __call__(self, rewards: np.ndarray, dones: np.ndarray, moments: tuple) -> np.ndarray:
        """Rewards [T, A, E] scaled by the running std of the discounted return after updating the
        moments (mean, var, count: float64 tensors [A], updated in place) with this rollout's."""
        if self.discounted_return is None:
            self.discounted_return = np.zeros(rewards.shape[1:])
        returns = np.empty(rewards.shape)
        for t in range(len(rewards)):
            self.discounted_return = self.discounted_return * self.gamma + rewards[t]
            returns[t] = self.discounted_return
            self.discounted_return = self.discounted_return * (1.0 - dones[t])
        mean, var, count = moments
        update_moments(mean, var, count, torch.as_tensor(np.moveaxis(returns, 1, 0).reshape(rewards.shape[1], -1)))
        return (rewards / np.sqrt(var.numpy() + 1e-8)[None, :, None]).astype(np.float32)
