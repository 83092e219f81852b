"""Env stepping, Method I training and evaluation episodes: mpe2 vs batched, side by side in one process.

    python benchmarks/throughput.py --out results/benchmarks/throughput.json   # spread and tag, 3 rounds
    python benchmarks/throughput.py --envs spread --rounds 2 --train-steps 20000
    python benchmarks/throughput.py --envs spread --maddpg-steps 20000 --out results/benchmarks/throughput_maddpg.json

Three measurements per env, each on both backends (the `backend` argument of the env and protocol functions):
* env: the training VecEnv stepped with uniform random actions (env steps/s);
* train: the real training loop (train_method_i.main, default hyperparameters, 1 torch thread) with
  evaluation pushed past the budget, timed without evaluation (summary.json's throughput_without_eval);
* eval: deterministic evaluation episodes of a Method I policy on the validation seeds (episodes/s);
* maddpg (with --maddpg-steps N): MADDPG's population training, fitness games included (env steps/s).
Every round runs each measurement once per backend, alternating, so both see the same machine state;
the medians, their ratio (batched / mpe2) and the per-round ratios are printed and, with --out, saved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import train_method_i  # noqa: E402
from memeplex import cli, files, protocol, rundir  # noqa: E402
from memeplex.envs import spec, vec  # noqa: E402
from method_i import LAIPPO  # noqa: E402


def env_sps(env: str, backend: str, num_envs: int, steps: int) -> float:
    envs = vec.make_vec_env(env, num_envs, seed=0, backend=backend)
    policy = protocol.RandomPolicy(env)
    obs = envs.reset()
    t0 = time.perf_counter()
    for _ in range(steps // num_envs):
        obs, *_ = envs.step(policy(obs, None))
    return (steps // num_envs) * num_envs / (time.perf_counter() - t0)


def train_sps(env: str, backend: str, num_envs: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "--env",
            env,
            "--backend",
            backend,
            "--max-steps",
            str(steps),
            "--num-envs",
            str(num_envs),
            "--eval-interval",
            str(10**9),
            "--eval-episodes",
            "2",
            "--final-eval-episodes",
            "0",
            "--results-dir",
            tmp,
            "--checkpoint-dir",
            tmp,
            "--run-name",
            "bench",
            "--no-progress",
        ]
        if env == "tag":
            argv += ["--elo-episodes", "1", "--matrix-episodes", "1"]
        assert train_method_i.main(argv) == 0
        return json.loads((Path(tmp) / env / "method_i" / "bench_s1" / "summary.json").read_text())[
            "throughput_without_eval"
        ]


def maddpg_sps(env: str, backend: str, num_envs: int, steps: int) -> float:
    """MADDPG (AgileRL, population 4) training throughput: env steps incl. fitness games per second."""
    import train_maddpg

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--env", env, "--backend", backend, "--max-steps", str(steps), "--evo-steps", str(steps // 8),
                "--num-envs", str(num_envs), "--eval-interval", str(10**9), "--eval-episodes", "2",
                "--final-eval-episodes", "0", "--results-dir", tmp, "--checkpoint-dir", tmp, "--run-name", "bench",
                "--no-progress"]  # fmt: skip
        assert train_maddpg.main(argv) == 0
        return json.loads((Path(tmp) / env / "maddpg" / "bench_s1" / "summary.json").read_text())[
            "throughput_without_eval"
        ]


def eval_eps(env: str, backend: str, episodes: int) -> float:
    agents, obs_dims, act_dims = spec.env_info(env)
    learner = LAIPPO(agents, obs_dims, act_dims, seed=0)
    policy = lambda obs, state: learner.act(obs, deterministic=True)
    t0 = time.perf_counter()
    protocol.run_episodes(env, policy, protocol.eval_seeds("validation", episodes), backend=backend)
    return episodes / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", choices=sorted(spec.ENVS), default=["spread", "tag"])
    p.add_argument("--num-envs", type=cli.positive(int), default=8, help="training envs (the default of the scripts)")
    p.add_argument("--env-steps", type=cli.positive(int), default=20_000, help="env steps per env-stepping round")
    p.add_argument("--train-steps", type=cli.positive(int), default=30_720, help="env steps per training round")
    p.add_argument("--eval-episodes", type=cli.positive(int), default=100, help="episodes per evaluation round")
    p.add_argument("--rounds", type=cli.positive(int), default=3)
    p.add_argument(
        "--maddpg-steps",
        type=int,
        default=0,
        help="also time MADDPG (population 4) training for this many env steps per round (0: skip)",
    )
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    measures = {
        "env": lambda env, b: env_sps(env, b, args.num_envs, args.env_steps),
        "train": lambda env, b: train_sps(env, b, args.num_envs, args.train_steps),
        "eval": lambda env, b: eval_eps(env, b, args.eval_episodes),
    }
    if args.maddpg_steps:
        measures["maddpg"] = lambda env, b: maddpg_sps(env, b, args.num_envs, args.maddpg_steps)
    result = {
        "args": vars(args),
        "machine": rundir.cpu_info(),
        "load_average_1min": {"start": round(os.getloadavg()[0], 2)},  # other work on the machine
        "units": {"env": "env steps/s", "train": "env steps/s", "eval": "episodes/s", "maddpg": "env steps/s"},
        "results": {},
    }
    for env in args.envs:
        for name, measure in measures.items():
            rounds = {b: [] for b in vec.BACKENDS}
            for _ in range(args.rounds):
                for b in ("mpe2", "batched"):  # alternate: both see the same machine state
                    rounds[b].append(round(measure(env, b), 1))
            ratios = [round(x / y, 2) for x, y in zip(rounds["batched"], rounds["mpe2"])]
            med = {b: statistics.median(v) for b, v in rounds.items()}
            result["results"][f"{env}/{name}"] = {
                "rounds": rounds,
                "median": med,
                "ratio": round(med["batched"] / med["mpe2"], 2),
                "round_ratios": ratios,
            }
            print(
                f"{env:6s} {name:5s}: mpe2 {med['mpe2']:>9,.0f}  batched {med['batched']:>9,.0f} "
                f"{result['units'][name]}  ratio {med['batched'] / med['mpe2']:.2f} "
                f"(rounds {min(ratios)}-{max(ratios)})"
            )
    result["load_average_1min"]["end"] = round(os.getloadavg()[0], 2)
    if args.out:
        files.write_json(args.out, result)
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
