"""Throughput of Method I training vs. raw env stepping, side by side in one process.

    python benchmarks/throughput.py                 # spread, 8 envs, 3 rounds of 30k steps
    python benchmarks/throughput.py --algo ppo --steps 20000 --rounds 2

"raw" steps the same in-process vectorised envs (harness.VecEnv) with uniform
random actions; "train" is the real training loop (train_method_i.main) with
evaluation pushed past the budget, timed without evaluation (summary.json's
throughput_without_eval).  Rounds alternate raw/train so that both see the same
machine state; the medians and their ratio are printed and, with --out, saved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import harness  # noqa: E402
import runs  # noqa: E402
import train_method_i  # noqa: E402


def raw_env_sps(env: str, num_envs: int, steps: int, seed: int = 0) -> float:
    envs = harness.VecEnv(env, num_envs, seed)
    policy = harness.RandomPolicy(env, seed)
    obs = envs.reset()
    t0 = time.perf_counter()
    for _ in range(steps // num_envs):
        obs, *_ = envs.step(policy(obs, None))
    return (steps // num_envs) * num_envs / (time.perf_counter() - t0)


def train_sps(env: str, algo: str, num_envs: int, steps: int, threads: int, extra: list) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "--env",
            env,
            "--max-steps",
            str(steps),
            "--num-envs",
            str(num_envs),
            "--eval-interval",
            str(10**9),
            "--eval-episodes",
            "2",
            "--final-eval-episodes",
            "2",
            "--results-dir",
            tmp,
            "--checkpoint-dir",
            tmp,
            "--run-name",
            "bench",
            "--no-progress",
            "--torch-threads",
            str(threads),
            *extra,
        ]
        train_method_i.main(argv, algo=algo)
        summary = json.loads(next(Path(tmp).rglob("summary.json")).read_text())
    return summary["throughput_without_eval"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="spread", choices=sorted(harness.ENVS))
    p.add_argument("--algo", default="method_i", choices=["method_i", "ppo"])
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=30_000, help="env steps per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1], help="torch thread counts to compare")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args, extra = p.parse_known_args(argv)
    raw, train = [], {t: [] for t in args.threads}
    for r in range(args.rounds):
        raw.append(raw_env_sps(args.env, args.num_envs, args.steps, seed=r))
        for t in args.threads:
            train[t].append(train_sps(args.env, args.algo, args.num_envs, args.steps, t, extra))
        print(
            f"round {r + 1}: raw {raw[-1]:.0f} env steps/s, "
            + ", ".join(f"train ({t} thread{'s' * (t > 1)}) {train[t][-1]:.0f}" for t in args.threads),
            flush=True,
        )
    raw_med = statistics.median(raw)
    result = {
        "env": args.env,
        "algo": args.algo,
        "num_envs": args.num_envs,
        "steps": args.steps,
        "rounds": args.rounds,
        "extra_args": extra,
        "raw_env_sps": raw,
        "raw_env_sps_median": raw_med,
        "train_sps": {str(t): v for t, v in train.items()},
        "train_sps_median": {str(t): statistics.median(v) for t, v in train.items()},
        "ratio": {str(t): statistics.median(v) / raw_med for t, v in train.items()},
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for t in args.threads:
        print(
            f"{args.algo} on {args.env}, torch threads {t}: train {result['train_sps_median'][str(t)]:.0f} / "
            f"raw {raw_med:.0f} env steps/s = ratio {result['ratio'][str(t)]:.2f}"
        )
    if args.out:
        runs.write_json(args.out, result)


if __name__ == "__main__":
    main()
