"""A training run: its directory and files, the options every trainer shares,
opening and finishing a run, graceful stop, and progress with one throughput rule.

One run = one directory results/<env>/<algo>/<run-name>_s<seed>/ (config.json,
metrics.csv, updates.csv, summary.json, plots) and one checkpoint directory
checkpoints/<env>/<algo>/<run-name>_s<seed>/ (latest.pt, step_<N>.pt). Every
file is written atomically (temp file + rename), so a crash or Ctrl-C never
leaves half a file.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import fcntl
import io
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memeplex import competitive, plots, protocol
from memeplex.cli import positive
from memeplex.envs import spec, vec
from memeplex.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent  # the repository


# ----------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, data) -> None:
    """Write text or bytes to path via a temp file and rename (never half-written). A path that cannot be
    written (a read-only directory, a file where a directory should be) is a one-line UsageError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(directory, option: str) -> None:
    """A one-line UsageError unless files can be written in `directory` (or it can be created there):
    checked before the work whose output goes there, so a bad path fails at once."""
    existing = next(p for p in [Path(directory), *Path(directory).parents] if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{option} {directory}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {directory}: cannot write in {existing} (permission denied)")


def write_json(path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_csv(path, rows: list) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, out.getvalue())


def _parse(v: str):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def read_metrics(path, drop_cut_last_line: bool = False) -> list:
    """The rows of a CSV that write_csv wrote. A damaged file (its last line cut short, a row whose fields do
    not match the header, not text) is a one-line UsageError naming the file; drop_cut_last_line drops a cut
    last line instead (--resume: the checkpoint decides where the run goes on)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        lines = [r for r in csv.reader(io.StringIO(text), strict=True) if r]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path} is not a readable CSV file ({exc})") from None
    if not lines:
        return []
    header, rows = lines[0], lines[1:]
    if not text.endswith("\n"):  # write_csv ends every line: the file was cut short
        if not drop_cut_last_line or not rows:
            raise UsageError(f"{path} is damaged: its last line is cut short (the file was truncated)")
        rows = rows[:-1]
    for k, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise UsageError(f"{path} is damaged: line {k} has {len(row)} fields, the header {len(header)}")
    return [{k: _parse(v) for k, v in zip(header, row)} for row in rows]


def seed_everything(seed: int) -> None:
    """One --seed seeds python, numpy and torch (the envs get their own seeds)."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def provenance() -> dict:
    """Git commit, package versions and machine, for config.json."""
    from importlib import metadata

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    versions = {}
    for pkg in ("torch", "numpy", "mpe2", "pettingzoo", "agilerl", "scipy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "git_commit": git("rev-parse", "HEAD") or None,
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "packages": versions,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        **cpu_info(),
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# Instruction-set extensions that decide which floating-point kernels torch and numpy run.
SIMD_FLAG_PREFIXES = ("sse", "avx", "fma", "amx", "f16c")


def cpu_info() -> dict:
    """CPU model, its SIMD flags and torch's kernel level: runs are bit-identical only on the
    same machine and build, so config.json says which CPU made them."""
    import torch

    info = {}
    try:  # Linux; elsewhere the processor name platform gives
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = info.get("model name") or platform.processor() or platform.machine()
    flags = sorted(v for v in info.get("flags", "").split() if v.startswith(SIMD_FLAG_PREFIXES))
    return {
        "cpu_model": model,
        "cpu_simd_flags": " ".join(flags),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


class RunDir:
    """results/<env>/<algo>/<run-name>_s<seed>/ and its checkpoint directory, held by one process.

    Opening a run creates both directories and locks them (flock: the OS releases the lock however the
    process ends, SIGKILL included), so a second process opening the same run is refused. An existing run
    is never overwritten unless resumed. metrics.csv is rewritten atomically on every row, so it is always
    a complete CSV. Use it as a context manager: on exit the locks are released, and a run that failed
    before its first checkpoint leaves no directory behind.
    """

    def __init__(self, results_dir, checkpoint_dir, env: str, algo: str, run_name: str, seed: int, resume: bool):
        leaf = f"{run_name}_s{seed}"
        self.path = Path(results_dir) / env / algo / leaf
        self.ckpt = Path(checkpoint_dir) / env / algo / leaf
        self.resume = resume
        self.checkpoint = None  # --resume: the checkpoint the run continues from (open_run)
        self.rows = []  # metrics.csv: one row per evaluation
        self.update_rows = []  # updates.csv: one row of training diagnostics per update
        self._created, self._locks = [], []  # directories this process made; locked directory fds
        self._wrote_config = False
        try:
            self._hold(self.path, "--results-dir", results_dir)
            self._hold(self.ckpt, "--checkpoint-dir", checkpoint_dir)
            if resume:  # a cut last line is dropped: the checkpoint decides where the run goes on
                if not any(self.ckpt.glob("*.pt")):
                    raise UsageError(f"--resume: no checkpoint in {self.ckpt} to resume from")
                for tmp in [*self.path.glob(".*.tmp"), *self.ckpt.glob(".*.tmp")]:
                    tmp.unlink()  # atomic_write's temp file of a killed process: never renamed, never read
                if (self.path / "metrics.csv").exists():
                    self.rows = read_metrics(self.path / "metrics.csv", drop_cut_last_line=True)
                if (self.path / "updates.csv").exists():
                    self.update_rows = read_metrics(self.path / "updates.csv", drop_cut_last_line=True)
            elif (self.path / "config.json").exists() or (self.ckpt / "latest.pt").exists():
                raise UsageError(
                    f"run {self.path} already exists; pass --resume to continue it or choose another --run-name"
                )
        except BaseException:
            self.close(failed=True)
            raise

    def _hold(self, directory: Path, option: str, root) -> None:
        """Create `directory` (recording what this process made), lock it and check it can be written."""
        if Path(root).exists() and not Path(root).is_dir():
            raise UsageError(f"{option} {root} is a file, not a directory")
        try:
            missing = [p for p in [directory, *directory.parents] if not p.exists()]
            for p in reversed(missing):
                p.mkdir()
                self._created.append(p)
            fd = os.open(directory, os.O_RDONLY)
        except OSError as exc:
            raise UsageError(f"{option} {root}: cannot create {directory} ({exc.strerror or exc})") from None
        if any(os.path.samestat(os.fstat(held), os.fstat(fd)) for held in self._locks):
            os.close(fd)  # results and checkpoints in one directory: held already
            return
        self._locks.append(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._created = []  # the other process's run: leave everything as it is
            raise UsageError(
                f"run {directory} is in use by another process (the same --run-name and --seed); "
                "wait for it to end or choose another --run-name"
            ) from None
        except OSError as exc:
            raise UsageError(f"{option} {root}: cannot lock {directory} ({exc.strerror or exc})") from None
        try:
            tempfile.TemporaryFile(dir=directory).close()
        except OSError as exc:
            raise UsageError(f"{option} {root}: cannot write in {directory} ({exc.strerror or exc})") from None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)

    def close(self, failed: bool = False) -> None:
        """Release the run. After a failure the empty directories this process created go; a run that saved
        no checkpoint has nothing to continue, so its directories and the config.json it wrote go too."""
        if failed:
            nothing_saved = not (self.ckpt.is_dir() and any(self.ckpt.glob("*.pt")))
            if nothing_saved and self._wrote_config:
                (self.path / "config.json").unlink(missing_ok=True)
            for d in reversed(self._created):
                if nothing_saved and d in (self.path, self.ckpt):
                    shutil.rmtree(d, ignore_errors=True)
                else:
                    _rmdir_if_empty(d)
        self._created = []
        for fd in self._locks:
            os.close(fd)
        self._locks = []

    def saved_config(self) -> dict:
        path = self.path / "config.json"
        try:
            with open(path) as f:
                config = json.load(f)
            config["args"]["run_name"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"not a run's config ({type(exc).__name__})"
            raise UsageError(f"--resume: cannot read {path}: {reason}") from None
        return config

    def write_config(self, config: dict) -> None:
        write_json(self.path / "config.json", config)
        self._wrote_config = True

    def rewind(self, step: int) -> None:
        """Forget the rows after `step`, where the resumed checkpoint stands (a run killed after an
        evaluation's row but before its checkpoint): the resumed run makes them again."""
        self.rows = [r for r in self.rows if r["step"] <= step]
        self.update_rows = [r for r in self.update_rows if r["step"] <= step]
        if (self.path / "metrics.csv").exists():
            write_csv(self.path / "metrics.csv", self.rows)
        if (self.path / "updates.csv").exists():
            write_csv(self.path / "updates.csv", self.update_rows)

    def append_metrics(self, row: dict) -> None:
        """Add an evaluation row; rewrites metrics.csv and updates.csv atomically."""
        self.rows.append(row)
        write_csv(self.path / "metrics.csv", self.rows)
        self.flush_updates()

    def flush_updates(self) -> None:
        if self.update_rows:
            write_csv(self.path / "updates.csv", self.update_rows)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "summary.json", summary)


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


# ----------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------


@dataclass
class Progress:
    """Where a training run stands; every checkpoint carries it (as a dict)."""

    global_step: int = 0
    """env steps so far (MADDPG: including its fitness episodes)"""
    train_time: float = 0.0
    """seconds spent training: acting, stepping, learning (MADDPG: also fitness games)"""
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
    last_distill_loss: float = math.nan
    """Method I: the latest distillation loss"""
    generation: int = 0
    """MADDPG: generations completed"""
    session: int = 0
    """MADDPG: env reset sessions so far (one per member per generation)"""
    learn_calls: int = 0
    """MADDPG: learning calls so far"""
    fitness_steps: int = 0
    """MADDPG: env steps of fitness episodes (included in global_step)"""

    @property
    def wall_time(self) -> float:
        return self.train_time + self.eval_time

    def add_train_scores(self, scores) -> None:
        self.train_scores = (self.train_scores + list(scores))[-100:]

    def train_score(self) -> float:
        return float(np.mean(self.train_scores)) if self.train_scores else float("nan")

    def throughput(self) -> dict:
        """Env steps per second of the whole run, and of training alone."""
        return {
            "throughput_with_eval": round(self.global_step / max(self.wall_time, 1e-9), 1),
            "throughput_without_eval": round(self.global_step / max(self.train_time, 1e-9), 1),
        }

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> Progress:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def run_cli(main, argv=None) -> int:
    """Run a script's main(): user errors become one line on stderr + exit 2."""
    from memeplex.errors import CheckpointError

    try:
        return main(argv) or 0
    except (UsageError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


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


# Options a resumed run may change; every other option must match the run's config.
RESUMABLE = {"resume", "max_steps", "max_time", "progress", "torch_threads"}
SELF_PLAY_OPTIONS = ("pool_size", "elo_episodes", "matrix_interval", "matrix_episodes")


def add_run_arguments(p, budget_note: str, envs=("spread",)) -> None:
    """The options common to every train_*.py (budgets, seeds, evaluation, run directories)."""
    run = p.add_argument_group("run")
    run.add_argument(
        "--env",
        default="spread",
        choices=envs,
        help="MPE environment: spread = simple_spread_v3 (cooperative), tag = simple_tag_v3 (self-play)",
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
    if "tag" in envs:
        sp = p.add_argument_group("self-play evaluation (tag): Elo against a rolling pool of frozen snapshots")
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


def explicit_options(parser, argv) -> dict:
    """The options actually given on the command line."""
    probe = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            kwargs = {"dest": action.dest, "default": argparse.SUPPRESS}
            if isinstance(action, argparse.BooleanOptionalAction):
                probe.add_argument(*action.option_strings, action=argparse.BooleanOptionalAction, **kwargs)
            elif action.nargs == 0:
                probe.add_argument(*action.option_strings, action="store_const", const=action.const, **kwargs)
            else:
                probe.add_argument(*action.option_strings, nargs=action.nargs, type=action.type, **kwargs)
    return vars(probe.parse_known_args(argv)[0])


def open_run(parser, argv, args, algo: str):
    """Validate the common options and open the run directory.  With
    --resume, the run's own config.json wins: only RESUMABLE options may
    change, and any other option given with a different value is an error;
    run.checkpoint is then the checkpoint the run continues from.
    Returns (args, RunDir), the run held by this process until it is closed."""
    if not 0 <= args.seed < spec.MAX_SEED:
        raise UsageError(f"--seed must be in [0, {spec.MAX_SEED})")
    if args.final_eval_episodes < 0:
        raise UsageError("--final-eval-episodes must be >= 0")
    if args.num_envs > spec.MAX_ENVS:
        raise UsageError(f"--num-envs must be at most {spec.MAX_ENVS}")
    spec.env_id(args.env, args.num_agents)  # --num-agents is for spread
    if args.env != "tag":  # no option is accepted and then ignored
        given = [k for k in SELF_PLAY_OPTIONS if k in explicit_options(parser, argv)]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} is for --env tag (self-play evaluation)")
    if args.resume and args.run_name is None:
        raise UsageError("--resume needs the --run-name (and --seed) of the run to continue")
    if args.run_name is None:
        args.run_name = time.strftime("%Y%m%d-%H%M%S")
    check_run_name(args.run_name)
    run = RunDir(args.results_dir, args.checkpoint_dir, args.env, algo, args.run_name, args.seed, args.resume)
    try:
        if args.resume:
            args = _resumed_args(parser, argv, run.saved_config()["args"])
        args.env_id = spec.env_id(args.env, args.num_agents)  # what the run plays: "spread", "spread-N" or "tag"
        if args.resume:
            from memeplex.checkpoints import resume_checkpoint

            path, run.checkpoint = resume_checkpoint(run.ckpt, algo, args.env_id, args.run_name, args.seed, run.rows)
            step = run.checkpoint["progress"]["global_step"]
            run.rewind(step)
            print(f"resuming {run.path} from {path} at step {step}", file=sys.stderr)
    except BaseException:
        run.close(failed=True)
        raise
    return args, run


def check_run_name(name: str) -> None:
    """A run name is one directory name: not empty, no path separator, not . or .."""
    separators = [s for s in (os.sep, os.altsep, "/") if s]
    if not name.strip() or name in (".", "..") or any(s in name for s in separators) or "\0" in name:
        raise UsageError(f"--run-name {name!r} must be a plain directory name (no path separator, not empty, not ..)")


def _resumed_args(parser, argv, saved: dict) -> argparse.Namespace:
    """The run's own arguments, with the RESUMABLE options given on this command line."""
    given = explicit_options(parser, argv)
    for key, value in given.items():
        if key not in RESUMABLE and key in saved and saved[key] != value:
            raise UsageError(f"--resume: --{key.replace('_', '-')} {value} differs from the run's {saved[key]}")
    defaults = {a.dest: a.default for a in parser._actions if a.dest != "help"}  # options newer than the run
    resumable = {k: v for k, v in given.items() if k in RESUMABLE}
    return argparse.Namespace(**{**defaults, **saved, **resumable, "resume": True})


# ----------------------------------------------------------------------------
# Evaluations during training and the end of a run
# ----------------------------------------------------------------------------


def write_matrix(path_stem, row_labels, col_labels, m, title: str, episodes: int) -> None:
    """A predator win-rate matrix as CSV and heatmap PNG."""
    rows = [
        {"predators \\ prey": r, **{c: round(float(v), 4) for c, v in zip(col_labels, line)}}
        for r, line in zip(row_labels, m)
    ]
    write_csv(Path(f"{path_stem}.csv"), rows)
    save_figure(
        plots.matrix(row_labels, col_labels, m, f"{title}\n(predator win-rate, {episodes} episodes per cell)"),
        Path(f"{path_stem}.png"),
    )


def periodic_evaluation(args, run, progress: Progress, policy, save, ckpt_path, league=None, final: bool = False):
    """One evaluation of the current policy: on spread scores the deterministic
    policy on the validation seeds; on tag with the self-play pool saves the
    policy as the step checkpoint with `save(path)`, freezes both teams into the
    pool, plays the Elo games and, every --matrix-interval env steps (and at
    the end), writes a snapshot-vs-snapshot win-rate matrix. The caller then
    appends the row and checkpoints the state after the evaluation.
    Returns (metrics row without step columns, one-line message)."""
    t0 = time.perf_counter()
    progress.evals += 1
    if isinstance(league, competitive.BestResponse):
        res = league.evaluate(policy)
        progress.eval_time += time.perf_counter() - t0
        row = {k: v for k, v in res.items() if k != "episodes"}
        message = f"{league.team} win-rate vs the frozen opponent {res['best_response_win_rate']:.2f}"
    elif league is None:
        res = protocol.evaluate(args.env_id, policy, "validation", args.eval_episodes, args.backend)
        progress.best_mean = max(progress.best_mean, res["score"])
        progress.best_single = max(progress.best_single, res["best"])
        progress.eval_time += time.perf_counter() - t0
        row = {
            "eval_score": res["score"],
            "eval_ci": res["ci"],
            "eval_normalised": res["normalised"],
            "eval_best_episode": res["best"],
            "train_score": progress.train_score(),
        }
        message = f"eval {res['score']:7.2f} ± {res['ci']:.2f}  (normalised {res['normalised']:.3f})"
    else:
        save(ckpt_path)  # the pool reads the snapshot's policy from its file
        league.add(progress.global_step, ckpt_path)
        res = league.evaluate(policy)
        if final or progress.global_step >= (progress.matrices + 1) * args.matrix_interval:
            labels, m = league.matrix(args.matrix_episodes)
            write_matrix(
                run.path / f"win_matrix_step_{progress.global_step:09d}",
                labels,
                labels,
                m,
                f"pool at step {progress.global_step}",
                args.matrix_episodes,
            )
            progress.matrices = max(progress.matrices + 1, progress.global_step // args.matrix_interval)
        progress.league = league.state_dict()
        progress.eval_time += time.perf_counter() - t0
        row = {k: v for k, v in res.items() if not k.endswith("_ci")}
        message = (
            f"Elo predators {res['predator_elo']:.0f} prey {res['prey_elo']:.0f}  win vs random "
            f"{res['predator_win_vs_random']:.2f}/{res['prey_win_vs_random']:.2f}  exploitability "
            f"{res['predator_exploitability']:.2f}/{res['prey_exploitability']:.2f}  "
            f"contacts {res['contacts_self_play']:.2f}"
        )
    return {"wall_time": round(progress.wall_time, 2), **row, **progress.throughput()}, message


COMPETITIVE_SUMMARY = (
    "predator_elo",
    "prey_elo",
    "predator_exploitability",
    "prey_exploitability",
    "predator_win_vs_random",
    "prey_win_vs_random",
    "self_play_predator_win",
    "contacts_self_play",
)


def finish_run(
    args,
    run: RunDir,
    progress: Progress,
    refs: dict,
    interrupted,
    policy,
    title: str,
    extra: dict | None = None,
    panels=None,
    after_test=None,
    league=None,
) -> int:
    """What every training script does at the end: summary.json with the
    table metrics, the final held-out test evaluation unless the run was
    interrupted or --final-eval-episodes is 0, the training plot, and the exit
    code (128 + signal when stopped by one)."""
    summary = {
        "env": args.env,
        "seed": args.seed,
        "env_steps": progress.global_step,
        "interrupted": interrupted is not None,
        **(extra or {}),
    }
    if isinstance(league, competitive.BestResponse):
        last = run.rows[-1] if run.rows else {}
        summary.update(
            {
                "team": league.team,
                "opponent": args.opponent,
                "best_response_win_rate": last.get("best_response_win_rate", float("nan")),
            }
        )
    elif league is not None:
        summary.update(_competitive_summary(args, run, league))
    else:
        summary.update(_cooperative_summary(args, run, progress, refs))
    summary.update(
        {
            "wall_time": round(progress.wall_time, 2),
            "train_time": round(progress.train_time, 2),
            "eval_time": round(progress.eval_time, 2),
            **progress.throughput(),
        }
    )
    if interrupted is None and args.final_eval_episodes > 0:
        summary.update(_final_test(args, policy, league))
        summary.update(after_test() if after_test else {})
    run.write_summary(summary)
    if isinstance(league, competitive.BestResponse):
        pass  # the metrics.csv curve is the whole story: one win-rate per evaluation
    elif run.rows and league is None:
        save_figure(
            plots.training(run.rows, refs, title, **({"panels": panels} if panels else {})),
            run.path / "training_plot.png",
        )
    elif run.rows:
        save_figure(plots.competitive(run.rows, title), run.path / "training_plot.png")
    print(f"run directory: {run.path}\ncheckpoint: {run.ckpt / 'latest.pt'}")
    if interrupted is not None:
        print(
            f"stopped by {signal.Signals(interrupted).name} at step {progress.global_step}; "
            f"continue with --run-name {args.run_name} --seed {args.seed} --resume",
            file=sys.stderr,
        )
        return 128 + int(interrupted)
    return 0


def _cooperative_summary(args, run, progress: Progress, refs: dict) -> dict:
    scores = [r["eval_score"] for r in run.rows]
    last5 = float(np.mean(scores[-5:])) if scores else float("nan")
    final = scores[-1] if scores else float("nan")
    return {
        "last5_eval_mean": last5,
        "last5_eval_normalised": protocol.normalised(last5, refs),
        "final_eval_score": final,
        "final_eval_normalised": protocol.normalised(final, refs),
        "best_mean_score": progress.best_mean,
        "best_single_eval_fitness": progress.best_single,
        "train_mean_score": progress.train_score(),
        "eval_episodes": args.eval_episodes,
        "validation_references": refs,
    }


def _competitive_summary(args, run, league) -> dict:
    last = run.rows[-1] if run.rows else {}
    return {
        **{k: last.get(k, float("nan")) for k in COMPETITIVE_SUMMARY},
        "elo_episodes": args.elo_episodes,
        "pool_size": args.pool_size,
        "pool": last.get("pool", ""),
    }


def _final_test(args, policy, league) -> dict:
    """The final evaluation on the held-out test seeds (tag: the Elo games, ratings unchanged)."""
    if isinstance(league, competitive.BestResponse):
        res = league.evaluate(policy, split="test", episodes=args.final_eval_episodes)
        print(
            f"final test evaluation ({res['episodes']} episodes): {league.team} win-rate vs the frozen opponent "
            f"{res['best_response_win_rate']:.2f} ± {res['best_response_win_rate_ci']:.2f}"
        )
        return {f"test_{k}": v for k, v in res.items()}
    if league is None:
        final = protocol.evaluate(args.env_id, policy, "test", args.final_eval_episodes, args.backend)
        print(
            f"final test evaluation ({final['episodes']} episodes): {final['score']:.2f} ± {final['ci']:.2f}, "
            f"normalised {final['normalised']:.3f}"
        )
        return {
            "test_score": final["score"],
            "test_ci": final["ci"],
            "test_normalised": final["normalised"],
            "test_episodes": final["episodes"],
            "test_references": final["references"],
        }
    res = league.evaluate(policy, split="test", episodes=args.final_eval_episodes, update=False)
    print(
        f"final test evaluation ({args.final_eval_episodes} episodes per pairing): predator win-rate vs random "
        f"{res['predator_win_vs_random']:.2f} ± {res['predator_win_vs_random_ci']:.2f}, prey "
        f"{res['prey_win_vs_random']:.2f} ± {res['prey_win_vs_random_ci']:.2f}; exploitability "
        f"{res['predator_exploitability']:.2f} / {res['prey_exploitability']:.2f}"
    )
    return {f"test_{k}": v for k, v in res.items() if k not in ("predator_elo", "prey_elo", "pool")}


def save_figure(fig, path) -> None:
    """A matplotlib figure as a PNG, written atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
