"""What every memeplex script must do identically.

Environment factories, in-process vectorised stepping, the evaluation protocol
(seeds, deterministic episodes, 95% CIs), the reference policies `random` and
`oracle` and the normalised score, run-directory and checkpoint I/O, CLI error
handling and the shared plots.  No learning algorithm lives here.

Conventions (see DESIGN.md):
* an "env step" is one parallel step of one environment instance;
* policies return unbounded actions, the env receives them clipped to [0, 1];
* the score of an episode is the sum over all agents of all rewards.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import io
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent

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


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2."""


# ----------------------------------------------------------------------------
# Environments
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvSpec:
    name: str
    module: str
    kwargs: tuple

    def make(self, render_mode=None):
        import importlib

        mod = importlib.import_module(self.module)
        return mod.parallel_env(render_mode=render_mode, **dict(self.kwargs))


ENVS = {
    "spread": EnvSpec("spread", "mpe2.simple_spread_v3",
                      (("N", 3), ("local_ratio", 0.5), ("max_cycles", 25), ("continuous_actions", True))),
    "tag": EnvSpec("tag", "mpe2.simple_tag_v3",
                   (("num_good", 1), ("num_adversaries", 3), ("num_obstacles", 2), ("max_cycles", 25),
                    ("continuous_actions", True))),
}


def env_spec(name: str) -> EnvSpec:
    if name not in ENVS:
        raise UsageError(f"unknown env {name!r}; choose from {', '.join(ENVS)}")
    return ENVS[name]


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


@functools.lru_cache(maxsize=None)
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
        return {"predator": [a for a in agents if a.startswith("adversary")],
                "prey": [a for a in agents if not a.startswith("adversary")]}
    return {"team": agents}


class VecEnv:
    """N PettingZoo parallel envs stepped in-process, arrays per agent.

    `step` returns the observation to act on next (after an automatic reset
    where an episode ended) and, separately, the real final observation of
    every episode that ended, so a truncated episode can be bootstrapped.
    """

    def __init__(self, name: str, num_envs: int, seed: int, session: int = 0):
        self.name, self.num_envs, self.session = name, num_envs, session
        self.envs = [make_env(name) for _ in range(num_envs)]
        self.agents, self.obs_dims, self.act_dims = env_info(name)
        self.seed = seed
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
        """Returns obs, rewards, dones, terminated, final_obs, finished_episodes.

        rewards: dict agent -> [E]; dones/terminated: bool [E]; final_obs: dict
        agent -> [E, D], valid where dones; finished_episodes: list of dicts
        with the episode's `score` and per-agent `returns`.
        """
        agents, n = self.agents, self.num_envs
        clipped = {a: np.clip(actions[a], 0.0, 1.0).astype(np.float32) for a in agents}
        obs, final_obs = self._empty_obs(), self._empty_obs()
        rewards = np.zeros((n, len(agents)), dtype=np.float32)
        dones = np.zeros(n, dtype=bool)
        terminated = np.zeros(n, dtype=bool)
        finished = []
        for e, env in enumerate(self.envs):
            o, r, term, trunc = step_env(env, {a: clipped[a][e] for a in agents})
            for k, a in enumerate(agents):
                obs[a][e] = o[a]
                rewards[e, k] = r[a]
            if term or trunc:
                dones[e], terminated[e] = True, term
                for a in agents:
                    final_obs[a][e] = o[a]
                o, _ = env.reset()
                for a in agents:
                    obs[a][e] = o[a]
        self._returns += rewards
        for e in np.flatnonzero(dones):
            finished.append({"score": float(self._returns[e].sum()),
                             "returns": dict(zip(agents, self._returns[e].tolist()))})
            self._returns[e] = 0.0
        return obs, {a: rewards[:, k] for k, a in enumerate(agents)}, dones, terminated, final_obs, finished

    def close(self):
        for env in self.envs:
            env.close()


# ----------------------------------------------------------------------------
# Evaluation protocol
# ----------------------------------------------------------------------------


def eval_seeds(split: str, n: int) -> list:
    base = {"validation": VALIDATION_SEED_BASE, "test": TEST_SEED_BASE}[split]
    return [base + i for i in range(n)]


@functools.lru_cache(maxsize=4)
def _env_pool(name: str, size: int):
    return [make_env(name) for _ in range(size)]


def run_episodes(name: str, policy, seeds, render_env=None) -> dict:
    """Play one episode per seed with `policy(obs, worlds) -> actions`.

    obs and actions are dicts agent -> [E, dim]; `worlds` is the list of the
    E envs' `unwrapped.world` (only reference policies may look at it).
    Episodes run side by side (one env per seed).  Returns per-episode
    `scores` [N], per-agent `returns` {agent: [N]}, the `env_steps` taken; on tag also the
    predator-prey `contacts` [N] counted from the world state after every step.
    If `render_env` is given (an env made with a render_mode), the episodes
    are played one at a time in it and `frames` are returned too.
    """
    agents = env_info(name)[0]
    seeds = list(seeds)
    policy = fresh(policy)
    envs = [render_env] if render_env is not None else _env_pool(name, min(len(seeds), 100))
    scores, contacts, returns, frames, env_steps = [], [], {a: [] for a in agents}, [], 0
    for start in range(0, len(seeds), len(envs)):
        chunk = seeds[start:start + len(envs)]
        active = envs[:len(chunk)]
        obs = {a: np.zeros((len(chunk), env_info(name)[1][a]), dtype=np.float32) for a in agents}
        for e, (env, s) in enumerate(zip(active, chunk)):
            o, _ = env.reset(seed=s)
            for a in agents:
                obs[a][e] = o[a]
        if render_env is not None:
            frames.append(render_env.render())
        total = np.zeros((len(chunk), len(agents)))
        touch = np.zeros(len(chunk), dtype=np.int64)
        running = np.ones(len(chunk), dtype=bool)
        while running.any():
            actions = policy(obs, [env.unwrapped.world for env in active])
            env_steps += int(running.sum())
            for e, env in enumerate(active):
                if not running[e]:
                    continue
                o, r, term, trunc = step_env(env, {a: np.clip(actions[a][e], 0.0, 1.0).astype(np.float32) for a in agents})
                total[e] += [r[a] for a in agents]
                if name == "tag":
                    touch[e] += predator_prey_contacts(env.unwrapped.world)
                if term or trunc:
                    running[e] = False
                else:
                    for a in agents:
                        obs[a][e] = o[a]
            if render_env is not None:
                frames.append(render_env.render())
        scores.extend(total.sum(1).tolist())
        contacts.extend(touch.tolist())
        for k, a in enumerate(agents):
            returns[a].extend(total[:, k].tolist())
    out = {"scores": np.asarray(scores), "returns": {a: np.asarray(v) for a, v in returns.items()}, "env_steps": env_steps}
    if name == "tag":
        out["contacts"] = np.asarray(contacts)
    if render_env is not None:
        out["frames"] = frames
    return out


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

    def fresh(self) -> "RandomPolicy":
        return RandomPolicy(self.name, self.seed)

    def __call__(self, obs, worlds):
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
        if name != "spread":
            raise UsageError(f"the oracle reference policy is defined for spread only, not {name!r}")
        self.agents = env_info(name)[0]
        self.kp, self.kd = kp, kd

    def __call__(self, obs, worlds):
        from scipy.optimize import linear_sum_assignment

        actions = {a: np.zeros((len(worlds), 5), dtype=np.float32) for a in self.agents}
        for e, world in enumerate(worlds):
            pos = np.array([ag.state.p_pos for ag in world.agents])
            vel = np.array([ag.state.p_vel for ag in world.agents])
            marks = np.array([lm.state.p_pos for lm in world.landmarks])
            cost = np.linalg.norm(pos[:, None] - marks[None], axis=-1)
            rows, cols = linear_sum_assignment(cost)
            target = marks[cols[np.argsort(rows)]]
            act = force_to_action(self.kp * (target - pos) - self.kd * vel)
            for k, ag in enumerate(world.agents):
                actions[ag.name][e] = act[k]
        return actions


@functools.lru_cache(maxsize=None)
def reference_scores(name: str, split: str, n: int) -> dict:
    """Mean score of the random and oracle policies on the evaluation seeds."""
    out = {"random": float(run_episodes(name, RandomPolicy(name), eval_seeds(split, n))["scores"].mean())}
    if name == "spread":
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
    return {"score": mean, "ci": ci, "best": float(scores.max()), "normalised": normalised(mean, refs),
            "episodes": int(n), "references": refs, "scores": scores}


# ----------------------------------------------------------------------------
# Competitive evaluation (tag): wins, Elo, rolling opponent pool
# ----------------------------------------------------------------------------

ELO_K = 32.0
ELO_ANCHOR = 1000.0  # the random policy's fixed rating


def in_contact(a, b) -> bool:
    """MPE's own collision test: centres closer than the sum of the radii."""
    return float(np.linalg.norm(a.state.p_pos - b.state.p_pos)) < a.size + b.size


def predator_prey_contacts(world) -> int:
    """Number of (predator, prey) pairs touching in this world state."""
    predators = [a for a in world.agents if a.adversary]
    prey = [a for a in world.agents if not a.adversary]
    return sum(in_contact(p, q) for p in predators for q in prey)


def combine(name: str, predators, prey):
    """One policy from a predator-team policy and a prey-team policy (each may
    act for every agent; only its own team's actions are used)."""
    side = teams(name)

    def policy(obs, worlds):
        pa, qa = predators(obs, worlds), prey(obs, worlds)
        return {**{a: pa[a] for a in side["predator"]}, **{a: qa[a] for a in side["prey"]}}

    return policy


def play(name: str, predators, prey, seeds) -> dict:
    """Episodes of `predators` against `prey`. A predator win is an episode
    with at least one predator-prey contact (from the world state)."""
    out = run_episodes(name, combine(name, fresh(predators), fresh(prey)), seeds)
    return {"wins": out["contacts"] > 0, "contacts": out["contacts"], "env_steps": out["env_steps"]}


def rate_ci(wins) -> tuple:
    """Win-rate and the half-width of its 95% (normal) interval."""
    x = np.asarray(wins, dtype=np.float64)
    p = float(x.mean())
    return p, float(1.96 * math.sqrt(max(p * (1 - p), 1e-12) / len(x)))


def elo_expected(rating: float, opponent: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / 400.0))


def elo_update(rating: float, opponent: float, score: float, k: float = ELO_K) -> float:
    """One game: score 1 = win, 0 = loss, 0.5 = draw. Only `rating` moves."""
    return rating + k * (score - elo_expected(rating, opponent))


def elo_rate(rating: float, games, k: float = ELO_K) -> float:
    """Sequential Elo updates over (opponent_rating, score) games, in order."""
    for opponent, score in games:
        rating = elo_update(rating, opponent, score, k)
    return rating


def performance_rating(games) -> float:
    """The rating R at which the Elo-expected score against these opponents
    equals the actual score: sum_j E(R, r_j) = sum_j s_j (the maximum-likelihood
    Elo, and where game-by-game K updates against fixed opponents hover).
    A perfect or zero score is counted as half a game short of it, so R stays finite."""
    games = list(games)
    if not games:
        return float("nan")
    total = min(max(sum(s for _, s in games), 0.5), len(games) - 0.5)
    lo, hi = -4000.0, 6000.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if sum(elo_expected(mid, r) for r, _ in games) < total:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def interleave(results: list) -> list:
    """[(opponent_rating, [scores...]), ...] -> games ordered round-robin
    (episode 0 against every opponent, then episode 1, ...), so no opponent
    is played in a block at the end."""
    n = max((len(s) for _, s in results), default=0)
    return [(r, float(s[i])) for i in range(n) for r, s in results if i < len(s)]


def exploitability(win_rates) -> float:
    """Exploitability proxy: max(0, 0.5 - the lowest win-rate against the pool)."""
    return max(0.0, 0.5 - min(win_rates)) if len(win_rates) else float("nan")


class _ScriptedTeam:
    """A scripted team reading the world state: every agent of the team
    (predators if `adversary`, else prey) applies `gain * direction(agent, world)`."""

    adversary = True

    def __init__(self, name: str = "tag", gain: float = 3.0):
        self.gain = gain

    def __call__(self, obs, worlds):
        out = {}
        for e, world in enumerate(worlds):
            for a in world.agents:
                if a.adversary == self.adversary:
                    out.setdefault(a.name, np.zeros((len(worlds), 5), np.float32))[e] = force_to_action(
                        self.gain * self.direction(a, world))
        return out


class ChasingPredators(_ScriptedTeam):
    """Scripted predators that push straight at the prey."""

    def direction(self, agent, world):
        prey = next(a for a in world.agents if not a.adversary)
        return prey.state.p_pos - agent.state.p_pos


class FleeingPrey(_ScriptedTeam):
    """Scripted prey that runs straight away from the nearest predator."""

    adversary = False

    def direction(self, agent, world):
        away = min((agent.state.p_pos - p.state.p_pos for p in world.agents if p.adversary),
                   key=lambda d: float(np.linalg.norm(d)))
        return away / max(float(np.linalg.norm(away)), 1e-6)


class StationaryPolicy:
    """Every agent does nothing (zero force)."""

    def __init__(self, name: str):
        self.agents, _, self.act_dims = env_info(name)

    def __call__(self, obs, worlds):
        n = len(next(iter(obs.values())))
        return {a: np.zeros((n, self.act_dims[a]), np.float32) for a in self.agents}


class SelfPlayPool:
    """The rolling opponent pool of a self-play run and its Elo ratings.

    Every evaluation freezes both teams of the current policy into the pool
    (its checkpoint file; the oldest entry leaves when the pool is full, the
    file stays on disk).  The current predators then play `episodes` episodes
    against the random prey and against every pool prey, and the current prey
    likewise; each team's Elo is updated game by game (K=32) against the
    opponents' ratings: random is anchored at 1000, a pool snapshot keeps the
    rating its team had when it was frozen.
    """

    def __init__(self, name: str, size: int, episodes: int, load_policy):
        self.name, self.size, self.episodes, self.load_policy = name, size, episodes, load_policy
        self.entries = []  # {"step", "path", "predator_elo", "prey_elo", "policy"}
        self.ratings = {"predator": ELO_ANCHOR, "prey": ELO_ANCHOR}

    def add(self, step: int, path) -> None:
        self.entries.append({"step": int(step), "path": str(path), "predator_elo": self.ratings["predator"],
                             "prey_elo": self.ratings["prey"], "policy": self.load_policy(path)})
        del self.entries[:-self.size]

    def evaluate(self, policy, split: str = "validation", episodes: int | None = None, update: bool = True) -> dict:
        """Current teams against random and against the pool; updates the
        ratings (unless update=False) and returns the metrics row."""
        n = episodes or self.episodes
        seeds = eval_seeds(split, n)
        rnd = RandomPolicy(self.name)
        pred = {"random": play(self.name, policy, rnd, seeds)}
        prey = {"random": play(self.name, rnd, policy, seeds)}
        for e in self.entries:
            pred[e["step"]] = play(self.name, policy, e["policy"], seeds)
            prey[e["step"]] = play(self.name, e["policy"], policy, seeds)
        pred_rates = {k: float(v["wins"].mean()) for k, v in pred.items()}
        prey_rates = {k: 1.0 - float(v["wins"].mean()) for k, v in prey.items()}
        opp = {e["step"]: e for e in self.entries}
        new = {
            "predator": elo_rate(self.ratings["predator"], interleave(
                [(ELO_ANCHOR if k == "random" else opp[k]["prey_elo"], v["wins"].astype(float)) for k, v in pred.items()])),
            "prey": elo_rate(self.ratings["prey"], interleave(
                [(ELO_ANCHOR if k == "random" else opp[k]["predator_elo"], 1.0 - v["wins"].astype(float))
                 for k, v in prey.items()])),
        }
        if update:
            self.ratings = new
        pool_pred = [pred_rates[k] for k in opp]
        pool_prey = [prey_rates[k] for k in opp]
        selfplay = play(self.name, policy, policy, seeds)
        return {
            "predator_elo": new["predator"], "prey_elo": new["prey"],
            "predator_win_vs_random": pred_rates["random"], "prey_win_vs_random": prey_rates["random"],
            "predator_win_vs_random_ci": rate_ci(pred["random"]["wins"])[1],
            "prey_win_vs_random_ci": rate_ci(prey["random"]["wins"])[1],
            "predator_min_win_vs_pool": min(pool_pred, default=float("nan")),
            "prey_min_win_vs_pool": min(pool_prey, default=float("nan")),
            "predator_exploitability": exploitability(pool_pred), "prey_exploitability": exploitability(pool_prey),
            "self_play_predator_win": float(selfplay["wins"].mean()), "self_play_predator_win_ci": rate_ci(selfplay["wins"])[1],
            "contacts_self_play": float(selfplay["contacts"].mean()),
            "contacts_vs_random_prey": float(pred["random"]["contacts"].mean()),
            "contacts_vs_random_predators": float(prey["random"]["contacts"].mean()),
            "elo_episodes": n, "pool": " ".join(str(k) for k in opp),
        }

    def matrix(self, episodes: int, split: str = "validation"):
        """Predator win-rates of every pool snapshot's predators (rows) against
        every pool snapshot's prey (columns), random included. Returns
        (labels, matrix)."""
        seeds = eval_seeds(split, episodes)
        labels = ["random"] + [f"step {e['step']}" for e in self.entries]
        policies = [RandomPolicy(self.name)] + [e["policy"] for e in self.entries]
        m = np.array([[float(play(self.name, p, q, seeds)["wins"].mean()) for q in policies] for p in policies])
        return labels, m

    def state_dict(self) -> dict:
        return {"ratings": dict(self.ratings),
                "entries": [{k: v for k, v in e.items() if k != "policy"} for e in self.entries]}

    def load_state_dict(self, state: dict) -> None:
        self.ratings = dict(state["ratings"])
        self.entries = []
        for e in state["entries"]:
            if not Path(e["path"]).exists():
                raise UsageError(f"--resume: pool snapshot {e['path']} is missing (pool files must not be pruned "
                                 f"while a run is still to be resumed)")
            self.entries.append({**e, "policy": self.load_policy(e["path"])})


def load_policy(path, env_name: str | None = None):
    """The deterministic policy(obs, worlds) stored in any training checkpoint
    of this repository (Method I, IPPO or MADDPG), and the checkpoint dict.
    Loading leaves the global RNG state of python, numpy and torch as it was
    (building an AgileRL actor draws initial weights from torch's)."""
    with untouched_global_rng():
        return _load_policy(path, env_name)


@contextlib.contextmanager
def untouched_global_rng():
    """Restore python's, numpy's and torch's global RNG state on exit."""
    import random

    import torch

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _load_policy(path, env_name):
    from method_i import CheckpointError

    state = load_checkpoint(path)
    algo = state.get("algo")
    if algo in ("method_i", "ppo"):
        from eval_method_i import load_learner

        learner, state = load_learner(path, env_name)
        return (lambda obs, worlds: learner.act(obs, deterministic=True)), state
    if algo == "maddpg":
        from eval_maddpg import load_policy as load_maddpg

        return load_maddpg(path, env_name)
    raise CheckpointError(f"{path} is not a training checkpoint of this repository")


# ----------------------------------------------------------------------------
# Pools of finished tag runs (evaluate_fixed_pool.py, cross_play_matrix.py)
# ----------------------------------------------------------------------------

# The run each pool set reads, per algorithm. wallclock: Method I and IPPO trained for MADDPG's wall time
# (--max-time), against MADDPG's own 200k-step run, which sets that time.
POOL_SET_RUN_NAMES = {"step": {"maddpg": "main", "method_i": "main", "ppo": "main"},
                      "wallclock": {"maddpg": "main", "method_i": "wallclock", "ppo": "wallclock"}}
COMPETITIVE_ALGOS = ("maddpg", "method_i", "ppo")
TRAIN_SCRIPTS = {"method_i": "train_method_i.py", "ppo": "train_ppo.py", "maddpg": "train_maddpg.py"}


def add_pool_set_arguments(p) -> None:
    p.add_argument("--pool-set", choices=sorted(POOL_SET_RUN_NAMES), default="step",
                   help="step: the 200k-step runs (run name 'main'); wallclock: Method I and IPPO runs given "
                        "MADDPG's wall time (run name 'wallclock') with MADDPG's 'main' run")
    p.add_argument("--algos", nargs="+", choices=COMPETITIVE_ALGOS, default=list(COMPETITIVE_ALGOS),
                   help="algorithms to include")
    p.add_argument("--run-name", default=None, help="read this run name for every algorithm instead")
    p.add_argument("--seed", type=int, default=1, help="seed of the runs to read")
    p.add_argument("--last", type=positive(int), default=5, help="snapshots per run: its last N step checkpoints")
    p.add_argument("--episodes", type=positive(int), default=100,
                   help="episodes per pairing (100 gives a 95%% CI within +-0.1), on the held-out test seeds")
    p.add_argument("--checkpoint-dir", default="checkpoints", help="root of the runs' checkpoints")
    p.add_argument("--results-dir", default="results", help="where the tables and plots go (under <dir>/tag/)")


def pool_set_cli(description: str, argv) -> tuple:
    """What evaluate_fixed_pool.py and cross_play_matrix.py start with: (args, runs, missing)."""
    import torch

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pool_set_arguments(p)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    return (args, *pool_set_runs(args))


def pool_set_runs(args) -> tuple:
    """({algo: [its last --last step checkpoints]}, [one line per missing run])."""
    found, missing = {}, []
    for algo in args.algos:
        run_name = args.run_name or POOL_SET_RUN_NAMES[args.pool_set][algo]
        d = Path(args.checkpoint_dir) / "tag" / algo / f"{run_name}_s{args.seed}"
        steps = sorted(d.glob("step_*.pt"))
        if not steps:
            missing.append(f"{algo}: no step_*.pt in {d} (train it: python {TRAIN_SCRIPTS[algo]} --env tag "
                           f"--run-name {run_name} --seed {args.seed}"
                           + (" --max-time SECONDS" if run_name == "wallclock" else "") + ")")
            continue
        found[algo] = steps[-args.last:]
    for line in missing:
        print(f"missing run: {line}", file=sys.stderr)
    if not found:
        raise UsageError(f"no tag runs for pool set {args.pool_set!r} under {args.checkpoint_dir}/tag/ (seed {args.seed})")
    return found, missing


def snapshot_label(algo: str, path) -> str:
    return f"{algo}@{int(Path(path).stem.split('_')[1])}"


def load_snapshots(runs: dict) -> dict:
    """{algo: [(label, policy)]} for the checkpoints pool_set_runs found."""
    return {algo: [(snapshot_label(algo, path), load_policy(path, "tag")[0]) for path in paths]
            for algo, paths in runs.items()}


# ----------------------------------------------------------------------------
# Files: atomic writes, run directories, checkpoints
# ----------------------------------------------------------------------------


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, data) -> None:
    """Write text or bytes to path via a temp file and rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_checkpoint(obj: dict, path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(path) -> dict:
    """torch.load(weights_only=True) with one-line errors for the usual failures."""
    import torch

    from method_i import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a torch file
        raise CheckpointError(f"cannot read checkpoint {path}: not a readable torch checkpoint ({type(exc).__name__})")
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path} is not a memeplex checkpoint")
    return state


def seed_everything(seed: int) -> None:
    """One --seed seeds python, numpy and torch (the envs get their own seeds)."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def provenance() -> dict:
    """Git commit, package versions and machine, for config.json."""
    from importlib import metadata

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    versions = {}
    for pkg in ("torch", "numpy", "mpe2", "pettingzoo", "agilerl", "scipy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {"git_commit": git("rev-parse", "HEAD") or None, "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "packages": versions, "python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), **cpu_info(), "command": " ".join(sys.argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# Instruction-set extensions that decide which floating-point kernels torch and numpy run.
SIMD_FLAG_PREFIXES = ("sse", "avx", "fma", "amx", "f16c")


def cpu_info() -> dict:
    """CPU model, its SIMD flags and torch's kernel level: runs are bit-identical only on the
    same machine and build, so config.json says which CPU made them."""
    import torch

    info = {}
    try:  # Linux; elsewhere the processor name platform gives
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = info.get("model name") or platform.processor() or platform.machine()
    flags = sorted(v for v in info.get("flags", "").split() if v.startswith(SIMD_FLAG_PREFIXES))
    return {"cpu_model": model, "cpu_simd_flags": " ".join(flags),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


class RunDir:
    """results/<env>/<algo>/<run-name>_s<seed>/ and its checkpoint directory.

    metrics.csv is rewritten atomically on every row, so it is always a
    complete CSV; an existing run is never overwritten unless resumed.
    """

    def __init__(self, results_dir, checkpoint_dir, env: str, algo: str, run_name: str, seed: int, resume: bool):
        leaf = f"{run_name}_s{seed}"
        self.path = Path(results_dir) / env / algo / leaf
        self.ckpt = Path(checkpoint_dir) / env / algo / leaf
        self.rows = []  # metrics.csv: one row per evaluation
        self.update_rows = []  # updates.csv: one row of training diagnostics per update
        exists = (self.path / "config.json").exists() or (self.ckpt / "latest.pt").exists()
        if resume:
            if not (self.ckpt / "latest.pt").exists():
                raise UsageError(f"--resume: no checkpoint {self.ckpt / 'latest.pt'} to resume from")
            if (self.path / "metrics.csv").exists():
                self.rows = read_metrics(self.path / "metrics.csv")
            if (self.path / "updates.csv").exists():
                self.update_rows = read_metrics(self.path / "updates.csv")
        elif exists:
            raise UsageError(f"run {self.path} already exists; pass --resume to continue it or choose another --run-name")
        self.path.mkdir(parents=True, exist_ok=True)
        self.ckpt.mkdir(parents=True, exist_ok=True)

    def saved_config(self) -> dict:
        with open(self.path / "config.json") as f:
            return json.load(f)

    def write_config(self, config: dict) -> None:
        write_json(self.path / "config.json", config)

    def append_metrics(self, row: dict) -> None:
        """Add an evaluation row; rewrites metrics.csv and updates.csv atomically."""
        self.rows.append(row)
        write_csv(self.path / "metrics.csv", self.rows)
        self.flush_updates()

    def flush_updates(self) -> None:
        if self.update_rows:
            write_csv(self.path / "updates.csv", self.update_rows)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "summary.json", summary)


def write_csv(path, rows: list) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, out.getvalue())


def _parse(v: str):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def read_metrics(path) -> list:
    with open(path, newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


# ----------------------------------------------------------------------------
# CLI helpers
# ----------------------------------------------------------------------------


def run_cli(main, argv=None) -> int:
    """Run a script's main(): user errors become one line on stderr + exit 2."""
    from method_i import CheckpointError

    try:
        return main(argv) or 0
    except (UsageError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class GracefulStop:
    """SIGINT/SIGTERM set a flag that the training loop polls between updates;
    a second Ctrl-C interrupts immediately."""

    def __init__(self):
        self.signum = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum, frame):
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: finishing the current update, then saving", file=sys.stderr)

    @property
    def requested(self) -> bool:
        return self.signum is not None


def positive(kind=int):
    """argparse type: a strictly positive int or float."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise _argparse_error(f"expected a positive {kind.__name__}, got {text!r}")
        if not value > 0:
            raise _argparse_error(f"must be positive, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _argparse_error(msg):
    import argparse

    return argparse.ArgumentTypeError(msg)


# ----------------------------------------------------------------------------
# Plots and GIFs
# ----------------------------------------------------------------------------


def plot_training(rows: list, refs: dict, path, title: str, panels=(("latent_distance", "latent distance"),
                                                                      ("log_std", "mean log std"))) -> None:
    """Eval score (95% CI band) over env steps with the reference lines, plus
    one small panel per extra metric present in the rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, label) for k, label in panels if any(_finite(r.get(k)) for r in rows)]
    fig, axes = plt.subplots(1 + len(panels), 1, figsize=(7, 4 + 1.8 * len(panels)), sharex=True,
                             gridspec_kw={"height_ratios": [3] + [1] * len(panels)}, squeeze=False)
    axes = axes[:, 0]
    steps = np.array([r["step"] for r in rows], dtype=float)
    score = np.array([r["eval_score"] for r in rows], dtype=float)
    ci = np.array([r.get("eval_ci", np.nan) for r in rows], dtype=float)
    ax = axes[0]
    ax.plot(steps, score, marker="o", ms=3, label="eval score (deterministic)")
    ax.fill_between(steps, score - ci, score + ci, alpha=0.25)
    for key, style in (("oracle", "--"), ("random", ":")):
        if key in refs:
            ax.axhline(refs[key], color="gray", ls=style, label=f"{key} ({refs[key]:.1f})")
    ax.set_ylabel("episode score")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    for ax, (key, label) in zip(axes[1:], panels):
        ax.plot(steps, [r.get(key, np.nan) for r in rows], marker=".", color="C1")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("env steps")
    fig.tight_layout()
    _save_fig(fig, path)


def plot_competitive(rows: list, path, title: str) -> None:
    """Self-play curves: both teams' Elo (random = 1000), win-rates against
    the random team, and the exploitability proxy, over env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in rows], dtype=float)
    col = lambda k: np.array([r.get(k, np.nan) for r in rows], dtype=float)
    fig, axes = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.5, 1.5]})
    for team, c in (("predator", "C3"), ("prey", "C0")):
        axes[0].plot(steps, col(f"{team}_elo"), marker="o", ms=3, color=c, label=f"{team} Elo")
        axes[1].plot(steps, col(f"{team}_win_vs_random"), marker=".", color=c, label=f"{team} vs random")
        axes[2].plot(steps, col(f"{team}_exploitability"), marker=".", color=c, label=team)
    axes[0].axhline(ELO_ANCHOR, color="gray", ls=":", label="random (1000)")
    axes[0].set_ylabel("Elo vs rolling pool")
    axes[0].set_title(title)
    axes[1].set_ylabel("win-rate", fontsize=8)
    axes[1].set_ylim(-0.05, 1.05)
    axes[2].set_ylabel("exploitability", fontsize=8)
    axes[2].set_ylim(-0.05, 0.55)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("env steps")
    fig.tight_layout()
    _save_fig(fig, path)


def plot_matrix(row_labels, col_labels, m, path, title: str) -> None:
    """Heatmap of a predator win-rate matrix (rows: predators, columns: prey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(m, dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(col_labels), 1.0 + 0.6 * len(row_labels)))
    im = ax.imshow(m, vmin=0, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7)
    ax.set_xlabel("prey")
    ax.set_ylabel("predators")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(m[i, j] - 0.5) > 0.3 else "black")
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    _save_fig(fig, path)


def _save_fig(fig, path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def _finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)


def save_gif(frames, path, fps: int = 10) -> None:
    from PIL import Image

    images = [Image.fromarray(f).convert("P", palette=Image.ADAPTIVE) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    atomic_write(path, buf.getvalue())


# ----------------------------------------------------------------------------
# Evaluating a trained policy from the command line (eval_*.py)
# ----------------------------------------------------------------------------


def add_eval_arguments(parser, algo_dirs) -> None:
    parser.add_argument("--checkpoint", default=None,
                        help=f"checkpoint file (default: the newest latest.pt under checkpoints/*/{{{','.join(algo_dirs)}}}/)")
    parser.add_argument("--episodes", type=positive(int), default=100, help="deterministic evaluation episodes")
    parser.add_argument("--split", choices=["test", "validation"], default="test",
                        help="evaluation seed set (test = the held-out seeds of the final evaluation)")
    parser.add_argument("--render", nargs="?", const="gif", choices=["gif", "human"], default=None,
                        help="also render episodes: an animated GIF (headless) or a window (human)")
    parser.add_argument("--render-episodes", type=positive(int), default=1, help="episodes to render")
    parser.add_argument("--out", default=None, help="GIF path for --render gif (default: next to the checkpoint)")
    parser.add_argument("--fps", type=positive(int), default=10, help="frames per second of the GIF")
    parser.add_argument("--opponent", default=None,
                        help="tag only: a checkpoint of any algorithm to play against (both ways), in addition to "
                             "random; --render then shows the checkpoint's predators chasing the opponent's prey")


# ----------------------------------------------------------------------------
# What every training script accepts and how it opens its run directory
# ----------------------------------------------------------------------------

# Options a resumed run may change; every other option must match the run's config.
RESUMABLE = {"resume", "max_steps", "max_time", "progress", "torch_threads"}
SELF_PLAY_OPTIONS = ("pool_size", "elo_episodes", "matrix_interval", "matrix_episodes")


def add_run_arguments(p, budget_note: str, envs=("spread",)) -> None:
    """The options common to every train_*.py (budgets, seeds, evaluation, run directories)."""
    run = p.add_argument_group("run")
    run.add_argument("--env", default="spread", choices=envs,
                     help="MPE environment: spread = simple_spread_v3 (cooperative), tag = simple_tag_v3 (self-play)")
    run.add_argument("--max-steps", type=positive(int), default=200_000, help=f"env-step budget ({budget_note})")
    run.add_argument("--max-time", type=positive(float), default=None,
                     help="wall-clock budget in seconds; training stops at whichever budget ends first")
    run.add_argument("--num-envs", type=positive(int), default=8, help="parallel environments stepped in-process")
    run.add_argument("--seed", type=int, default=1, help="seeds python, numpy, torch and the training envs")
    run.add_argument("--eval-interval", type=positive(int), default=10_000, help="env steps between evaluations")
    run.add_argument("--eval-episodes", type=positive(int), default=50,
                     help="deterministic episodes per evaluation (validation seeds; tag uses --elo-episodes)")
    run.add_argument("--final-eval-episodes", type=int, default=100,
                     help="deterministic episodes of the final held-out evaluation (test seeds; per pairing on tag); "
                          "0 skips it (hyperparameter sweeps must never see the test seeds)")
    run.add_argument("--run-name", default=None, help="run directory name (default: the start time)")
    run.add_argument("--results-dir", default="results", help="root of run directories (committed)")
    run.add_argument("--checkpoint-dir", default="checkpoints", help="root of checkpoint directories (git-ignored)")
    run.add_argument("--resume", action="store_true", help="continue the run --run-name/--seed from its latest.pt")
    run.add_argument("--torch-threads", type=positive(int), default=1,
                     help="torch intra-op threads (1 is fastest for these small networks, see benchmarks/)")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    if "tag" in envs:
        sp = p.add_argument_group("self-play evaluation (tag; see DESIGN.md, competitive metrics)")
        sp.add_argument("--pool-size", type=positive(int), default=5,
                        help="rolling pool: the last N frozen snapshots of both teams (files are kept)")
        sp.add_argument("--elo-episodes", type=positive(int), default=20,
                        help="episodes per pairing in each evaluation's Elo games (current team vs random and each pool snapshot)")
        sp.add_argument("--matrix-interval", type=positive(int), default=100_000,
                        help="env steps between snapshot-vs-snapshot win-rate matrices (one is also written at the end)")
        sp.add_argument("--matrix-episodes", type=positive(int), default=20, help="episodes per matrix cell")



def explicit_options(parser, argv) -> dict:
    """The options actually given on the command line."""
    probe = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            kwargs = {"dest": action.dest, "default": argparse.SUPPRESS}
            if isinstance(action, argparse.BooleanOptionalAction):
                probe.add_argument(*action.option_strings, action=argparse.BooleanOptionalAction, **kwargs)
            elif action.nargs == 0:
                probe.add_argument(*action.option_strings, action="store_const", const=action.const, **kwargs)
            else:
                probe.add_argument(*action.option_strings, nargs=action.nargs, type=action.type, **kwargs)
    return vars(probe.parse_known_args(argv)[0])


def open_run(parser, argv, args, algo: str):
    """Validate the common options and open the run directory.  With
    --resume, the run's own config.json wins: only RESUMABLE options may
    change, and any other option given with a different value is an error.
    Returns (args, RunDir)."""
    if not 0 <= args.seed < MAX_SEED:
        raise UsageError(f"--seed must be in [0, {MAX_SEED})")
    if args.final_eval_episodes < 0:
        raise UsageError("--final-eval-episodes must be >= 0")
    if args.num_envs > MAX_ENVS:
        raise UsageError(f"--num-envs must be at most {MAX_ENVS}")
    if args.env != "tag":  # no option is accepted and then ignored
        given = [k for k in SELF_PLAY_OPTIONS if k in explicit_options(parser, argv)]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} is for --env tag (self-play evaluation)")
    if args.resume and args.run_name is None:
        raise UsageError("--resume needs the --run-name (and --seed) of the run to continue")
    if args.run_name is None:
        args.run_name = time.strftime("%Y%m%d-%H%M%S")
    run = RunDir(args.results_dir, args.checkpoint_dir, args.env, algo, args.run_name, args.seed, args.resume)
    if args.resume:  # the run's own config wins; only RESUMABLE options may change
        saved = run.saved_config()["args"]
        given = explicit_options(parser, argv)
        for key, value in given.items():
            if key not in RESUMABLE and key in saved and saved[key] != value:
                raise UsageError(f"--resume: --{key.replace('_', '-')} {value} differs from the run's {saved[key]}")
        args = argparse.Namespace(**{**saved, **{k: v for k, v in given.items() if k in RESUMABLE}, "resume": True})
    return args, run


def evaluation_row(progress: dict, res: dict) -> dict:
    """The metrics.csv fields every trainer records for an evaluation (and the
    best-score bookkeeping behind summary.json)."""
    progress["best_mean"] = max(progress["best_mean"], res["score"])
    progress["best_single"] = max(progress["best_single"], res["best"])
    train_scores = progress["train_scores"][-100:]
    wall, sps = _row_speed(progress)
    return {"wall_time": wall, "eval_score": res["score"], "eval_ci": res["ci"],
            "eval_normalised": res["normalised"], "eval_best_episode": res["best"],
            "train_score": float(np.mean(train_scores)) if train_scores else float("nan"), **sps}


def _row_speed(progress: dict) -> tuple:
    """A metrics row's wall time so far, and its throughputs with and without evaluation."""
    wall = progress["train_time"] + progress["eval_time"]
    return round(wall, 2), {"sps": round(progress["global_step"] / max(wall, 1e-9), 1),
                            "sps_no_eval": round(progress["global_step"] / max(progress["train_time"], 1e-9), 1)}


def make_league(args):
    """The self-play pool of a tag run (None on cooperative envs)."""
    if args.env != "tag":
        return None
    return SelfPlayPool(args.env, args.pool_size, args.elo_episodes, lambda path: load_policy(path, args.env)[0])


def write_matrix(path_stem, row_labels, col_labels, m, title: str, episodes: int) -> None:
    """A predator win-rate matrix as CSV and heatmap PNG."""
    rows = [{"predators \\ prey": r, **{c: round(float(v), 4) for c, v in zip(col_labels, line)}}
            for r, line in zip(row_labels, m)]
    write_csv(Path(f"{path_stem}.csv"), rows)
    plot_matrix(row_labels, col_labels, m, Path(f"{path_stem}.png"), f"{title}\n(predator win-rate, {episodes} episodes per cell)")


def periodic_evaluation(args, run, progress: dict, policy, save, ckpt_path, league=None, final: bool = False):
    """One evaluation of the current policy as DESIGN.md defines it for the
    env: saves the step checkpoint with `save(path)`, then on spread scores
    the deterministic policy on the validation seeds; on tag freezes both
    teams into the pool, plays the Elo games and, every --matrix-interval env
    steps (and at the end), writes a snapshot-vs-snapshot win-rate matrix.
    Returns (metrics row without step columns, one-line message)."""
    t0 = time.perf_counter()
    save(ckpt_path)
    progress["evals"] = progress.get("evals", 0) + 1
    if league is None:
        res = evaluate(args.env, policy, "validation", args.eval_episodes)
        progress["eval_time"] += time.perf_counter() - t0
        return evaluation_row(progress, res), (f"eval {res['score']:7.2f} ± {res['ci']:.2f}  "
                                               f"(normalised {res['normalised']:.3f})")
    league.add(progress["global_step"], ckpt_path)
    res = league.evaluate(policy)
    matrices = progress.get("matrices", 0)
    if final or progress["global_step"] >= (matrices + 1) * args.matrix_interval:
        labels, m = league.matrix(args.matrix_episodes)
        write_matrix(run.path / f"win_matrix_step_{progress['global_step']:09d}", labels, labels, m,
                     f"pool at step {progress['global_step']}", args.matrix_episodes)
        progress["matrices"] = max(matrices + 1, progress["global_step"] // args.matrix_interval)
    progress["league"] = league.state_dict()
    progress["eval_time"] += time.perf_counter() - t0
    wall, sps = _row_speed(progress)
    row = {"wall_time": wall, **{k: v for k, v in res.items() if not k.endswith("_ci")}, **sps}
    return row, (f"Elo predators {res['predator_elo']:.0f} prey {res['prey_elo']:.0f}  win vs random "
                 f"{res['predator_win_vs_random']:.2f}/{res['prey_win_vs_random']:.2f}  exploitability "
                 f"{res['predator_exploitability']:.2f}/{res['prey_exploitability']:.2f}  "
                 f"contacts {res['contacts_self_play']:.2f}")


def finish_run(args, run: RunDir, progress: dict, refs: dict, interrupted, policy, title: str,
               extra: dict | None = None, panels=None, after_test=None, league=None) -> int:
    """What every training script does at the end: summary.json with the
    table metrics (DESIGN.md), the final held-out test evaluation unless the
    run was interrupted or --final-eval-episodes is 0, the training plot, and
    the exit code (128 + signal when stopped by one)."""
    if league is not None:
        return _finish_competitive(args, run, progress, interrupted, policy, title, extra, league)
    scores = [r["eval_score"] for r in run.rows]
    last5 = float(np.mean(scores[-5:])) if scores else float("nan")
    steps = progress["global_step"]
    summary = {
        "env": args.env, "seed": args.seed, "env_steps": steps, "interrupted": interrupted is not None, **(extra or {}),
        "last5_eval_mean": last5, "last5_eval_normalised": normalised(last5, refs),
        "final_eval_score": scores[-1] if scores else float("nan"),
        "final_eval_normalised": normalised(scores[-1], refs) if scores else float("nan"),
        "best_mean_score": progress["best_mean"], "best_single_eval_fitness": progress["best_single"],
        "train_mean_score": float(np.mean(progress["train_scores"][-100:])) if progress["train_scores"] else float("nan"),
        "eval_episodes": args.eval_episodes, "validation_references": refs,
        **_timing(progress),
    }
    if interrupted is None and args.final_eval_episodes > 0:
        final = evaluate(args.env, policy, "test", args.final_eval_episodes)
        summary.update({"test_score": final["score"], "test_ci": final["ci"], "test_normalised": final["normalised"],
                        "test_episodes": final["episodes"], "test_references": final["references"],
                        **(after_test() if after_test else {})})
        print(f"final test evaluation ({final['episodes']} episodes): {final['score']:.2f} ± {final['ci']:.2f}, "
              f"normalised {final['normalised']:.3f}")
    run.write_summary(summary)
    if run.rows:
        plot_training(run.rows, refs, run.path / "training_plot.png", title, **({"panels": panels} if panels else {}))
    return _closing(args, run, progress, interrupted)


def _closing(args, run, progress: dict, interrupted) -> int:
    """Where the run is, how to continue it, and the exit code (128 + signal when stopped by one)."""
    print(f"run directory: {run.path}\ncheckpoint: {run.ckpt / 'latest.pt'}")
    if interrupted is not None:
        print(f"stopped by {signal.Signals(interrupted).name} at step {progress['global_step']}; "
              f"continue with --run-name {args.run_name} --seed {args.seed} --resume", file=sys.stderr)
        return 128 + int(interrupted)
    return 0


def _timing(progress: dict) -> dict:
    steps, train_t, eval_t = progress["global_step"], progress["train_time"], progress["eval_time"]
    return {"wall_time": round(train_t + eval_t, 2), "train_time": round(train_t, 2), "eval_time": round(eval_t, 2),
            "throughput_with_eval": round(steps / max(train_t + eval_t, 1e-9), 1),
            "throughput_without_eval": round(steps / max(train_t, 1e-9), 1)}


COMPETITIVE_SUMMARY = ("predator_elo", "prey_elo", "predator_exploitability", "prey_exploitability",
                       "predator_win_vs_random", "prey_win_vs_random", "self_play_predator_win", "contacts_self_play")


def _finish_competitive(args, run, progress, interrupted, policy, title, extra, league) -> int:
    last = run.rows[-1] if run.rows else {}
    summary = {"env": args.env, "seed": args.seed, "env_steps": progress["global_step"],
               "interrupted": interrupted is not None, **(extra or {}),
               **{k: last.get(k, float("nan")) for k in COMPETITIVE_SUMMARY},
               "elo_episodes": args.elo_episodes, "pool_size": args.pool_size, "pool": last.get("pool", ""),
               **_timing(progress)}
    if interrupted is None and args.final_eval_episodes > 0:
        res = league.evaluate(policy, split="test", episodes=args.final_eval_episodes, update=False)
        summary.update({f"test_{k}": v for k, v in res.items() if k not in ("predator_elo", "prey_elo", "pool")})
        print(f"final test evaluation ({args.final_eval_episodes} episodes per pairing): predator win-rate vs random "
              f"{res['predator_win_vs_random']:.2f} ± {res['predator_win_vs_random_ci']:.2f}, prey "
              f"{res['prey_win_vs_random']:.2f} ± {res['prey_win_vs_random_ci']:.2f}; exploitability "
              f"{res['predator_exploitability']:.2f} / {res['prey_exploitability']:.2f}")
    run.write_summary(summary)
    if run.rows:
        plot_competitive(run.rows, run.path / "training_plot.png", title)
    return _closing(args, run, progress, interrupted)


def find_checkpoint(path, algo_dirs, root="checkpoints") -> Path:
    if path is not None:
        return Path(path)
    found = [p for algo in algo_dirs for p in Path(root).glob(f"*/{algo}/*/latest.pt")]
    if not found:
        raise UsageError(f"no checkpoint under {root}/*/{{{','.join(algo_dirs)}}}/; train one first or pass --checkpoint")
    newest = max(found, key=lambda p: p.stat().st_mtime)
    print(f"using the newest checkpoint: {newest}", file=sys.stderr)
    return newest


def has_display() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def evaluate_and_render(args, env_name: str, policy, label: str, ckpt_path: Path) -> dict:
    """What every eval_*.py prints and renders for a trained policy."""
    if args.render == "human" and not has_display():
        raise UsageError("no display for --render human (DISPLAY is not set); use --render gif")
    if env_name == "tag":
        return _evaluate_and_render_tag(args, policy, label, ckpt_path)
    if args.opponent is not None:
        raise UsageError(f"--opponent is for tag checkpoints; this one is trained on {env_name!r}")
    res = evaluate(env_name, policy, args.split, args.episodes)
    refs = res["references"]
    print(f"{label} on {env_name}: mean score {res['score']:.2f} ± {res['ci']:.2f} (95% CI, {res['episodes']} episodes, "
          f"{args.split} seeds)")
    print(f"normalised score {res['normalised']:.3f}  (0 = random {refs['random']:.2f}, 1 = oracle {refs.get('oracle', float('nan')):.2f})")
    if args.render:
        render_env = make_env(env_name, render_mode="rgb_array" if args.render == "gif" else "human")
        seeds = eval_seeds(args.split, args.render_episodes)
        out = run_episodes(env_name, policy, seeds, render_env=render_env)
        render_env.close()
        if args.render == "gif":
            path = Path(args.out) if args.out else ckpt_path.with_suffix(".gif")
            save_gif(out["frames"], path, args.fps)
            print(f"rendered {len(seeds)} episode(s), scores {', '.join(f'{s:.1f}' for s in out['scores'])}: {path}")
        res["render_scores"] = out["scores"]
    return res


def _evaluate_and_render_tag(args, policy, label: str, ckpt_path: Path) -> dict:
    """eval_*.py on a tag checkpoint: win-rates and contacts of both teams
    against random, against themselves and against an --opponent checkpoint."""
    seeds = eval_seeds(args.split, args.episodes)
    opponents = [("random", RandomPolicy("tag"))]  # play() starts it afresh in every pairing, as the run's test games do
    if args.opponent is not None:
        opponents.append((f"opponent {args.opponent}", load_policy(args.opponent, "tag")[0]))
    print(f"{label} on tag: {args.episodes} episodes per pairing ({args.split} seeds); a predator win = at least one "
          f"predator-prey contact")
    res = {}
    for name, opp in opponents + [("itself", policy)]:
        as_pred, as_prey = play("tag", policy, opp, seeds), play("tag", opp, policy, seeds)
        p, pci = rate_ci(as_pred["wins"])
        q, qci = rate_ci(1.0 - as_prey["wins"])
        res[name] = {"predator_win": p, "prey_win": q, "contacts_as_predators": float(as_pred["contacts"].mean()),
                     "contacts_as_prey": float(as_prey["contacts"].mean())}
        print(f"  vs {name}: predators win {p:.2f} ± {pci:.2f} (contacts/episode {as_pred['contacts'].mean():.2f}), "
              f"prey win {q:.2f} ± {qci:.2f} (contacts/episode {as_prey['contacts'].mean():.2f})")
    if args.render:
        render_env = make_env("tag", render_mode="rgb_array" if args.render == "gif" else "human")
        prey = opponents[-1][1] if args.opponent is not None else policy
        out = run_episodes("tag", combine("tag", policy, prey), eval_seeds(args.split, args.render_episodes),
                           render_env=render_env)
        render_env.close()
        if args.render == "gif":
            path = Path(args.out) if args.out else ckpt_path.with_suffix(".gif")
            save_gif(out["frames"], path, args.fps)
            print(f"rendered {args.render_episodes} episode(s), contacts {', '.join(str(c) for c in out['contacts'])}: {path}")
    return res
