"""How a batched world's observations are gathered from its state, for every env at once.

Observations are gathered from one float64 row per env (a persistent scratch
buffer): [pos (2 nE) | vel (2 nE) | 0.0 | state (S) | rel (nA * nE * 2)],
rel[i, j] = p_j - p_i, `state` the scenario's own per-env values (reference:
the goal colours and the messages).  Each agent's observation is a fixed list
of column indices into that row; `standard(i)` is the usual start: its
velocity, its position, the landmarks' and the other agents' relative
positions, after which its scenario adds its own columns (the zero column
stands in for silent agents' comm state, `vel_cols` for other agents'
velocities, `state_col` for the scenario's state)."""

from __future__ import annotations

import numpy as np


class Observations:
    """The observation layout of `agents` in a world of `num_entities` entities (agents first).

    `groups`: [(lo, hi), ...] agent ranges whose observations have one length;
    `cols(i, layout)`: agent i's columns; `state_width`: S, the scenario's state columns."""

    def __init__(self, agents: list, num_envs: int, num_entities: int, groups, cols, state_width: int = 0):
        self.agents = agents
        nA, nE = len(agents), num_entities
        self.num_entities, self.zero_col, self.state0 = nE, 4 * nE, 4 * nE + 1
        self._rel0 = R0 = 4 * nE + 1 + state_width
        self._buf = np.zeros((num_envs, R0 + 2 * nA * nE))
        self._rel = self._buf[:, R0:].reshape(num_envs, nA, nE, 2)
        self._state = self._buf[:, self.state0 : R0]
        assert np.shares_memory(self._rel, self._buf)
        self.groups = [
            (lo, hi, np.array([cols(i, self) for i in range(lo, hi)], dtype=np.intp)) for lo, hi in groups if hi > lo
        ]
        self.dims = {agents[i]: idx.shape[1] for lo, hi, idx in self.groups for i in range(lo, hi)}

    def rel_cols(self, i: int, j: int) -> list:
        """The row's columns of entity j's position relative to agent i, p_j - p_i."""
        k = self._rel0 + 2 * (i * self.num_entities + j)
        return [k, k + 1]

    def standard(self, i: int) -> list:
        """Agent i's velocity, position, the landmarks' and the other agents' relative positions."""
        nA, nE = len(self.agents), self.num_entities
        c = self.vel_cols(i) + [2 * i, 2 * i + 1]
        for j in [*range(nA, nE), *(j for j in range(nA) if j != i)]:  # landmarks, other agents
            c += self.rel_cols(i, j)
        return c

    def state_cols(self, lo: int, hi: int) -> list:
        """The row's columns of the scenario's state values lo .. hi - 1."""
        return list(range(self.state0 + lo, self.state0 + hi))

    def vel_cols(self, j: int) -> list:
        """The row's columns of entity j's velocity."""
        return [2 * self.num_entities + 2 * j, 2 * self.num_entities + 2 * j + 1]

    def gather(self, pos: np.ndarray, vel: np.ndarray, state=None):
        """(obs, dist): obs agent -> [E, D] float32; dist[e, i, j] = |p_j - p_i|
        (agent i, entity j) computed as is_collision does, sqrt(dx^2 + dy^2)
        (the squares make it independent of the subtraction's order).
        `state`: [E, S] float64, the scenario's state values (None when S = 0)."""
        E, nE = pos.shape[0], self.num_entities
        buf, rel = self._buf, self._rel
        buf[:, : 2 * nE] = pos.reshape(E, -1)
        buf[:, 2 * nE : 4 * nE] = vel.reshape(E, -1)
        if state is not None:
            self._state[...] = state
        # the observations' relative positions, e.state.p_pos - agent.state.p_pos
        np.subtract(pos[:, None, :, :], pos[:, : len(self.agents), None, :], out=rel)
        obs = {}
        for lo, hi, idx in self.groups:
            # [agents, E, D]: np.concatenate([...]).astype(np.float32) for every agent and env
            o = buf[:, idx].transpose(1, 0, 2).astype(np.float32, order="C")
            for r in range(hi - lo):
                obs[self.agents[lo + r]] = o[r]
        sq = rel * rel
        return obs, np.sqrt(sq[..., 0] + sq[..., 1])
