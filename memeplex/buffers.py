"""The storage a Method I learner keeps per group of agents, preallocated numpy
stacked along the agent axis: one rollout for PPO (RolloutBuffer), and each agent's
recent raw observations D_i that distillation samples from (ObservationMemory)."""

from __future__ import annotations

import numpy as np
import torch


class RolloutBuffer:
    """Preallocated storage for one rollout of one group: [T, agents, envs, ...]."""

    def __init__(self, steps, num_envs, num_agents, obs_dim, act_dim):
        shape = (steps, num_agents, num_envs)
        self.obs = np.zeros(shape + (obs_dim,), dtype=np.float32)
        self.actions = np.zeros(shape + (act_dim,), dtype=np.float32)
        self.logprobs = np.zeros(shape, dtype=np.float32)
        self.values = np.zeros(shape, dtype=np.float32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.next_values = np.zeros(shape, dtype=np.float32)
        self.dones = np.zeros(shape, dtype=np.float32)


class ObservationMemory:
    """Each agent's buffer D_i of its `size` most recent raw observations (time
    order), the whole latest batch remembered (`latest`, [A, N, D]: the latest
    rollout's observations, for diagnostics), and a fixed probe batch of
    `probe_size` observations for diagnostics: a mix of every agent's first
    remembered ones."""

    def __init__(self, num_agents: int, obs_dim: int, size: int, probe_size: int):
        self.size, self.probe_size = size, probe_size
        self.obs = np.zeros((num_agents, size, obs_dim), dtype=np.float32)  # [A, size, D]
        self.count = 0  # how many of the last rows hold observations
        self.probe = None  # [probe_size, D]
        self.latest = None  # [A, N, D]: the last batch remember() was given (not kept in checkpoints)

    def remember(self, obs: np.ndarray) -> None:
        """Append raw observations [A, N, D] (time order) to each agent's buffer D_i."""
        self.latest = obs
        obs = obs[:, -self.size :]
        k = obs.shape[1]
        self.obs = np.concatenate([self.obs[:, k:], obs], axis=1) if k < self.size else obs.copy()
        self.count = min(self.size, self.count + k)
        if self.probe is None:
            per_agent = -(-self.probe_size // len(obs))
            self.probe = torch.as_tensor(obs[:, :per_agent].reshape(-1, obs.shape[2])[: self.probe_size].copy())

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """batch_size observations o ~ D_i (uniform, with replacement) for every agent i: [A, B, D]."""
        idx = torch.randint(self.size - self.count, self.size, (len(self.obs), batch_size), generator=generator)
        return torch.as_tensor(np.take_along_axis(self.obs, idx.numpy()[..., None], axis=1))
