"""The batched scenarios by name: make_world("spread" | "tag" | "reference", num_envs, **env_kwargs).

A new scenario is a new module with a `BatchedWorld` subclass (see spread.py,
tag.py, reference.py) and one entry in SCENARIOS."""

from __future__ import annotations

from memeplex.envs.reference import Reference
from memeplex.envs.spread import Spread
from memeplex.envs.tag import Tag
from memeplex.envs.world import BatchedWorld

SCENARIOS = {"spread": Spread, "tag": Tag, "reference": Reference}


def make_world(name: str, num_envs: int, **env_kwargs) -> BatchedWorld:
    """E = num_envs copies of scenario `name`, env_kwargs as for mpe2's `parallel_env`."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown env {name!r}; choose from {', '.join(SCENARIOS)}")
    return SCENARIOS[name](num_envs, **env_kwargs)
