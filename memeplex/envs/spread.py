"""simple_spread_v3, batched: N agents cover N landmarks (mpe2's `simple_spread/`).

    Spread(E, N=3, local_ratio=0.5, max_cycles=25, continuous_actions=True)

(the keyword arguments shown are the defaults; N is free).  Agents 0.15 in
radius, landmarks 0.05, accel 5.0 (mpe2 has none), no speed limit.

mpe2 details reproduced here (each one matters for bit-identity):
* agents are silent, their comm state, all zeros, still fills the last
  2 (N - 1) observation entries; landmarks do not collide, so only agent-agent
  pairs push.
* reward: (0 - sum_l min_a |a - l|) * (1 - local_ratio) + (0 - #agents
  touching this one) * local_ratio.
"""

from __future__ import annotations

import numpy as np

from memeplex.envs.world import BatchedWorld


class Spread(BatchedWorld):
    """simple_spread_v3 for E envs at once; see world.py for the API."""

    name = "spread"
    defaults = {"N": 3, "local_ratio": 0.5, "max_cycles": 25, "continuous_actions": True}
    reset_ranges = ((-1.0, 1.0), (-1.0, 1.0))  # reset_world's uniform ranges: (agents, landmarks)

    def configure(self, kw: dict) -> None:
        if not 0.0 <= kw["local_ratio"] <= 1.0:
            raise ValueError("local_ratio is a proportion. Must be between 0 and 1.")
        self.local_ratio = float(kw["local_ratio"])

    @staticmethod
    def mpe2_world(kw: dict):
        from mpe2.simple_spread.simple_spread import Scenario

        return Scenario().make_world(kw["N"])

    def obs_extra(self, i: int, layout) -> list:
        return [layout.zero_col] * (self.dim_c * (self.num_agents - 1))  # the other agents' comm state: zeros

    def obs_groups(self) -> list:
        return [(0, self.num_agents)]

    def rewards(self, dist: np.ndarray) -> np.ndarray:
        """[agents, E] float64, as SimpleEnv._execute_world_step combines them."""
        nA = self.num_agents
        # local: rew = 0; rew -= 1.0 * (is_collision(a, agent) and a != agent); the
        # diagonal (dist 0) always hits, so #others = hits - 1 and rew = 1.0 - hits
        hits = (dist[:, :, :nA] < self._dmin_agents).sum(axis=2)
        local = 1.0 - hits
        # global: rew = 0; for each landmark: rew -= min over agents of the distance
        m = dist[:, :, nA:].min(axis=1)  # [E, L]
        g = 0.0 - m[:, 0]
        for j in range(1, m.shape[1]):
            g = g - m[:, j]
        lr = self.local_ratio
        return (g[:, None] * (1 - lr) + local * lr).T.copy()
