"""Running statistics that keep a learner's inputs and targets O(1), per agent and
stacked along the agent axis: the moments update shared by the observation
normaliser, the reward scaler and the value normaliser; the reward scaler itself
(--norm-reward); and the value normaliser (--value-norm)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


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


class ValueNormaliser(nn.Module):
    """Running mean and std of each agent's value targets (the returns), so a value network
    learns O(1) targets: targets are normalised for the value loss, and the network's outputs
    are de-normalised wherever a value is used (GAE, bootstraps).  The statistics are exact
    running moments over every return seen (update_moments), one per agent; they are buffers,
    so they travel with the network's state_dict."""

    def __init__(self, num_agents: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_agents, dtype=torch.float64))
        self.register_buffer("var", torch.ones(num_agents, dtype=torch.float64))
        self.register_buffer("count", torch.full((num_agents,), 1e-4, dtype=torch.float64))

    def _std(self, shape) -> tuple:
        view = lambda t: t.view(-1, *[1] * (len(shape) - 1))
        return view(self.mean), view((self.var + 1e-8).sqrt())

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> None:
        """Merge returns [A, N] into each agent's running moments."""
        update_moments(self.mean, self.var, self.count, returns)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """x [A, ...] in units of each agent's return std, centred on its mean."""
        mean, std = self._std(x.shape)
        return ((x.double() - mean) / std).to(x.dtype)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of normalise: network outputs [A, ...] back in units of return."""
        mean, std = self._std(x.shape)
        return (x.double() * std + mean).to(x.dtype)

    def normalise_batch(self, values: torch.Tensor, returns: torch.Tensor) -> tuple:
        """A rollout's values (the predictions) and returns (the value targets) [A, N] in normalised units:
        the values with the statistics that made them, the returns with the statistics after merging them."""
        values = self.normalise(values)
        self.update(returns)
        return values, self.normalise(returns)
