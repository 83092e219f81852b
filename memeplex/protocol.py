"""The evaluation protocol every memeplex script shares, and its reference policies.

Seeded deterministic episodes on the validation and test seed sets, scores
with their 95% CIs, the reference policies `random` and `oracle` (and, on
reference, `no_comm`: communication.py) and the normalised score (the win
rule, Elo and the pool are in competitive.py).  No learning algorithm, no
files, no plots.

Conventions:
* an "env step" is one parallel step of one environment instance;
* policies return unbounded actions, the env receives them clipped to [0, 1];
* the score of an episode is the sum over all agents of all rewards;
* a policy is a callable `policy(obs, state) -> actions` on dicts agent -> [E, dim];
  `state` holds the worlds as arrays, for reference policies only;
* `backend` ("batched" or "mpe2", envs/vec.py) says how the episodes are stepped;
  both give the same numbers.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from memeplex.envs.spec import env_info, env_spec, make_env, step_env
from memeplex.envs.vec import WorldArrays, batched_world, check_backend
from memeplex.errors import UsageError

# Evaluation seeds (< 2**32) never overlap training seeds (>= 2**32, see envs.spec.train_env_seed).
VALIDATION_SEED_BASE = 1_000_000_000  # periodic evaluations during training (may guide tuning)
TEST_SEED_BASE = 2_000_000_000  # final held-out evaluation (never used for tuning)


def eval_seeds(split: str, n: int) -> list:
    """The first n seeds of the "validation" or "test" set."""
    base = {"validation": VALIDATION_SEED_BASE, "test": TEST_SEED_BASE}[split]
    return [base + i for i in range(n)]


def run_episodes(name: str, policy, seeds, render_env=None, backend: str = "batched") -> dict:
    """Play one episode per seed with `policy(obs, state) -> actions`.

    obs and actions are dicts agent -> [E, dim]; `state` holds the E worlds'
    arrays (`pos`, `vel`, slices: see WorldArrays; only reference policies
    look at it). Episodes run side by side (one env per seed).  Returns
    per-episode `scores` [N], per-agent `returns` {agent: [N]}, the
    `env_steps` taken; on tag also the predator-prey `contacts` [N] counted
    from the world state after every step. If `render_env` is given (an mpe2
    env made with a render_mode), the episodes are played one at a time, each
    frame drawn by mpe2 from the state, and `frames` are returned too.
    `backend`: "batched" (all episodes of a batch at once) or "mpe2" (one mpe2
    env per episode; rendering always uses the batched world).
    """
    check_backend(backend)
    policy = fresh(policy)
    seeds = list(seeds)
    size = 1 if render_env is not None else 1000
    parts = [_episodes(name, policy, seeds[i : i + size], render_env, backend) for i in range(0, len(seeds), size)]
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


def _episodes(name: str, policy, seeds: list, render_env, backend: str) -> dict:
    """One batch of episodes side by side, on `backend`."""
    if backend == "mpe2" and render_env is None:
        return _episodes_mpe2(name, policy, seeds)
    agents = env_info(name)[0]
    world = batched_world(name, len(seeds))
    obs = world.reset(seeds=seeds)
    total, touch, frames = np.zeros((len(seeds), len(agents))), np.zeros(len(seeds), dtype=np.int64), []
    if render_env is not None:
        render_env.reset(seed=seeds[0])
        world.to_mpe2(render_env, 0)
        frames.append(_frame(render_env, world))
    for _ in range(world.max_cycles):  # MPE episodes end by the time limit only
        actions = policy(obs, world)
        obs, rewards, _, _ = world.step({a: np.clip(actions[a], 0.0, 1.0).astype(np.float32) for a in agents})
        total += np.stack([rewards[a] for a in agents], axis=1)
        if name == "tag":
            touch += world.contacts()
        if render_env is not None:
            world.to_mpe2(render_env, 0)
            frames.append(_frame(render_env, world))
    return {
        "scores": total.sum(1),
        "returns": {a: total[:, k] for k, a in enumerate(agents)},
        "env_steps": len(seeds) * world.max_cycles,
        "contacts": touch,
        "frames": frames,
    }


def _frame(render_env, world):
    """mpe2's drawing of env 0 (None in a window); on reference with each agent's target and messages."""
    frame = render_env.render()
    if frame is not None and world.name == "reference":
        from memeplex.communication import annotate

        frame = annotate(frame, world, 0)
    return frame


@functools.lru_cache(maxsize=4)
def _env_pool(name: str, size: int):
    """mpe2 envs kept for the reference path's episodes (every episode resets its env with its seed)."""
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
        """This team started afresh: the same actions as a new RandomPolicy(name, seed)."""
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
    """Hand-coded policy from the world state, a PD force u = 8 (target - pos) - 2 vel to a target:
    on spread the landmark of a Hungarian assignment of agents to landmarks; on reference
    (privileged) each agent's own target, which only its partner observes, saying nothing."""

    def __init__(self, name: str, kp: float = 8.0, kd: float = 2.0):
        self.family = env_spec(name).family
        if self.family not in ("spread", "reference"):
            raise UsageError(f"the oracle reference policy is defined for spread and reference, not {name!r}")
        self.agents, _, self.act_dims = env_info(name)
        self.kp, self.kd = kp, kd

    def __call__(self, obs, state):
        from scipy.optimize import linear_sum_assignment

        pos, vel = state.pos[:, state.agent_slice], state.vel[:, state.agent_slice]  # [E, N, 2]
        marks = state.pos[:, state.landmark_slice]
        if self.family == "reference":  # agent i's target is goal[:, partner]
            target = marks[np.arange(len(pos))[:, None], state.goal[:, ::-1]]
        else:
            target = np.empty_like(pos)
            for e in range(len(pos)):  # Hungarian assignment of agents to landmarks, per env
                rows, cols = linear_sum_assignment(np.linalg.norm(pos[e][:, None] - marks[e][None], axis=-1))
                target[e] = marks[e][cols[np.argsort(rows)]]
        act = force_to_action(self.kp * (target - pos) - self.kd * vel)  # [E, N, 5]
        return {a: _pad(act[:, k], self.act_dims[a]) for k, a in enumerate(self.agents)}


def _pad(move: np.ndarray, dim: int) -> np.ndarray:
    """A movement action [E, 5] with silent message entries up to `dim`."""
    return move if dim == move.shape[1] else np.concatenate([move, np.zeros((len(move), dim - 5), move.dtype)], 1)


@functools.cache
def reference_scores(name: str, split: str, n: int, backend: str = "batched") -> dict:
    """Mean score of the reference policies on the evaluation seeds: random; oracle (spread,
    reference); no_comm (reference: communication.NoCommPolicy)."""
    seeds = eval_seeds(split, n)
    family = env_spec(name).family
    out = {"random": float(run_episodes(name, RandomPolicy(name), seeds, backend=backend)["scores"].mean())}
    if family in ("spread", "reference"):
        out["oracle"] = float(run_episodes(name, OraclePolicy(name), seeds, backend=backend)["scores"].mean())
    if family == "reference":
        from memeplex.communication import NoCommPolicy

        out["no_comm"] = float(run_episodes(name, NoCommPolicy(name), seeds, backend=backend)["scores"].mean())
    return out


def normalised(score: float, refs: dict) -> float:
    """0 = random policy, 1 = hand-coded oracle (on the same seeds)."""
    if "oracle" not in refs:
        return float("nan")
    return (score - refs["random"]) / (refs["oracle"] - refs["random"])


def comm_gap_closed(score: float, refs: dict) -> float:
    """reference: (score - no_comm) / (oracle - no_comm), above 0 when agents use messages (else nan)."""
    if "no_comm" not in refs:
        return float("nan")
    return (score - refs["no_comm"]) / (refs["oracle"] - refs["no_comm"])


def evaluate(name: str, policy, split: str, n: int, backend: str = "batched") -> dict:
    """The evaluation protocol: n seeded episodes, score mean and 95% CI,
    best single episode, and the normalised score against the references."""
    scores = run_episodes(name, policy, eval_seeds(split, n), backend=backend)["scores"]
    mean, ci = mean_ci(scores)
    refs = reference_scores(name, split, n, backend)
    return {
        "score": mean,
        "ci": ci,
        "best": float(scores.max()),
        "normalised": normalised(mean, refs),
        "comm_gap_closed": comm_gap_closed(mean, refs),
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
