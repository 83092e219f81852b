"""Shared test helpers: paths, running scripts, the one-line-error check, and
scripted tag teams (policies that read the world state) used only by tests."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

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
                        self.gain * self.direction(a, world)
                    )
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
        away = min(
            (agent.state.p_pos - p.state.p_pos for p in world.agents if p.adversary),
            key=lambda d: float(np.linalg.norm(d)),
        )
        return away / max(float(np.linalg.norm(away)), 1e-6)


class StationaryPolicy:
    """Every agent does nothing (zero force)."""

    def __init__(self, name: str):
        self.agents, _, self.act_dims = harness.env_info(name)

    def __call__(self, obs, worlds):
        n = len(next(iter(obs.values())))
        return {a: np.zeros((n, self.act_dims[a]), np.float32) for a in self.agents}
