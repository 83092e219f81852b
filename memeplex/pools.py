"""The pool sets of finished tag runs that evaluate_fixed_pool.py and cross_play_matrix.py read:
their command line and where each algorithm's run and its snapshots are."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from memeplex import cli
from memeplex.cli import positive
from memeplex.errors import UsageError
from memeplex.files import check_writable
from memeplex.suites import SELFPLAY_V2_CPU_RUN, SELFPLAY_V2_RUN, TRAIN_SCRIPTS

# The run each pool set reads, per algorithm. wallclock: Method I and IPPO trained for MADDPG's wall time
# (--max-time), against MADDPG's own 200k-step run, which sets that time.
POOL_SET_RUN_NAMES = {
    "step": {"maddpg": "selfplay", "method_i": "selfplay", "ppo": "selfplay", "mappo": "selfplay"},
    "wallclock": {
        "maddpg": "selfplay",
        "method_i": "selfplay-wallclock",
        "ppo": "selfplay-wallclock",
        "mappo": "selfplay-wallclock",
    },
    # results v2 (run_experiments.py --suite tag): every algorithm at 200k env steps; Method I, IPPO and MAPPO for
    # MADDPG's median CPU time (--max-cpu-time) against MADDPG's 200k-step run
    "v2": {algo: SELFPLAY_V2_RUN for algo in ("maddpg", "method_i", "ppo", "mappo")},
    "v2-cpu": {"maddpg": SELFPLAY_V2_RUN, **{algo: SELFPLAY_V2_CPU_RUN for algo in ("method_i", "ppo", "mappo")}},
}
COMPETITIVE_ALGOS = ("maddpg", "method_i", "ppo", "mappo")
DEFAULT_ALGOS = ("maddpg", "method_i", "ppo")  # the published pool sets' (no MAPPO runs among them yet)


@dataclass(frozen=True)
class PoolSetOptions:
    """The command line of evaluate_fixed_pool.py and cross_play_matrix.py (add_pool_set_arguments)."""

    pool_set: str
    algos: list
    run_name: list | None
    """read these run names for every algorithm instead of the pool set's; with several, each (algorithm, run
    name) is one contestant, named <algo>-<run name>"""
    seed: int
    last: int
    """snapshots per run"""
    episodes: int
    """episodes per pairing"""
    split: str
    """the episodes' seeds: "test" (the held-out seeds, for reporting) or "validation" (for choosing)"""
    checkpoint_dir: str
    results_dir: str
    label: str
    """what names the outputs: the pool set of the published runs, or run-<run-name> for your own"""


def add_pool_set_arguments(p) -> None:
    """--pool-set, --algos, --run-name, --seed, --last, --episodes and the directories."""
    p.add_argument(
        "--pool-set",
        choices=sorted(POOL_SET_RUN_NAMES),
        default="step",
        help="step: the 200k-step self-play runs (run name 'selfplay'); wallclock: Method I and IPPO runs given "
        "MADDPG's wall time ('selfplay-wallclock') with MADDPG's 'selfplay' run; v2, v2-cpu: the same for the second "
        "result set ('selfplay-v2', and 'selfplay-v2-cpu' for MADDPG's CPU time), MAPPO among them",
    )
    p.add_argument(
        "--algos", nargs="+", choices=COMPETITIVE_ALGOS, default=list(DEFAULT_ALGOS), help="algorithms to include"
    )
    p.add_argument(
        "--run-name",
        nargs="+",
        default=None,
        help="read this run name for every algorithm instead; with several names, each algorithm's run of each "
        "name is one contestant (<algo>-<run name>), e.g. two settings of one algorithm",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the runs to read")
    p.add_argument("--last", type=positive(int), default=5, help="snapshots per run: its last N step checkpoints")
    p.add_argument(
        "--episodes",
        type=positive(int),
        default=100,
        help="episodes per pairing (100 gives a 95%% CI within +-0.1)",
    )
    p.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="the episodes' seeds: the held-out test seeds (reporting), or the validation seeds (choosing between "
        "settings, so that a choice never sees the test seeds)",
    )
    p.add_argument("--checkpoint-dir", default="checkpoints", help="root of the runs' checkpoints")
    p.add_argument("--results-dir", default="results", help="where the tables and plots go (under <dir>/tag/)")


def pool_set_cli(description: str, argv) -> tuple:
    """What evaluate_fixed_pool.py and cross_play_matrix.py start with: (PoolSetOptions, runs, missing)."""
    import torch

    p = cli.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pool_set_arguments(p)
    args = p.parse_args(argv)
    check_writable(Path(args.results_dir) / "tag", "--results-dir")
    torch.set_num_threads(1)
    # what names the outputs: a pool set of the published runs, or your own --run-name (never the published files),
    # and the split unless it is the test seeds
    label = args.pool_set if args.run_name is None else "run-" + "+".join(args.run_name)
    label += "" if args.split == "test" else f"_{args.split}"
    opts = PoolSetOptions(**vars(args), label=label)
    return (opts, *pool_set_runs(opts))


def pool_set_runs(opts: PoolSetOptions) -> tuple:
    """({contestant: [its last --last step checkpoints]}, [one line per missing run]). A contestant is an
    algorithm, or <algo>-<run name> when --run-name names several runs."""
    found, missing = {}, []
    names = opts.run_name or [None]
    for algo, run_name in ((a, n) for a in opts.algos for n in names):
        contestant = algo if len(names) == 1 else f"{algo}-{run_name}"
        run_name = run_name or POOL_SET_RUN_NAMES[opts.pool_set][algo]
        d = Path(opts.checkpoint_dir) / "tag" / algo / f"{run_name}_s{opts.seed}"
        steps = sorted(d.glob("step_*.pt"))
        if not steps:
            committed = (Path(opts.results_dir) / "tag" / algo / d.name / "config.json").exists()
            fix = (
                f"its checkpoints are not in the repository: train your own with python {TRAIN_SCRIPTS[algo]} "
                f"--env tag --run-name NAME --seed {opts.seed} and pass --run-name NAME"
                if committed
                else f"train it: python {TRAIN_SCRIPTS[algo]} --env tag --run-name {run_name} --seed {opts.seed}"
                + (" --max-time SECONDS" if run_name.endswith("wallclock") else "")
            )
            missing.append(f"{contestant}: no step_*.pt in {d} ({fix})")
            continue
        found[contestant] = steps[-opts.last :]
    for line in missing:
        print(f"missing run: {line}", file=sys.stderr)
    if not found:
        what = f"pool set {opts.pool_set!r}" if opts.run_name is None else f"run name {' '.join(opts.run_name)!r}"
        raise UsageError(f"no tag runs for {what} under {opts.checkpoint_dir}/tag/ (seed {opts.seed})")
    return found, missing
