"""What every memeplex script must do identically.

Environments and their stepping, the evaluation protocol (seeds,
deterministic episodes, 95% CIs), the reference policies `random` and
`oracle` and the normalised score (the win rule, Elo and the pool are in
competitive.py).  No learning algorithm, no files, no plots.

Conventions:
* an "env step" is one parallel step of one environment instance;
* policies return unbounded actions, the env receives them clipped to [0, 1];
* the score of an episode is the sum over all agents of all rewards;
* a policy is a callable `policy(obs, state) -> actions` on dicts agent -> [E, dim];
  `state` holds the worlds as arrays, for reference policies only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from memeplex.errors import UsageError

# Evaluation seeds (< 2**32) never overlap training seeds (>= 2**32, see train_env_seed).
MAX_SEED = 1_000_000  # run seeds are in [0, MAX_SEED)
MAX_ENVS = 4096
VALIDATION_SEED_BASE = 1_000_000_000  # periodic evaluations during training (may guide tuning)
TEST_SEED_BASE = 2_000_000_000  # final held-out evaluation (never used for tuning)


def train_env_seed(seed: int, env_index: int, session: int = 0) -> int:
    """Reset seed of training env `env_index` of run `seed`; a resumed run
    starts a new `session` so its episodes differ from the first session's.
    Every (seed, env, session) gets its own seed, and all are >= 2**32."""
    assert 0 <= seed < MAX_SEED and 0 <= env_index < MAX_ENVS and session >= 0
    return 2**32 * (1 + session) + seed * MAX_ENVS + env_index


# ----------------------------------------------------------------------------
# Environments
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvSpec:
    name: str
    family: str  # "spread" or "tag": the scenario, whatever its size
    module: str
    kwargs: tuple

    def make(self, render_mode=None):
        import importlib

        mod = importlib.import_module(self.module)
        return mod.parallel_env(render_mode=render_mode, **dict(self.kwargs))


def _spread(n: int) -> EnvSpec:
    kwargs = (("N", n), ("local_ratio", 0.5), ("max_cycles", 25), ("continuous_actions", True))
    return EnvSpec("spread" if n == 3 else f"spread-{n}", "spread", "mpe2.simple_spread_v3", kwargs)


ENVS = {
    "spread": _spread(3),
    "tag": EnvSpec(
        "tag",
        "tag",
        "mpe2.simple_tag_v3",
        (
            ("num_good", 1),
            ("num_adversaries", 3),
            ("num_obstacles", 2),
            ("max_cycles", 25),
            ("continuous_actions", True),
        ),
    ),
}
SPREAD_AGENTS = 3  # simple_spread_v3's team size unless --num-agents says otherwise


def env_spec(name: str) -> EnvSpec:
    """The spec of "spread", "tag" or "spread-N" (simple_spread_v3 with N agents and N landmarks)."""
    if name in ENVS:
        return ENVS[name]
    size = name.removeprefix("spread-")
    if size != name and size.isdigit() and int(size) >= 2:
        return _spread(int(size))
    raise UsageError(f"unknown env {name!r}; choose from {', '.join(ENVS)} (or spread-N for N agents)")


def env_id(env: str, num_agents: int = SPREAD_AGENTS) -> str:
    """The env a run plays: --env spread with --num-agents N is "spread-N" (N = 3 is "spread")."""
    if num_agents == SPREAD_AGENTS:
        return env
    if env != "spread":
        raise UsageError(f"--num-agents is for --env spread (simple_spread_v3), not {env!r}")
    if num_agents < 2:
        raise UsageError("--num-agents must be at least 2")
    return _spread(num_agents).name


def episode_length(name: str) -> int:
    """Steps of every episode (MPE episodes end by the time limit only)."""
    return dict(env_spec(name).kwargs)["max_cycles"]


def make_env(name: str, render_mode=None):
    return env_spec(name).make(render_mode)


def step_env(env, actions: dict):
    """One parallel step of an mpe2 env: what its parallel API does, without
    the AEC round trip through four wrappers (the agent-by-agent `step`, an
    unused `observe` per agent, attribute look-ups through each wrapper), which
    costs about a third of the env's time. The world, the rewards and the
    observations are the same bit for bit (tests/test_harness.py checks it
    against `env.step` on both envs). Actions must already be clipped to the
    action space. Returns (obs, rewards, terminated, truncated)."""
    raw = env.unwrapped
    for agent, action in actions.items():
        raw.current_actions[raw._index_map[agent]] = action
    raw._execute_world_step()
    raw.steps += 1
    truncated = raw.steps >= raw.max_cycles
    terminated = not truncated and bool(raw.scenario.is_terminal(raw.world))
    flags = raw.truncations if truncated else raw.terminations if terminated else None
    if flags is not None:
        for agent in raw.agents:
            flags[agent] = True
    return {a: raw.observe(a) for a in raw.agents}, dict(raw.rewards), terminated, truncated


@functools.cache
def env_info(name: str):
    """(agent_ids, obs_dims, act_dims) of an environment."""
    env = make_env(name)
    agents = list(env.possible_agents)
    obs = {a: int(np.prod(env.observation_space(a).shape)) for a in agents}
    act = {a: int(np.prod(env.action_space(a).shape)) for a in agents}
    env.close()
    return agents, obs, act


def teams(name: str) -> dict:
    """Team split: spread is one cooperative team; tag is predators vs prey."""
    agents = env_info(name)[0]
    if name == "tag":
        return {
            "predator": [a for a in agents if a.startswith("adversary")],
            "prey": [a for a in agents if not a.startswith("adversary")],
        }
    return {"team": agents}


class WorldArrays:
    """The world state of a list of mpe2 envs as arrays, laid out as BatchedMPE's (`pos`, `vel`
    [E, entities, 2], `agent_slice`, `landmark_slice`, `adversary`, `sizes`), so a policy that
    reads the state (the oracle, scripted teams) sees the same thing on both backends."""

    def __init__(self, envs):
        worlds = [env.unwrapped.world for env in envs]
        self.pos = np.array([[ent.state.p_pos for ent in w.entities] for w in worlds])
        self.vel = np.array([[ent.state.p_vel for ent in w.entities] for w in worlds])
        n = len(worlds[0].agents)
        self.agent_slice, self.landmark_slice = slice(0, n), slice(n, len(worlds[0].entities))
        self.adversary = np.array([bool(getattr(a, "adversary", False)) for a in worlds[0].agents])
        self.sizes = np.array([ent.size for ent in worlds[0].entities])


class VecEnv:
    """N environments stepped in-process as one batch (mpe_batched.BatchedMPE, bit-identical to
    mpe2), arrays per agent.

    `step` returns the observation to act on next (after an automatic reset
    where an episode ended) and, separately, the real final observation of
    every episode that ended, so a truncated episode can be bootstrapped.
    `state_dict` holds every env's world, step counter and RNG, so a resumed
    run continues the very same episodes.
    """

    def __init__(self, name: str, num_envs: int, seed: int, session: int = 0):
        from memeplex.mpe_batched import BatchedMPE

        self.name, self.num_envs, self.seed, self.session = name, num_envs, seed, session
        self.world = BatchedMPE(env_spec(name).family, num_envs, **dict(env_spec(name).kwargs))
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


BACKENDS = ("batched", "mpe2")
_backend = ["batched"]  # this process's env backend, set once by a script's --backend


def use_backend(name: str) -> None:
    """Step every env of this process (training and every evaluation) with `name`."""
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    _backend[0] = name


def backend() -> str:
    return _backend[0]


def make_vec_env(name: str, num_envs: int, seed: int, session: int = 0) -> VecEnv:
    """The training envs of a run on this process's backend."""
    return (VecEnv if _backend[0] == "batched" else Mpe2VecEnv)(name, num_envs, seed, session)


# ----------------------------------------------------------------------------
# Evaluation protocol
# ----------------------------------------------------------------------------


def eval_seeds(split: str, n: int) -> list:
    base = {"validation": VALIDATION_SEED_BASE, "test": TEST_SEED_BASE}[split]
    return [base + i for i in range(n)]


def run_episodes(name: str, policy, seeds, render_env=None) -> dict:
    """Play one episode per seed with `policy(obs, state) -> actions`.

    obs and actions are dicts agent -> [E, dim]; `state` holds the E worlds'
    arrays (`pos`, `vel`, slices: see WorldArrays; only reference policies
    look at it). Episodes run side by side (one env per seed).  Returns
    per-episode `scores` [N], per-agent `returns` {agent: [N]}, the
    `env_steps` taken; on tag also the predator-prey `contacts` [N] counted
    from the world state after every step. If `render_env` is given (an mpe2
    env made with a render_mode), the episodes are played one at a time, each
    frame drawn by mpe2 from the state, and `frames` are returned too.
    """
    policy = fresh(policy)
    seeds = list(seeds)
    size = 1 if render_env is not None else 1000
    parts = [_episodes(name, policy, seeds[i : i + size], render_env) for i in range(0, len(seeds), size)]
    out = {
        "scores": np.concatenate([p["scores"] for p in parts]),
        "returns": {a: np.concatenate([p["returns"][a] for p in parts]) for a in env_info(name)[0]},
        "env_steps": sum(p["env_steps"] for p in parts),
    }
    if name == "tag":
        out["contacts"] = np.concatenate([p["contacts"] for p in parts])
    if render_env is not None:
        out["frames"] = [f for p in parts for f in p["frames"]]
    return out


def _episodes(name: str, policy, seeds: list, render_env=None) -> dict:
    """One batch of episodes side by side, on this process's backend."""
    if _backend[0] == "mpe2" and render_env is None:
        return _episodes_mpe2(name, policy, seeds)
    from memeplex.mpe_batched import BatchedMPE

    agents = env_info(name)[0]
    world = BatchedMPE(env_spec(name).family, len(seeds), **dict(env_spec(name).kwargs))
    obs = world.reset(seeds=seeds)
    total, touch, frames = np.zeros((len(seeds), len(agents))), np.zeros(len(seeds), dtype=np.int64), []
    if render_env is not None:
        render_env.reset(seed=seeds[0])
        world.to_mpe2(render_env, 0)
        frames.append(render_env.render())
    for _ in range(world.max_cycles):  # MPE episodes end by the time limit only
        actions = policy(obs, world)
        obs, rewards, _, _ = world.step({a: np.clip(actions[a], 0.0, 1.0).astype(np.float32) for a in agents})
        total += np.stack([rewards[a] for a in agents], axis=1)
        if name == "tag":
            touch += world.contacts()
        if render_env is not None:
            world.to_mpe2(render_env, 0)
            frames.append(render_env.render())
    return {
        "scores": total.sum(1),
        "returns": {a: total[:, k] for k, a in enumerate(agents)},
        "env_steps": len(seeds) * world.max_cycles,
        "contacts": touch,
        "frames": frames,
    }


@functools.lru_cache(maxsize=4)
def _env_pool(name: str, size: int):
    return [make_env(name) for _ in range(size)]


def _episodes_mpe2(name: str, policy, seeds: list) -> dict:
    """The reference path (--backend mpe2): one mpe2 env per episode, stepped one at a time."""
    agents = env_info(name)[0]
    envs = _env_pool(name, min(len(seeds), 100))
    scores, contacts, returns, env_steps = [], [], {a: [] for a in agents}, 0
    for start in range(0, len(seeds), len(envs)):
        chunk = seeds[start : start + len(envs)]
        active = envs[: len(chunk)]
        obs = {a: np.zeros((len(chunk), env_info(name)[1][a]), dtype=np.float32) for a in agents}
        for e, (env, s) in enumerate(zip(active, chunk)):
            o, _ = env.reset(seed=s)
            for a in agents:
                obs[a][e] = o[a]
        total = np.zeros((len(chunk), len(agents)))
        touch = np.zeros(len(chunk), dtype=np.int64)
        running = np.ones(len(chunk), dtype=bool)
        while running.any():
            actions = policy(obs, WorldArrays(active))
            env_steps += int(running.sum())
            for e, env in enumerate(active):
                if not running[e]:
                    continue
                o, r, term, trunc = step_env(
                    env, {a: np.clip(actions[a][e], 0.0, 1.0).astype(np.float32) for a in agents}
                )
                total[e] += [r[a] for a in agents]
                if name == "tag":
                    touch[e] += predator_prey_contacts(env.unwrapped.world)
                if term or trunc:
                    running[e] = False
                else:
                    for a in agents:
                        obs[a][e] = o[a]
        scores.extend(total.sum(1).tolist())
        contacts.extend(touch.tolist())
        for k, a in enumerate(agents):
            returns[a].extend(total[:, k].tolist())
    return {
        "scores": np.asarray(scores),
        "returns": {a: np.asarray(v) for a, v in returns.items()},
        "env_steps": env_steps,
        "contacts": np.asarray(contacts),
        "frames": [],
    }


def fresh(policy):
    """A policy with its own state started afresh (random teams), else the policy itself."""
    return policy.fresh() if hasattr(policy, "fresh") else policy


def mean_ci(values) -> tuple:
    """Mean and half-width of the 95% t-interval."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()) if len(x) else float("nan"), float("nan")
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


RANDOM_TEAM_SEED = 12345  # the seed of every random team (references, Elo games, pools, fitness)


class RandomPolicy:
    """Uniform actions in [0, 1] for every agent.

    Every episode batch plays a *fresh* copy (`fresh()`, called by
    run_episodes and play), so a random team draws the same actions in every
    pairing and on either side, whoever shared the object before."""

    def __init__(self, name: str, seed: int = RANDOM_TEAM_SEED):
        self.name, self.seed = name, seed
        self.agents, _, self.act_dims = env_info(name)
        self.rng = np.random.default_rng(seed)

    def fresh(self) -> RandomPolicy:
        return RandomPolicy(self.name, self.seed)

    def __call__(self, obs, state):
        n = len(next(iter(obs.values())))
        return {a: self.rng.random((n, self.act_dims[a])).astype(np.float32) for a in self.agents}


def force_to_action(u: np.ndarray) -> np.ndarray:
    """A 2-d force [..., 2] as an MPE action [noop, -x, +x, -y, +y] in [0, 1]."""
    ux, uy = u[..., 0], u[..., 1]
    zero = np.zeros_like(ux)
    a = np.stack([zero, np.maximum(-ux, 0), np.maximum(ux, 0), np.maximum(-uy, 0), np.maximum(uy, 0)], axis=-1)
    return np.clip(a, 0.0, 1.0).astype(np.float32)


class OraclePolicy:
    """Hand-coded spread policy from the world state: Hungarian assignment of
    agents to landmarks, then a PD force u = 8 (target - pos) - 2 vel."""

    def __init__(self, name: str, kp: float = 8.0, kd: float = 2.0):
        if env_spec(name).family != "spread":
            raise UsageError(f"the oracle reference policy is defined for spread only, not {name!r}")
        self.agents = env_info(name)[0]
        self.kp, self.kd = kp, kd

    def __call__(self, obs, state):
        from scipy.optimize import linear_sum_assignment

        pos, vel = state.pos[:, state.agent_slice], state.vel[:, state.agent_slice]  # [E, N, 2]
        marks = state.pos[:, state.landmark_slice]
        target = np.empty_like(pos)
        for e in range(len(pos)):  # Hungarian assignment of agents to landmarks, per env
            rows, cols = linear_sum_assignment(np.linalg.norm(pos[e][:, None] - marks[e][None], axis=-1))
            target[e] = marks[e][cols[np.argsort(rows)]]
        act = force_to_action(self.kp * (target - pos) - self.kd * vel)  # [E, N, 5]
        return {a: act[:, k] for k, a in enumerate(self.agents)}


@functools.cache
def reference_scores(name: str, split: str, n: int) -> dict:
    """Mean score of the random and oracle policies on the evaluation seeds."""
    out = {"random": float(run_episodes(name, RandomPolicy(name), eval_seeds(split, n))["scores"].mean())}
    if env_spec(name).family == "spread":
        out["oracle"] = float(run_episodes(name, OraclePolicy(name), eval_seeds(split, n))["scores"].mean())
    return out


def normalised(score: float, refs: dict) -> float:
    """0 = random policy, 1 = hand-coded oracle (on the same seeds)."""
    if "oracle" not in refs:
        return float("nan")
    return (score - refs["random"]) / (refs["oracle"] - refs["random"])


def evaluate(name: str, policy, split: str, n: int) -> dict:
    """The evaluation protocol: n seeded episodes, score mean and 95% CI,
    best single episode, and the normalised score against the references."""
    scores = run_episodes(name, policy, eval_seeds(split, n))["scores"]
    mean, ci = mean_ci(scores)
    refs = reference_scores(name, split, n)
    return {
        "score": mean,
        "ci": ci,
        "best": float(scores.max()),
        "normalised": normalised(mean, refs),
        "episodes": int(n),
        "references": refs,
        "scores": scores,
    }


def in_contact(a, b) -> bool:
    """MPE's own collision test: centres closer than the sum of the radii."""
    return float(np.linalg.norm(a.state.p_pos - b.state.p_pos)) < a.size + b.size


def predator_prey_contacts(world) -> int:
    """Number of (predator, prey) pairs touching in this world state."""
    predators = [a for a in world.agents if a.adversary]
    prey = [a for a in world.agents if not a.adversary]
    return sum(in_contact(p, q) for p in predators for q in prey)
