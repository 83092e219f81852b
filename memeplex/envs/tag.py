"""simple_tag_v3, batched: predators chase prey among obstacles (mpe2's `simple_tag/`).

    Tag(E, num_good=1, num_adversaries=3, num_obstacles=2, max_cycles=25, continuous_actions=True)

(the keyword arguments shown are the defaults; the counts are free).  The
adversaries (predators) come first: radius 0.075, accel 3.0, max speed 1.0;
prey: radius 0.05, accel 4.0, max speed 1.3; obstacles: radius 0.2, they
collide but do not move.

mpe2 details reproduced here (each one matters for bit-identity):
* an agent's observation ends with the velocities of the other prey.
* reward: every predator gets +10 per touching (predator, prey) pair; a prey
  gets -10 per predator touching it minus bound(|x|) + bound(|y|).
"""

from __future__ import annotations

import numpy as np

from memeplex.envs.world import BatchedWorld


class Tag(BatchedWorld):
    """simple_tag_v3 for E envs at once; see world.py for the API."""

    name = "tag"
    defaults = {"num_good": 1, "num_adversaries": 3, "num_obstacles": 2, "max_cycles": 25, "continuous_actions": True}
    reset_ranges = ((-1.0, 1.0), (-0.9, 0.9))  # reset_world's uniform ranges: (agents, landmarks)

    @staticmethod
    def mpe2_world(kw: dict):
        from mpe2.simple_tag.simple_tag import Scenario

        return Scenario().make_world(kw["num_good"], kw["num_adversaries"], kw["num_obstacles"])

    def obs_extra(self, i: int, layout) -> list:
        good = range(self.good_slice.start, self.good_slice.stop)
        return [c for g in good if g != i for c in layout.vel_cols(g)]  # the velocities of the other prey

    def obs_groups(self) -> list:
        return [(0, self.good_slice.start), (self.good_slice.start, self.num_agents)]

    def rewards(self, dist: np.ndarray) -> np.ndarray:
        """[agents, E] float64, as SimpleEnv._execute_world_step combines them."""
        adv, good = self.adversary_slice, self.good_slice
        hits = dist[:, adv, good] < self._dmin_agents[adv, good]  # [E, n_adv, n_good]
        per_prey = hits.sum(axis=1)  # [E, n_good]
        self._contacts = per_prey.sum(axis=1)
        out = np.empty((self.num_agents, self.num_envs))
        out[adv] = 10.0 * self._contacts  # rew += 10 for every (prey, predator) collision
        r = 0.0 - 10.0 * per_prey  # rew -= 10 per touching predator
        # boundary penalty: rew -= bound(|x|), then rew -= bound(|y|)
        x = np.abs(self.pos[:, good])
        if x.max() >= 0.9:  # (otherwise both bounds are 0 and r - 0.0 == r)
            b = np.where(
                x < 0.9,
                0.0,
                np.where(
                    x < 1.0,
                    (x - 0.9) * 10,
                    # min(exp(2x - 2), 10); x is capped at 10 (exp(18) > 10) against overflow
                    np.minimum(np.exp(2 * np.minimum(x, 10.0) - 2), 10.0),
                ),
            )
            r = r - b[..., 0]
            r = r - b[..., 1]
        out[good] = r.T
        return out

    def contacts(self) -> np.ndarray:
        """[E] int64: touching (predator, prey) pairs in the current state."""
        if self._contacts is None:
            dist = self._observe()[1]
            adv, good = self.adversary_slice, self.good_slice
            self._contacts = (dist[:, adv, good] < self._dmin_agents[adv, good]).sum(axis=(1, 2))
        return self._contacts.copy()
