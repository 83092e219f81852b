"""The options every trainer shares, parsed once: the run's budget, seed, evaluation and
directories (RunOptions), which options the command line gave explicitly (CommandLine.given),
their checks, and on --resume the run's own saved options (resumed_namespace).

A script's main parses its command line once (parse), resolves --resume (training.open_run),
then builds RunOptions and its hyperparameter dataclass from the result and passes those down.
config.json's "args" (RunOptions.record) keeps every option of the run under its argparse name.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, fields

from memeplex.cli import positive
from memeplex.envs import spec, vec
from memeplex.errors import UsageError

# Options a resumed run may change; every other option must match the run's config.
# options a resumed run may change; the directories too, so a run moved elsewhere (a cluster task's node) resumes
RESUMABLE = {"resume", "max_steps", "max_time", "max_cpu_time", "progress", "torch_threads", "results_dir",
             "checkpoint_dir"}  # fmt: skip
SELF_PLAY_OPTIONS = ("pool_size", "elo_episodes", "matrix_interval", "matrix_episodes")


@dataclass(frozen=True)
class RunOptions:
    """What a training run is, besides its algorithm's hyperparameters: built once from the command
    line (or, with --resume, from the run's config.json) by from_namespace."""

    env: str
    """spread or tag"""
    env_id: str
    """what the run plays: spread, spread-N (--num-agents N) or tag"""
    seed: int
    run_name: str
    results_dir: str
    checkpoint_dir: str
    resume: bool
    max_steps: int
    """env-step budget"""
    max_time: float | None
    """wall-clock budget in seconds (None: none)"""
    max_cpu_time: float | None
    """CPU-time budget in seconds (None: none): the process's own, which other runs on the machine cannot stretch"""
    num_envs: int
    eval_interval: int
    """env steps between evaluations"""
    eval_episodes: int
    final_eval_episodes: int
    backend: str
    torch_threads: int
    progress: bool
    pool_size: int = 5
    """tag self-play: the rolling pool's size"""
    elo_episodes: int = 20
    matrix_interval: int = 100_000
    matrix_episodes: int = 20
    opponent: str | None = None
    """tag best response: the frozen opponent's checkpoint (None: self-play)"""
    team: str = "predator"
    """tag best response: the team that learns"""
    record: dict | None = None
    """every option of the run by its argparse name, as config.json's "args" and each checkpoint keep it"""

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> RunOptions:
        """The run options among the parsed ones (the others are the algorithm's hyperparameters)."""
        values = vars(args)
        names = {f.name for f in fields(cls)} - {"record"}
        return cls(**{k: v for k, v in values.items() if k in names}, record=dict(values))


# ----------------------------------------------------------------------------
# The options
# ----------------------------------------------------------------------------


def add_run_arguments(p, budget_note: str, envs=("spread",)) -> None:
    """The options common to every train_*.py (budgets, seeds, evaluation, run directories)."""
    run = p.add_argument_group("run")
    _add_budget_and_evaluation(run, budget_note, envs)
    _add_directories_and_machine(run)
    if "tag" in envs:
        sp = p.add_argument_group("self-play evaluation (tag): Elo against a rolling pool of frozen snapshots")
        _add_self_play(sp)


def _add_budget_and_evaluation(run, budget_note: str, envs) -> None:
    run.add_argument(
        "--env",
        default="spread",
        choices=envs,
        help="MPE environment: spread = simple_spread_v3 (cooperative), tag = simple_tag_v3 (self-play), "
        "reference = simple_reference_v3 (cooperative; each agent's target is known only to its partner)",
    )
    run.add_argument(
        "--num-agents",
        type=positive(int),
        default=spec.SPREAD_AGENTS,
        help="spread only: agents (and landmarks) of simple_spread_v3; the references are computed for this N",
    )
    run.add_argument("--max-steps", type=positive(int), default=200_000, help=f"env-step budget ({budget_note})")
    run.add_argument(
        "--max-time",
        type=positive(float),
        default=None,
        help="wall-clock budget in seconds; training stops at whichever budget ends first",
    )
    run.add_argument(
        "--max-cpu-time",
        type=positive(float),
        default=None,
        help="CPU-time budget in seconds: this process's CPU time in training and evaluation (all its threads; with "
        "--torch-threads 1 about the wall time of a run alone), which, unlike --max-time, other processes on the "
        "machine cannot shorten; training stops at whichever budget ends first",
    )
    run.add_argument("--num-envs", type=positive(int), default=8, help="parallel environments stepped in-process")
    run.add_argument("--seed", type=int, default=1, help="seeds python, numpy, torch and the training envs")
    run.add_argument("--eval-interval", type=positive(int), default=10_000, help="env steps between evaluations")
    run.add_argument(
        "--eval-episodes",
        type=positive(int),
        default=50,
        help="deterministic episodes per evaluation (validation seeds; tag uses --elo-episodes)",
    )
    run.add_argument(
        "--final-eval-episodes",
        type=int,
        default=100,
        help="deterministic episodes of the final held-out evaluation (test seeds; per pairing on tag); "
        "0 skips it (hyperparameter sweeps must never see the test seeds)",
    )


def _add_directories_and_machine(run) -> None:
    run.add_argument("--run-name", default=None, help="run directory name (default: the start time)")
    run.add_argument("--results-dir", default="results", help="root of run directories (committed)")
    run.add_argument("--checkpoint-dir", default="checkpoints", help="root of checkpoint directories (git-ignored)")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run --run-name/--seed (and --env) from its newest intact checkpoint, exactly as if it "
        "had not stopped",
    )
    run.add_argument(
        "--backend",
        choices=vec.BACKENDS,
        default="batched",
        help="env stepping: batched = all envs at once in NumPy (memeplex/envs); mpe2 = the reference, one mpe2 env "
        "at a time; both give the same numbers",
    )
    run.add_argument(
        "--torch-threads",
        type=positive(int),
        default=1,
        help="torch intra-op threads (1 is fastest for these small networks, see benchmarks/)",
    )
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")


def _add_self_play(sp) -> None:
    sp.add_argument(
        "--pool-size",
        type=positive(int),
        default=5,
        help="rolling pool: the last N frozen snapshots of both teams (files are kept)",
    )
    sp.add_argument(
        "--elo-episodes",
        type=positive(int),
        default=20,
        help="episodes per pairing in each evaluation's Elo games (current team vs random and each pool snapshot)",
    )
    sp.add_argument(
        "--matrix-interval",
        type=positive(int),
        default=100_000,
        help="env steps between snapshot-vs-snapshot win-rate matrices (one is also written at the end)",
    )
    sp.add_argument("--matrix-episodes", type=positive(int), default=20, help="episodes per matrix cell")


def add_best_response_arguments(p) -> None:
    """--opponent and --team: train one tag team against a frozen checkpoint."""
    br = p.add_argument_group("best response (tag): train one team against a frozen checkpoint")
    br.add_argument(
        "--opponent",
        default=None,
        help="a tag checkpoint of any algorithm: its other team plays frozen (deterministic), and only "
        "--team learns; evaluation is --team's win-rate against it",
    )
    br.add_argument("--team", choices=("predator", "prey"), default="predator", help="the team that learns")


# ----------------------------------------------------------------------------
# Parsing, checks, --resume
# ----------------------------------------------------------------------------


@dataclass
class CommandLine:
    """One parsed command line: the parser, the options' values and those given explicitly."""

    parser: argparse.ArgumentParser
    args: argparse.Namespace
    given: dict
    """the options actually given on the command line, with their values"""


def parse(parser, argv=None) -> CommandLine:
    """Parse argv (default: sys.argv) once, and see which options it gives: parsing again into a
    namespace that already holds a marker for every option leaves the marker where no option is given."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    unset = object()
    probe = parser.parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(vars(args), unset)))
    return CommandLine(parser, args, {k: v for k, v in vars(probe).items() if v is not unset})


def check_run_options(cmd: CommandLine) -> None:
    """One-line UsageErrors for the run options argparse cannot check alone."""
    args = cmd.args
    if not 0 <= args.seed < spec.MAX_SEED:
        raise UsageError(f"--seed must be in [0, {spec.MAX_SEED})")
    if args.final_eval_episodes < 0:
        raise UsageError("--final-eval-episodes must be >= 0")
    if args.num_envs > spec.MAX_ENVS:
        raise UsageError(f"--num-envs must be at most {spec.MAX_ENVS}")
    spec.env_id(args.env, args.num_agents)  # --num-agents is for spread
    if args.env != "tag":  # no option is accepted and then ignored
        given = [k for k in SELF_PLAY_OPTIONS if k in cmd.given]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} is for --env tag (self-play evaluation)")
    if args.resume and args.run_name is None:
        raise UsageError("--resume needs the --run-name (and --seed) of the run to continue")
    if args.run_name is not None:
        check_run_name(args.run_name)


def check_run_name(name: str) -> None:
    """A run name is one directory name: not empty, no path separator, not . or .."""
    separators = [s for s in (os.sep, os.altsep, "/") if s]
    if not name.strip() or name in (".", "..") or any(s in name for s in separators) or "\0" in name:
        raise UsageError(f"--run-name {name!r} must be a plain directory name (no path separator, not empty, not ..)")


def resumed_namespace(cmd: CommandLine, saved: dict) -> argparse.Namespace:
    """The run's own arguments, with the RESUMABLE options given on this command line."""
    for key, value in cmd.given.items():
        if key not in RESUMABLE and key in saved and saved[key] != value:
            raise UsageError(f"--resume: --{key.replace('_', '-')} {value} differs from the run's {saved[key]}")
    defaults = {k: cmd.parser.get_default(k) for k in vars(cmd.args)}  # options newer than the run
    resumable = {k: v for k, v in cmd.given.items() if k in RESUMABLE}
    return argparse.Namespace(**{**defaults, **saved, **resumable, "resume": True})
