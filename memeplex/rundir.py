"""A training run's directories: results/<env>/<algo>/<run-name>_s<seed>/ (config.json, metrics.csv,
updates.csv, summary.json, plots) and checkpoints/<env>/<algo>/<run-name>_s<seed>/ (latest.pt,
step_<N>.pt), held by one process (RunDir); and the provenance config.json records (git commit,
packages, CPU). Every file is written atomically (files.atomic_write)."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memeplex.errors import UsageError
from memeplex.files import ROOT, read_metrics, write_csv, write_json
from memeplex.liveview import LiveView


def git_state() -> tuple:
    """(commit or None, dirty) of the repository; on a cluster node, whose copy has no .git, the driver's
    (MEMEPLEX_GIT_COMMIT, MEMEPLEX_GIT_DIRTY, set by experiments.runtime_env)."""

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD")
    if not commit and os.environ.get("MEMEPLEX_GIT_COMMIT"):
        return os.environ["MEMEPLEX_GIT_COMMIT"], bool(os.environ.get("MEMEPLEX_GIT_DIRTY"))
    return commit or None, bool(git("status", "--porcelain", "--untracked-files=no"))


def provenance() -> dict:
    """Git commit, package versions and machine (with the Ray node a suite ran it on), for config.json."""
    from importlib import metadata

    commit, dirty = git_state()
    versions = {}
    for pkg in ("torch", "numpy", "mpe2", "pettingzoo", "agilerl", "scipy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "hostname": socket.gethostname(),
        "ray_node_id": os.environ.get("MEMEPLEX_RAY_NODE_ID"),
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
        self.live = None  # the TensorBoard view of both files (memeplex.liveview), opened at the first row
        self._resumed_at = None  # --resume: the env step the run continues from (rewind)
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
            elif (self.path / "config.json").exists():
                raise UsageError(
                    f"run {self.path} already exists; pass --resume to continue it or choose another --run-name"
                )
            elif (self.ckpt / "latest.pt").exists():  # e.g. a run of this name under another --results-dir
                raise UsageError(
                    f"checkpoint {self.ckpt / 'latest.pt'} of a run of this name already exists; pass --resume "
                    "to continue it, or choose another --run-name or --checkpoint-dir"
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
                try:
                    p.mkdir()
                except FileExistsError:  # another run made it since the check (two runs starting at once): theirs
                    continue
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
        if self.live is not None:  # first: a failed run's directory may go below
            self.live.close()
            self.live = None
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
        evaluation's row but before its checkpoint): the resumed run makes them again, and the live view
        hides the events the stopped run wrote after `step`."""
        self._resumed_at = step
        self.rows = [r for r in self.rows if r["step"] <= step]
        self.update_rows = [r for r in self.update_rows if r["step"] <= step]
        if (self.path / "metrics.csv").exists():
            write_csv(self.path / "metrics.csv", self.rows)
        if (self.path / "updates.csv").exists():
            write_csv(self.path / "updates.csv", self.update_rows)

    def append_metrics(self, row: dict) -> None:
        """Add an evaluation row; rewrites metrics.csv and updates.csv atomically, and shows the row live."""
        self.rows.append(row)
        write_csv(self.path / "metrics.csv", self.rows)
        self.flush_updates()
        self._live().add_row("eval", row)
        self.live.flush()

    def add_update(self, row: dict) -> None:
        """Add an update's row of training diagnostics (written to updates.csv at the next evaluation or
        flush_updates) and show it live."""
        self.update_rows.append(row)
        self._live().add_row("train", row)

    def _live(self) -> LiveView:
        if self.live is None:
            self.live = LiveView(self.path, resume_step=self._resumed_at)
        return self.live

    def flush_updates(self) -> None:
        if self.update_rows:
            write_csv(self.path / "updates.csv", self.update_rows)

    def write_summary(self, summary: dict) -> None:
        write_json(self.path / "summary.json", summary)

    def step_checkpoint(self, step: int) -> Path:
        """The checkpoint of the evaluation at env step `step`."""
        return self.ckpt / f"step_{step:09d}.pt"


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
