"""The pool sets of finished tag runs that evaluate_fixed_pool.py and cross_play_matrix.py read:
their command line and where each algorithm's run and its snapshots are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memeplex import cli
from memeplex.cli import positive
from memeplex.errors import UsageError
from memeplex.files import check_writable

# The run each pool set reads, per algorithm. wallclock: Method I and IPPO trained for MADDPG's wall time
# (--max-time), against MADDPG's own 200k-step run, which sets that time.
POOL_SET_RUN_NAMES = {
    "step": {"maddpg": "selfplay", "method_i": "selfplay", "ppo": "selfplay"},
    "wallclock": {"maddpg": "selfplay", "method_i": "selfplay-wallclock", "ppo": "selfplay-wallclock"},
}
COMPETITIVE_ALGOS = ("maddpg", "method_i", "ppo")
TRAIN_SCRIPTS = {"method_i": "train_method_i.py", "ppo": "train_ppo.py", "maddpg": "train_maddpg.py"}


def add_pool_set_arguments(p) -> None:
    """--pool-set, --algos, --run-name, --seed, --last, --episodes and the directories."""
    p.add_argument(
        "--pool-set",
        choices=sorted(POOL_SET_RUN_NAMES),
        default="step",
        help="step: the 200k-step self-play runs (run name 'selfplay'); wallclock: Method I and IPPO runs given "
        "MADDPG's wall time ('selfplay-wallclock') with MADDPG's 'selfplay' run",
    )
    p.add_argument(
        "--algos", nargs="+", choices=COMPETITIVE_ALGOS, default=list(COMPETITIVE_ALGOS), help="algorithms to include"
    )
    p.add_argument("--run-name", default=None, help="read this run name for every algorithm instead")
    p.add_argument("--seed", type=int, default=1, help="seed of the runs to read")
    p.add_argument("--last", type=positive(int), default=5, help="snapshots per run: its last N step checkpoints")
    p.add_argument(
        "--episodes",
        type=positive(int),
        default=100,
        help="episodes per pairing (100 gives a 95%% CI within +-0.1), on the held-out test seeds",
    )
    p.add_argument("--checkpoint-dir", default="checkpoints", help="root of the runs' checkpoints")
    p.add_argument("--results-dir", default="results", help="where the tables and plots go (under <dir>/tag/)")


def pool_set_cli(description: str, argv) -> tuple:
    """What evaluate_fixed_pool.py and cross_play_matrix.py start with: (args, runs, missing)."""
    import torch

    p = cli.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pool_set_arguments(p)
    args = p.parse_args(argv)
    check_writable(Path(args.results_dir) / "tag", "--results-dir")
    torch.set_num_threads(1)
    # what names the outputs: a pool set of the published runs, or your own --run-name (never the published files)
    args.label = args.pool_set if args.run_name is None else f"run-{args.run_name}"
    return (args, *pool_set_runs(args))


def pool_set_runs(args) -> tuple:
    """({algo: [its last --last step checkpoints]}, [one line per missing run])."""
    found, missing = {}, []
    for algo in args.algos:
        run_name = args.run_name or POOL_SET_RUN_NAMES[args.pool_set][algo]
        d = Path(args.checkpoint_dir) / "tag" / algo / f"{run_name}_s{args.seed}"
        steps = sorted(d.glob("step_*.pt"))
        if not steps:
            committed = (Path(args.results_dir) / "tag" / algo / d.name / "config.json").exists()
            fix = (
                f"its checkpoints are not in the repository: train your own with python {TRAIN_SCRIPTS[algo]} "
                f"--env tag --run-name NAME --seed {args.seed} and pass --run-name NAME"
                if committed
                else f"train it: python {TRAIN_SCRIPTS[algo]} --env tag --run-name {run_name} --seed {args.seed}"
                + (" --max-time SECONDS" if run_name.endswith("wallclock") else "")
            )
            missing.append(f"{algo}: no step_*.pt in {d} ({fix})")
            continue
        found[algo] = steps[-args.last :]
    for line in missing:
        print(f"missing run: {line}", file=sys.stderr)
    if not found:
        raise UsageError(
            f"no tag runs for pool set {args.pool_set!r} under {args.checkpoint_dir}/tag/ (seed {args.seed})"
        )
    return found, missing
