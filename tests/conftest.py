"""Shared test helpers: paths, running scripts, the one-line-error check, and
scripted tag teams (policies that read the world state) used only by tests."""

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

from memeplex.cli import run_cli
from memeplex.envs import spec
from memeplex.protocol import force_to_action

ROOT = Path(__file__).resolve().parent.parent


# Tiny budgets for smoke runs: the last value of an option wins, so these may follow a command's own options.
TINY_PPO = ["--max-steps", "1024", "--num-envs", "2", "--rollout-length", "64", "--eval-interval", "512",
            "--eval-episodes", "2", "--final-eval-episodes", "2", "--update-epochs", "2", "--no-progress"]  # fmt: skip
TINY_MADDPG = ["--max-steps", "2000", "--evo-steps", "500", "--population-size", "2", "--num-envs", "4",
               "--learning-delay", "100", "--batch-size", "32", "--eval-interval", "1000", "--eval-episodes", "2",
               "--final-eval-episodes", "2", "--fitness-episodes", "2", "--no-progress"]  # fmt: skip
TINY_TAG_EXTRA = ["--elo-episodes", "2", "--matrix-interval", "1024", "--matrix-episodes", "1", "--pool-size", "2"]


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
        self.agents, self.gain = spec.env_info(name)[0], gain

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
        self.agents, _, self.act_dims = spec.env_info(name)

    def __call__(self, obs, state):
        n = len(next(iter(obs.values())))
        return {a: np.zeros((n, self.act_dims[a]), np.float32) for a in self.agents}


def cli(main, argv, capsys):
    """A script's main through run_cli, as `python script.py` runs it: (exit code, stderr) for
    conftest.assert_clean_error."""
    capsys.readouterr()
    code = run_cli(main, argv)
    return types.SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)
