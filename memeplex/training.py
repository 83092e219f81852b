"""What every training script shares around its loop: opening the run (its options, on --resume
its own saved ones and the checkpoint it continues from), progress with one throughput rule,
graceful stop on SIGINT/SIGTERM, and the end of a run (summary.json, final test, plot, exit code).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from memeplex.checkpoints import resume_checkpoint
from memeplex.envs import spec
from memeplex.options import CommandLine, check_run_options, resumed_namespace
from memeplex.rundir import RunDir


def seed_everything(seed: int) -> None:
    """One --seed seeds python, numpy and torch (the envs get their own seeds)."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def open_run(cmd: CommandLine, algo: str) -> tuple:
    """Check the common options and open the run directory. With --resume, the run's own config.json
    wins: only RESUMABLE options may change, and any other option given with a different value is an
    error; run.checkpoint is then the checkpoint the run continues from. Returns (the run's options as
    parsed, with env_id; the RunDir, held by this process until it is closed)."""
    check_run_options(cmd)
    args = argparse.Namespace(**vars(cmd.args))
    if args.run_name is None:
        args.run_name = time.strftime("%Y%m%d-%H%M%S")
    run = RunDir(args.results_dir, args.checkpoint_dir, args.env, algo, args.run_name, args.seed, args.resume)
    try:
        if args.resume:
            args = resumed_namespace(cmd, run.saved_config()["args"])
        args.env_id = spec.env_id(args.env, args.num_agents)  # what the run plays: "spread", "spread-N" or "tag"
        if args.resume:
            path, run.checkpoint = resume_checkpoint(run.ckpt, algo, args.env_id, args.run_name, args.seed, run.rows)
            step = run.checkpoint["progress"]["global_step"]
            run.rewind(step)
            print(f"resuming {run.path} from {path} at step {step}", file=sys.stderr)
    except BaseException:
        run.close(failed=True)
        raise
    return args, run


@dataclass
class Progress:
    """Where a training run stands; every checkpoint carries it (as a dict). A trainer adds the fields
    of its own algorithm in a subclass."""

    global_step: int = 0
    """env steps so far (including any fitness episodes)"""
    train_time: float = 0.0
    """seconds spent training: acting, stepping, learning (and any fitness games)"""
    learn_time: float = 0.0
    """of train_time, the seconds spent learning (PPO's updates: an update's rollout batch, its epochs, distillation
    and diagnostics); the rest is acting and env stepping (PPO learners only)"""
    eval_time: float = 0.0
    """seconds spent in periodic evaluations and checkpoints"""
    evals: int = 0
    best_mean: float = -math.inf
    """best eval score so far"""
    best_single: float = -math.inf
    """best single evaluation episode so far"""
    train_scores: list = field(default_factory=list)
    """scores of the last 100 training episodes (stochastic policy)"""
    matrices: int = 0
    """tag: pool win-rate matrices written"""
    league: dict | None = None
    """tag: the rolling pool and its Elo ratings (SelfPlayPool.state_dict)"""

    cpu_time: float = 0.0
    """CPU seconds of the process (time.process_time: all its threads) since its training loop began, summed over
    resumed sessions; read it through cpu_clock()"""

    @property
    def wall_time(self) -> float:
        """Seconds the run has taken: training and evaluation."""
        return self.train_time + self.eval_time

    def cpu_clock(self) -> float:
        """cpu_time brought up to now. A session's first call starts its clock (the training loop calls it
        before its first step, so set-up is not counted, as wall_time does not count it)."""
        now = time.process_time()
        self.cpu_time += now - getattr(self, "_cpu_mark", now)
        self._cpu_mark = now
        return self.cpu_time

    def add_train_scores(self, scores) -> None:
        """Keep the scores of the last 100 training episodes."""
        self.train_scores = (self.train_scores + list(scores))[-100:]

    def train_score(self) -> float:
        """The mean score of the last 100 training episodes."""
        return float(np.mean(self.train_scores)) if self.train_scores else float("nan")

    def throughput(self) -> dict:
        """Env steps per second of the whole run, and of training alone."""
        return {
            "throughput_with_eval": round(self.global_step / max(self.wall_time, 1e-9), 1),
            "throughput_without_eval": round(self.global_step / max(self.train_time, 1e-9), 1),
        }

    def state_dict(self) -> dict:
        self.cpu_clock()
        return dataclasses.asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> Progress:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})


def out_of_time(opts, progress: Progress) -> bool:
    """Whether the run's --max-time (wall clock) or --max-cpu-time budget has ended."""
    return (opts.max_time is not None and progress.wall_time >= opts.max_time) or (
        opts.max_cpu_time is not None and progress.cpu_clock() >= opts.max_cpu_time
    )


def time_fraction(opts, progress: Progress) -> float:
    """How much of its time budgets the run has used (the larger; 0 without one), for annealing schedules."""
    fractions = [progress.wall_time / opts.max_time if opts.max_time else 0.0]
    fractions += [progress.cpu_clock() / opts.max_cpu_time if opts.max_cpu_time else 0.0]
    return max(fractions)


class GracefulStop:
    """SIGINT/SIGTERM set a flag that the training loop polls between updates;
    a second Ctrl-C interrupts immediately."""

    def __init__(self):
        self.signum = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum, frame):
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name} received: finishing the current update, then saving", file=sys.stderr)

    @property
    def requested(self) -> bool:
        return self.signum is not None


def finish_run(opts, run: RunDir, progress: Progress, evaluator, interrupted, policy, title: str, extra=None,
               panels=None, after_test=None) -> int:  # fmt: skip
    """What every training script does at the end: summary.json with the table metrics, the final
    held-out test evaluation unless the run was interrupted or --final-eval-episodes is 0, the training
    plot, and the exit code (128 + signal when stopped by one)."""
    summary = {
        "env": opts.env,
        "seed": opts.seed,
        "env_steps": progress.global_step,
        "interrupted": interrupted is not None,
        **(extra or {}),
        **evaluator.summary(progress),
        "wall_time": round(progress.wall_time, 2),
        "cpu_time": round(progress.cpu_clock(), 2),
        "train_time": round(progress.train_time, 2),
        **({"train_time_learning": round(progress.learn_time, 2)} if progress.learn_time else {}),
        "eval_time": round(progress.eval_time, 2),
        **progress.throughput(),
    }
    if interrupted is None and opts.final_eval_episodes > 0:
        summary.update(evaluator.final_test(policy))
        summary.update(after_test() if after_test else {})
    run.write_summary(summary)
    evaluator.plot(title, panels)
    print(f"run directory: {run.path}\ncheckpoint: {run.ckpt / 'latest.pt'}")
    if interrupted is not None:
        print(
            f"stopped by {signal.Signals(interrupted).name} at step {progress.global_step}; "
            f"continue with --run-name {opts.run_name} --seed {opts.seed} --resume",
            file=sys.stderr,
        )
        return 128 + int(interrupted)
    return 0
