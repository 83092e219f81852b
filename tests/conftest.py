"""Shared test helpers: paths, running scripts, the one-line-error check, and
scripted tag teams (policies that read the world state) used only by tests."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import harness
from harness import force_to_action

ROOT = Path(__file__).resolve().parent.parent


def dirs(tmp_path):
    return ["--results-dir", str(tmp_path / "results"), "--checkpoint-dir", str(tmp_path / "checkpoints")]


def run_script(*args, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def assert_clean_error(proc, pattern):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:") or "error:" in line]
    assert lines and pattern in proc.stderr, proc.stderr


class _ScriptedTeam:
    """A scripted tag team reading the world state (arrays [E, entities, 2]): every agent
    of the team (predators if `adversary`, else the prey) applies `gain * direction`."""

    adversary = True

    def __init__(self, name: str = "tag", gain: float = 3.0):
        self.agents, self.gain = harness.env_info(name)[0], gain

    def __call__(self, obs, state):
        pos = state.pos[:, state.agent_slice]
        predators, prey = pos[:, state.adversary], pos[:, ~state.adversary]  # [E, P, 2], [E, Q, 2]
        mine = np.flatnonzero(state.adversary == self.adversary)
        return {self.agents[k]: force_to_action(self.gain * self.direction(pos[:, k], predators, prey)) for k in mine}


class ChasingPredators(_ScriptedTeam):
    """Scripted predators that push straight at the (first) prey."""

    def direction(self, me, predators, prey):
        return prey[:, 0] - me


class FleeingPrey(_ScriptedTeam):
    """Scripted prey that runs straight away from the nearest predator."""

    adversary = False

    def direction(self, me, predators, prey):
        away = me[:, None] - predators  # [E, P, 2]
        nearest = away[np.arange(len(me)), np.linalg.norm(away, axis=-1).argmin(1)]
        return nearest / np.maximum(np.linalg.norm(nearest, axis=-1, keepdims=True), 1e-6)


class StationaryPolicy:
    """Every agent does nothing (zero force)."""

    def __init__(self, name: str):
        self.agents, _, self.act_dims = harness.env_info(name)

    def __call__(self, obs, state):
        n = len(next(iter(obs.values())))
        return {a: np.zeros((n, self.act_dims[a]), np.float32) for a in self.agents}


@pytest.fixture(autouse=True)
def batched_backend():
    """Every test starts on the default env backend (a script's --backend sets it process-wide)."""
    harness.use_backend("batched")
    yield
    harness.use_backend("batched")
