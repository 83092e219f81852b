"""How reliably the best-response recipe finds a known exploit: IPPO predators trained with
memeplex.suites.BEST_RESPONSE_FLAGS against a frozen stationary prey (save_stationary_prey),
one run per tuning seed, beside random predators against the same prey on the same test episodes.

    python benchmarks/best_response.py --seeds 101 110    # tuning seeds 101-110, on this CPU's kernels
    ATEN_CPU_CAPABILITY=avx2 NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" \\
        python benchmarks/best_response.py --seeds 101 110    # the same with x86-64 kernels restricted to AVX2

Each invocation stores its rows under its torch CPU capability (AVX512, AVX2, ...) in --out
(results/tag/best_response_recipe/recipe.json), keeping the other capabilities' rows if they were made
with the same recipe; memeplex.reports.benchmarks.best_response_recipe_report renders the table (docs/best_response.md).
Runs are written under --work-dir (a temporary directory unless given), one at a time, 1 torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import train_ppo  # noqa: E402
from memeplex import checkpoints, cli, competitive, errors, files, protocol  # noqa: E402
from memeplex.envs import spec  # noqa: E402
from memeplex.suites import BEST_RESPONSE_FLAGS  # noqa: E402
from method_i import LAIPPO  # noqa: E402

MARGIN = 0.3  # a responder passes if its test win-rate beats random predators' by at least this (docs/best_response.md)
TEST_EPISODES = 100
EVAL_INTERVAL = 25_600  # env steps between validation evaluations (and checkpoints)
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES")


def save_stationary_prey(path) -> None:
    """A tag checkpoint (LA-IPPO) whose prey outputs zero actions, so it never moves: the frozen team
    with a known exploit (walk to it) that the best-response recipe is checked against."""
    learner = LAIPPO(*spec.env_info("tag"), seed=0)
    prey = next(g for g in learner.groups if spec.teams("tag")["prey"][0] in g.agent_ids)
    with torch.no_grad():
        prey.head_w.zero_()
        prey.head_b.zero_()
    state = {"format": checkpoints.RUN_FORMAT, "algo": "method_i", "env": "tag", "learner": learner.state_dict(),
             "progress": {"global_step": 0}, "args": {}}  # fmt: skip
    checkpoints.save_checkpoint(state, path)


def machine() -> dict:
    from numpy._core._multiarray_umath import __cpu_features__

    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.processor())
    return {
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy_x86_v4": bool(__cpu_features__.get("X86_V4", False)),
        "cpu": cpu,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "environment": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
    }


def train_responder(opponent: Path, seed: int, flags: list, work: Path) -> dict:
    """One best-response run (train_ppo.py --opponent) with the recipe; its summary.json."""
    argv = ["--env", "tag", "--opponent", str(opponent), "--team", "predator", *flags, "--seed", str(seed),
            "--eval-interval", str(EVAL_INTERVAL), "--final-eval-episodes", str(TEST_EPISODES), "--run-name", "br",
            "--no-progress", "--torch-threads", "1",
            "--results-dir", str(work / "results"), "--checkpoint-dir", str(work / "checkpoints")]  # fmt: skip
    if train_ppo.main(argv) != 0:
        raise errors.UsageError(f"train_ppo.py {shlex.join(argv)} failed")
    return json.loads((work / f"results/tag/ppo/br_s{seed}/summary.json").read_text())


def random_win_rate(opponent: Path) -> float:
    """Random predators against the frozen team on the test episodes a responder is scored on."""
    frozen = competitive.BestResponse("tag", "predator", checkpoints.load_policy(opponent, "tag")[0], TEST_EPISODES)
    return frozen.evaluate(protocol.RandomPolicy("tag"), split="test")["best_response_win_rate"]


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs=2, default=(101, 110), metavar=("FIRST", "LAST"),
                   help="tuning seeds FIRST..LAST (101-199; reporting seeds never inform a choice)")  # fmt: skip
    p.add_argument("--flags", default=shlex.join(BEST_RESPONSE_FLAGS),
                   help="the recipe's train_ppo.py flags (default: memeplex.suites.BEST_RESPONSE_FLAGS)")  # fmt: skip
    p.add_argument("--out", type=Path, default=files.ROOT / "results/tag/best_response_recipe/recipe.json")
    p.add_argument("--work-dir", type=Path, default=None, help="where the runs go (default: a temporary directory)")
    args = p.parse_args(argv)
    first, last = args.seeds
    if not 101 <= first <= last <= 199:
        raise errors.UsageError(f"--seeds {first} {last}: tuning seeds are 101-199")
    flags = shlex.split(args.flags)
    try:  # read before training: the other kernel levels' rows are kept
        data = json.loads(args.out.read_text()) if args.out.exists() else {}
    except (OSError, ValueError) as exc:
        raise errors.UsageError(f"--out {args.out}: cannot read it ({exc})") from exc
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        opponent = work / "stationary_prey.pt"
        save_stationary_prey(opponent)
        random_rate = random_win_rate(opponent)
        rows = []
        for seed in range(first, last + 1):
            s = train_responder(opponent, seed, flags, work)
            rows.append({"seed": seed, "win_rate": s["test_best_response_win_rate"],
                         "wall_time": s["wall_time"]})  # fmt: skip
            print(f"seed {seed}: {rows[-1]['win_rate']:.2f} (random {random_rate:.2f})", flush=True)
    level = machine()
    if data.get("recipe") != flags:
        data = {"recipe": flags, "margin": MARGIN, "test_episodes": TEST_EPISODES, "levels": {}}
    data["levels"][level["torch_capability"]] = {"machine": level, "random_win_rate": random_rate, "runs": rows}
    files.atomic_write(args.out, json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out} ({level['torch_capability']})")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
