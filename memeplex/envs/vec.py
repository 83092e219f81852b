"""The training envs of a run: N environments stepped as one batch, arrays per agent.

Two backends give the same numbers bit for bit: "batched" steps all N worlds
at once in NumPy (scenarios.make_world), "mpe2" steps N mpe2 envs one at a
time (the reference; slower, and it cannot save its envs' state).  The backend
is an argument, never process state: make_vec_env(..., backend=...).
"""

from __future__ import annotations

import numpy as np

from memeplex.envs.scenarios import make_world
from memeplex.envs.spec import env_info, env_spec, make_env, step_env, train_env_seed
from memeplex.errors import UsageError

BACKENDS = ("batched", "mpe2")


def check_backend(backend: str) -> str:
    """`backend` if it is one of BACKENDS, else a UsageError."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    return backend


def batched_world(name: str, num_envs: int):
    """The batched world of env `name` (spread, spread-N or tag) with num_envs copies."""
    spec = env_spec(name)
    return make_world(spec.family, num_envs, **dict(spec.kwargs))


class WorldArrays:
    """The world state of a list of mpe2 envs as arrays, laid out as the batched world's (`pos`,
    `vel` [E, entities, 2], `agent_slice`, `landmark_slice`, `adversary`, `sizes`; reference: `goal`), so a policy
    that reads the state (the oracle, scripted teams) sees the same thing on both backends."""

    def __init__(self, envs):
        worlds = [env.unwrapped.world for env in envs]
        self.pos = np.array([[ent.state.p_pos for ent in w.entities] for w in worlds])
        self.vel = np.array([[ent.state.p_vel for ent in w.entities] for w in worlds])
        n = len(worlds[0].agents)
        self.agent_slice, self.landmark_slice = slice(0, n), slice(n, len(worlds[0].entities))
        self.adversary = np.array([bool(getattr(a, "adversary", False)) for a in worlds[0].agents])
        self.sizes = np.array([ent.size for ent in worlds[0].entities])
        if hasattr(worlds[0].agents[0], "goal_b"):  # reference: the landmark each agent knows of
            self.goal = np.array([[w.landmarks.index(ag.goal_b) for ag in w.agents] for w in worlds])


class VecEnv:
    """N environments stepped in-process as one batch (the batched world, bit-identical to
    mpe2), arrays per agent.

    `step` returns the observation to act on next (after an automatic reset
    where an episode ended) and, separately, the real final observation of
    every episode that ended, so a truncated episode can be bootstrapped.
    `state_dict` holds every env's world, step counter and RNG, so a resumed
    run continues the very same episodes.
    """

    def __init__(self, name: str, num_envs: int, seed: int, session: int = 0):
        self.name, self.num_envs, self.seed, self.session = name, num_envs, seed, session
        self.world = batched_world(name, num_envs)
        self.agents, self.obs_dims, self.act_dims = env_info(name)
        self._returns = np.zeros((num_envs, len(self.agents)))

    def reset(self) -> dict:
        self._returns[:] = 0.0
        return self.world.reset(seeds=[train_env_seed(self.seed, e, self.session) for e in range(self.num_envs)])

    def observe(self) -> dict:
        return self.world.observe()

    def step(self, actions: dict):
        """Returns obs, rewards, dones, terminated, final_obs, finished_episodes.

        rewards: dict agent -> [E]; dones/terminated: bool [E]; final_obs: dict
        agent -> [E, D], valid where dones; finished_episodes: list of dicts
        with the episode's `score` and per-agent `returns`.
        """
        # float32 as in training; the world clips to [0, 1] itself (clipping commutes with the cast)
        final_obs, r, terminated, truncated = self.world.step(
            {a: np.asarray(actions[a], dtype=np.float32) for a in self.agents}
        )
        rewards = np.stack([r[a] for a in self.agents], axis=1).astype(np.float32)
        dones = terminated | truncated
        obs = self.world.reset(envs=dones) if dones.any() else final_obs  # ended episodes restart, their RNG goes on
        per_agent, finished = self._account(rewards, dones)
        return obs, per_agent, dones, terminated, final_obs, finished

    def _account(self, rewards: np.ndarray, dones: np.ndarray):
        """Adds a step's rewards [E, A] to the episode returns; (rewards per agent, finished episodes)."""
        self._returns += rewards
        finished = [
            {"score": float(self._returns[e].sum()), "returns": dict(zip(self.agents, self._returns[e].tolist()))}
            for e in np.flatnonzero(dones)
        ]
        self._returns[dones] = 0.0
        return {a: rewards[:, k] for k, a in enumerate(self.agents)}, finished

    def state_dict(self) -> dict:
        return {"world": self.world.state_dict(), "returns": self._returns.tolist(), "session": self.session}

    def load_state_dict(self, state: dict) -> None:
        self.world.load_state_dict(state["world"])
        self._returns = np.array(state["returns"], dtype=np.float64)
        self.session = int(state["session"])

    def close(self):
        pass


class Mpe2VecEnv(VecEnv):
    """The reference path (--backend mpe2): N mpe2 envs stepped one at a time (step_env).
    Same results as VecEnv, several times slower; kept for benchmarks and tests."""

    def __init__(self, name: str, num_envs: int, seed: int, session: int = 0):
        self.name, self.num_envs, self.seed, self.session = name, num_envs, seed, session
        self.envs = [make_env(name) for _ in range(num_envs)]
        self.agents, self.obs_dims, self.act_dims = env_info(name)
        self._returns = np.zeros((num_envs, len(self.agents)))

    def _empty_obs(self):
        return {a: np.empty((self.num_envs, self.obs_dims[a]), dtype=np.float32) for a in self.agents}

    def reset(self) -> dict:
        obs = self._empty_obs()
        for e, env in enumerate(self.envs):
            o, _ = env.reset(seed=train_env_seed(self.seed, e, self.session))
            for a in self.agents:
                obs[a][e] = o[a]
        self._returns[:] = 0.0
        return obs

    def step(self, actions: dict):
        agents, n = self.agents, self.num_envs
        clipped = {a: np.clip(actions[a], 0.0, 1.0).astype(np.float32) for a in agents}
        obs, final_obs = self._empty_obs(), self._empty_obs()
        rewards = np.zeros((n, len(agents)), dtype=np.float32)
        dones, terminated = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        for e, env in enumerate(self.envs):
            o, r, term, trunc = step_env(env, {a: clipped[a][e] for a in agents})
            for k, a in enumerate(agents):
                obs[a][e] = final_obs[a][e] = o[a]
                rewards[e, k] = r[a]
            if term or trunc:
                dones[e], terminated[e] = True, term
                o, _ = env.reset()
                for a in agents:
                    obs[a][e] = o[a]
        per_agent, finished = self._account(rewards, dones)
        return obs, per_agent, dones, terminated, final_obs, finished

    def observe(self) -> dict:
        raise UsageError("--backend mpe2 cannot restore its envs; resume a run made with --backend batched")

    def state_dict(self) -> dict:
        raise UsageError("--backend mpe2 cannot save its envs' state; use --backend batched to resume runs exactly")

    def close(self):
        for env in self.envs:
            env.close()


def make_vec_env(name: str, num_envs: int, seed: int, session: int = 0, backend: str = "batched") -> VecEnv:
    """The training envs of a run, stepped by `backend` ("batched" or "mpe2")."""
    return (VecEnv if check_backend(backend) == "batched" else Mpe2VecEnv)(name, num_envs, seed, session)
