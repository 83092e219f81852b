"""simple_reference_v3, batched: two agents each guide the other to a landmark (mpe2's `simple_reference/`).

    Reference(E, local_ratio=0.5, max_cycles=25, continuous_actions=True)

(the keyword arguments shown are the defaults).  Two agents (radius 0.05,
accel 5.0, no speed limit, no collisions) and three landmarks coloured red,
green and blue.  Every episode draws a target landmark for each agent, and
only the *other* agent is told it: `goal[e, i]` is the landmark agent i
knows of, the one its partner must reach.  Agents speak: the last 10 entries
of the 15-entry action are a message, which the partner observes after the
step (so a message reaches its listener one step after it was sent).

Observation (21): own velocity (2), the 3 landmarks' positions relative to
the agent (6), the colour of the landmark the agent knows of (3; its
partner's target), the partner's message (10).

mpe2 details reproduced here (each one matters for bit-identity):
* reset_world draws agent 0's goal, then agent 1's (`np_random.integers(3)`
  each), then the positions, as the other scenarios.
* reward of agent i: -|p_partner - p_landmark goal[i]| (how far its partner is
  from the target it knows of); the global reward is the mean over both
  agents, (0 + r_0 + r_1) / 2; reward = global * (1 - local_ratio) + own *
  local_ratio.  Summed over the two agents that is r_0 + r_1: minus the two
  agents' distances to their own targets.
"""

from __future__ import annotations

import numpy as np

from memeplex.envs.world import BatchedWorld

COLOURS = np.array([[0.75, 0.25, 0.25], [0.25, 0.75, 0.25], [0.25, 0.25, 0.75]])  # landmarks 0, 1, 2
MOVE_DIMS = 5  # the action's movement entries; the message follows
OBS_COLOUR = slice(8, 11)  # where the colour of the partner's target sits in the observation
OBS_MESSAGE = slice(11, 21)  # where the partner's message sits in the observation


class Reference(BatchedWorld):
    """simple_reference_v3 for E envs at once; see world.py for the API.

    goal  [E, 2] int64: goal[e, i] is the landmark agent i knows of, its partner's target
    comm  [E, 2, 10] float64: the message each agent sent at the last step (zeros after a reset)
    """

    name = "reference"
    defaults = {"local_ratio": 0.5, "max_cycles": 25, "continuous_actions": True}
    reset_ranges = ((-1.0, 1.0), (-1.0, 1.0))  # reset_world's uniform ranges: (agents, landmarks)

    def configure(self, kw: dict) -> None:
        if not 0.0 <= kw["local_ratio"] <= 1.0:
            raise ValueError("local_ratio is a proportion. Must be between 0 and 1.")
        self.local_ratio = float(kw["local_ratio"])

    @staticmethod
    def mpe2_world(kw: dict):
        from mpe2.simple_reference.simple_reference import Scenario

        world = Scenario().make_world()
        assert len(world.landmarks) == len(COLOURS) and len(world.agents) == 2
        return world

    def __init__(self, num_envs: int, **env_kwargs):
        self.goal = np.zeros((int(num_envs), 2), dtype=np.int64)
        self.state_width = 2 * 3 + 2 * 10  # the goal colours, then the messages
        super().__init__(num_envs, **env_kwargs)
        assert self.dim_c == 10 and self.speaks and not self.collide.any()

    def obs_cols(self, i: int, layout) -> list:
        partner = 1 - i
        c = layout.vel_cols(i)
        for j in range(self.num_agents, self.num_entities):  # the landmarks, relative to the agent
            c += layout.rel_cols(i, j)
        c += layout.state_cols(3 * i, 3 * i + 3)  # the colour of the landmark agent i knows of
        return c + layout.state_cols(6 + 10 * partner, 6 + 10 * partner + 10)  # the partner's message

    def obs_groups(self) -> list:
        return [(0, self.num_agents)]

    def draw_reset(self, e: int, rng) -> None:
        # agent 0's goal_b = landmarks[int(np_random.integers(3))], then agent 1's
        self.goal[e, 0] = int(rng.integers(self.num_landmarks))
        self.goal[e, 1] = int(rng.integers(self.num_landmarks))

    def obs_state(self) -> np.ndarray:
        E = self.num_envs
        return np.concatenate([COLOURS[self.goal].reshape(E, 6), self.comm.reshape(E, 20)], axis=1)

    def target(self) -> np.ndarray:
        """[E, 2] int64: agent i's own target landmark, goal[e, partner] (known only to the partner)."""
        return self.goal[:, ::-1].copy()

    def rewards(self, dist: np.ndarray) -> np.ndarray:
        """[agents, E] float64, as SimpleEnv._execute_world_step combines them."""
        E, nA = self.num_envs, self.num_agents
        # reward(agent i) = -sqrt(sum(square(goal_a.p_pos - goal_b.p_pos))): the partner's distance
        # to landmark goal[i] (dist is computed from the squares, so the direction does not matter)
        own = np.stack([-dist[np.arange(E), 1 - i, nA + self.goal[:, i]] for i in range(nA)])  # [agents, E]
        g = 0 + own[0]  # global_reward = sum(reward(a) for a in agents) / len(agents), from the int 0
        for i in range(1, nA):
            g = g + own[i]
        g = g / nA
        lr = self.local_ratio
        return g[None] * (1 - lr) + own * lr

    def extra_state(self) -> dict:
        return {"goal": self.goal.tolist()}

    def load_extra_state(self, state: dict) -> None:
        goal = np.asarray(state["goal"], dtype=np.int64)
        if goal.shape != self.goal.shape:
            raise ValueError("state arrays have the wrong shape")
        self.goal[...] = goal

    def extra_to_mpe2(self, raw, e: int) -> None:
        agents, marks = raw.world.agents, raw.world.landmarks
        for i, ag in enumerate(agents):  # as reset_world assigns them
            ag.goal_a, ag.goal_b = agents[1 - i], marks[int(self.goal[e, i])]
        for ag in agents:
            ag.color = np.array([0.25, 0.25, 0.25])
        for ag in agents:  # the partner is drawn in its target's colour
            ag.goal_a.color = ag.goal_b.color
