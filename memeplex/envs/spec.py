"""The environments a run can play, by name, and what every script reads off them.

"spread" (simple_spread_v3, 3 agents), "spread-N" (N agents and N landmarks),
"tag" (simple_tag_v3: 3 predators, 1 prey, 2 obstacles) and "reference"
(simple_reference_v3: 2 agents who must tell each other their targets), all
with continuous actions and 25-step episodes; their agents, observation and action
sizes and teams; one mpe2 env and its parallel step without the AEC round
trip; and the reset seeds of training envs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from memeplex.errors import UsageError

# Training seeds are >= 2**32; evaluation seeds (protocol.py) are < 2**32, so they never overlap.
MAX_SEED = 1_000_000  # run seeds are in [0, MAX_SEED)
MAX_ENVS = 4096


def train_env_seed(seed: int, env_index: int, session: int = 0) -> int:
    """Reset seed of training env `env_index` of run `seed`; a resumed run
    starts a new `session` so its episodes differ from the first session's.
    Every (seed, env, session) gets its own seed, and all are >= 2**32."""
    assert 0 <= seed < MAX_SEED and 0 <= env_index < MAX_ENVS and session >= 0
    return 2**32 * (1 + session) + seed * MAX_ENVS + env_index


@dataclass(frozen=True)
class EnvSpec:
    """An env by name: its scenario `family` ("spread", "tag" or "reference", whatever its size),
    the mpe2 module that makes it and that module's keyword arguments."""

    name: str
    family: str  # "spread", "tag" or "reference": the scenario, whatever its size
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
    "reference": EnvSpec(
        "reference",
        "reference",
        "mpe2.simple_reference_v3",
        (("local_ratio", 0.5), ("max_cycles", 25), ("continuous_actions", True)),
    ),
}
SPREAD_AGENTS = 3  # simple_spread_v3's team size unless --num-agents says otherwise


def env_spec(name: str) -> EnvSpec:
    """The spec of "spread", "tag", "reference" or "spread-N" (simple_spread_v3 with N agents and N landmarks)."""
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
    """One mpe2 env (PettingZoo parallel API) of env `name`."""
    if render_mode is not None:
        env_info(name)  # cached from here on: closing its env quits pygame, which would break this env's font
    return env_spec(name).make(render_mode)


def step_env(env, actions: dict):
    """One parallel step of an mpe2 env: what its parallel API does, without
    the AEC round trip through four wrappers (the agent-by-agent `step`, an
    unused `observe` per agent, attribute look-ups through each wrapper), which
    costs about a third of the env's time. The world, the rewards and the
    observations are the same bit for bit (tests/test_envs.py checks it
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
    """Team split: spread and reference are one cooperative team; tag is predators vs prey."""
    agents = env_info(name)[0]
    if name == "tag":
        return {
            "predator": [a for a in agents if a.startswith("adversary")],
            "prey": [a for a in agents if not a.startswith("adversary")],
        }
    return {"team": agents}
