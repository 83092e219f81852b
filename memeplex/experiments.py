"""Running training scripts as Ray tasks: a run's identity and directories (Run), the driver's
context, one Ray task per run (train_task: the script as a subprocess, its output in the run's
driver.log, Ctrl-C/SIGTERM forwarded so the script saves latest.pt), and a batch of runs executed
with skipping (finished runs), resuming (interrupted ones) and failure reports. The suites
themselves are defined in run_experiments.py.

Two ways to run a task:
* local (no --address): a new Ray on this machine; the scripts run in this repository and write
  into the driver's results/ and checkpoints/ directly.
* cluster (--address): the nodes share nothing with the driver. Ray's runtime environment ships
  the repository (`working_dir`, without results/, checkpoints/ and what REMOTE_EXCLUDES lists)
  to every node; each task (cluster_task) gets the files its run needs as bytes (an interrupted
  run's results and checkpoint directories, any checkpoint its flags name, such as --opponent),
  runs the script in a temporary directory of its node and returns the run's files, which the
  driver writes atomically into results/ and checkpoints/. It returns the run's checkpoints only
  when the run is unfinished (its latest.pt and the pool snapshots it resumes from) or when a
  later step of the suite reads them (Run.keep: tag's self-play snapshots for the pools,
  cross-play and best responders, the runs the ship suite copies).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from memeplex.errors import UsageError
from memeplex.files import ROOT  # the repository: where the scripts run

STOP_GRACE = 120.0  # seconds a stopped script gets to save latest.pt before it is killed
LOG_TAIL = 15  # lines of a failed run's driver.log shown in its report
# what the driver does not ship to a cluster's nodes (gitignore syntax, relative to the repository)
REMOTE_EXCLUDES = ["results/", "checkpoints/", ".git/", ".venv/", "venv/", "__pycache__/", "*.pt", "*.gif",
                   ".pytest_cache/", ".ruff_cache/"]  # fmt: skip
TASK_RETRIES = 3  # a cluster task whose node dies starts again elsewhere, from the files it was given
STOP_POLL = 1.0  # seconds between a cluster task's looks at the driver's stop flag


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: results/<env>/<algo>/<name>_s<seed>/."""

    script: str
    env: str
    algo: str
    name: str
    seed: int
    flags: tuple = ()
    keep: tuple = ()  # cluster: checkpoint files (glob patterns) a later step reads, brought home when finished

    @property
    def rel(self) -> Path:
        """<env>/<algo>/<name>_s<seed>: the run's directory under results/ and under checkpoints/."""
        return Path(self.env) / self.algo / self.leaf

    @property
    def leaf(self) -> str:
        return f"{self.name}_s{self.seed}"

    def result_dir(self, ctx) -> Path:
        return ctx.results / self.env / self.algo / self.leaf

    def ckpt_dir(self, ctx) -> Path:
        return ctx.checkpoints / self.env / self.algo / self.leaf

    def args(self, ctx, resume: bool = False, shown: bool = False) -> list:
        """The script and its arguments (the task runs them with its own Python);
        shown: with the directories relative to the current one, for printing."""
        path = ctx.rel if shown else str
        return [self.script, *f"--env {self.env} --seed {self.seed} --run-name {self.name}".split(), *self.flags,
                "--results-dir", path(ctx.results), "--checkpoint-dir", path(ctx.checkpoints), "--no-progress",
                *(["--resume"] if resume else [])]  # fmt: skip


@dataclasses.dataclass
class Context:
    """What the suites of one invocation share: the directories, --dry-run, the Ray cluster, the
    algorithms asked for, and the failures so far."""

    results: Path
    checkpoints: Path
    dry_run: bool = False
    address: str | None = None
    started_ray: bool = False
    failures: list = dataclasses.field(default_factory=list)
    algos: tuple = ()  # the algorithms (suites.ALGORITHMS keys) to run; () = all
    envs: tuple = ()  # the cooperative tasks (suites.ENVS) to run; () = all
    budgets: tuple = ()  # the budgets (suites.BUDGETS keys) to run; () = all

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)


def read_summary(run_dir: Path) -> dict | None:
    """The run's summary.json if the run finished (not interrupted), else None."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return None if summary.get("interrupted") else summary


def options(flags: Iterable[str]) -> dict:
    """["--lr", "0.001", "--shared-networks"] -> {"--lr": "0.001", "--shared-networks": None}."""
    out, flags = {}, list(flags)
    for i, f in enumerate(flags):
        if f.startswith("--"):
            nxt = flags[i + 1] if i + 1 < len(flags) else None
            out[f] = None if nxt is None or nxt.startswith("--") else nxt
    return out


def to_flags(opts: dict) -> tuple:
    """The inverse of options: {"--lr": "0.001", "--shared-networks": None} -> ("--lr", "0.001", ...)."""
    return tuple(x for k, v in opts.items() for x in ((k,) if v is None else (k, v)))


def run_evaluation(ctx, *command: str) -> None:
    """Run an evaluation script (fast: batched episodes) in the driver, on ctx's directories; print it first
    (and only print it on --dry-run). UsageError if it fails."""
    import subprocess

    args = [*command, "--results-dir", ctx.rel(ctx.results), "--checkpoint-dir", ctx.rel(ctx.checkpoints)]
    print("python " + shlex.join(args), flush=True)
    if not ctx.dry_run and subprocess.run([sys.executable, *args], cwd=ROOT).returncode != 0:
        raise UsageError(f"{shlex.join(args)} failed")


def train_task(args: list, cwd: str, log_path: str, grace: float = STOP_GRACE, should_stop=None) -> int:
    """Ray task: run `python <args>` in `cwd`, output appended to log_path; the exit code.

    Cancelling the task (ray.cancel, as Ctrl-C in the driver does) sends the
    script SIGTERM, which it handles like Ctrl-C: it finishes the current
    update, saves latest.pt and exits.  The script also gets SIGTERM when this
    worker process dies (PR_SET_PDEATHSIG; see ensure_ray), and SIGINT is
    unblocked for it (Ray's workers block it).  `should_stop()`, polled, does
    what a cancellation does, except that the task then returns normally (the
    cluster tasks bring the saved latest.pt home).  The script's config.json
    records the Ray node it ran on (MEMEPLEX_RAY_NODE_ID)."""
    import ctypes
    import socket
    import subprocess
    import time

    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None

    def child_setup():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if prctl is not None:
            prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    if threading.current_thread() is threading.main_thread():
        # ray.cancel raises KeyboardInterrupt through Python's SIGINT handler; a driver started with
        # SIGINT ignored (nohup, `cmd &` in a script) passes SIG_IGN down to the workers and the
        # cancellation would do nothing.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    command = [sys.executable, *args]
    env = dict(os.environ)
    try:
        import ray

        env["MEMEPLEX_RAY_NODE_ID"] = ray.get_runtime_context().get_node_id()
    except Exception:  # not inside a Ray worker
        pass
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}: {shlex.join(command)}\n")
        log.flush()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=child_setup)  # fmt: skip

        def stop():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.write(f"# stopped by the driver; exit code {proc.returncode}\n")

        try:
            last_look = time.monotonic()
            while proc.poll() is None:  # poll, not wait(): Ray's cancellation interrupts Python code only
                time.sleep(0.5)
                if should_stop is not None and time.monotonic() - last_look > STOP_POLL:
                    last_look = time.monotonic()
                    if should_stop():
                        stop()
                        return proc.returncode
        except KeyboardInterrupt:
            stop()
            raise
        log.write(f"# exit code {proc.returncode}\n")
    return proc.returncode


def ensure_ray(ctx):
    """The ray module, initialised once: a new local Ray, or ctx.address's cluster."""
    import ray

    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Ray SIGKILLs a worker's child processes when the worker exits; without that, a script whose
        # worker goes away (the driver killed hard) gets its PR_SET_PDEATHSIG SIGTERM and saves latest.pt.
        os.environ.setdefault("RAY_kill_child_processes_on_worker_exit", "0")
        kwargs = {"runtime_env": runtime_env()} if ctx.address else {"include_dashboard": False}
        try:
            ray.init(address=ctx.address or "local", log_to_driver=False, logging_level="ERROR", **kwargs)
        except ConnectionError as exc:
            raise UsageError(f"--address {ctx.address}: {str(exc).splitlines()[0]}") from None
        ctx.started_ray = True  # a local instance is stopped at the end, a cluster only disconnected
    if __name__ != "__main__":  # imported (tests): ship the task by value, workers need not import this file
        import ray.cloudpickle

        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return ray


def runtime_env() -> dict:
    """What a cluster's nodes get: the repository's code (REMOTE_EXCLUDES left out) as every task's working
    directory, and the driver's git commit for the runs' provenance (the shipped copy has no .git)."""
    from memeplex.rundir import git_state

    commit, dirty = git_state()
    env_vars = {"MEMEPLEX_GIT_COMMIT": commit or "", "MEMEPLEX_GIT_DIRTY": "1" if dirty else ""}
    return {"working_dir": str(ROOT), "excludes": REMOTE_EXCLUDES, "env_vars": env_vars}


TASK_DIR = "{task_dir}"  # in a cluster task's flags: its temporary directory, where its input files are


def task_inputs(run: Run, resume: bool, ctx) -> tuple:
    """(files, run) for a cluster task: {path under the task's directory: bytes} and the run with every flag that
    names a file on the driver (e.g. --opponent's checkpoint) pointing at its copy there. A resumed run also
    gets its results and checkpoint directories."""
    files, flags = {}, []
    for k, flag in enumerate(run.flags):
        path = Path(flag)
        if not flag.startswith("-") and path.is_file():
            files[f"inputs/{k}/{path.name}"] = path.read_bytes()
            flag = f"{TASK_DIR}/inputs/{k}/{path.name}"
        flags.append(flag)
    if resume:
        for root, name in ((ctx.results, "results"), (ctx.checkpoints, "checkpoints")):
            for p in sorted((root / run.rel).rglob("*")):
                if p.is_file():
                    files[f"{name}/{run.rel.as_posix()}/{p.relative_to(root / run.rel).as_posix()}"] = p.read_bytes()
    return files, dataclasses.replace(run, flags=tuple(flags))


def cluster_task(run: Run, resume: bool, files: dict, stop_flag, grace: float = STOP_GRACE) -> dict:
    """Ray task on a cluster node: the run in a temporary directory of that node (its input `files` written
    there first), the script from the shipped repository (the task's working directory). Returns the exit
    code, the node and the run's files as bytes: {"results": {name: bytes}, "checkpoints": {name: bytes}},
    the checkpoints only for an unfinished run or those run.keep names. The driver's stop flag (an actor
    with get()) stops the script as Ctrl-C does, and the files saved then come home too."""
    import tempfile

    import ray

    with tempfile.TemporaryDirectory(prefix="memeplex-task-") as tmp:
        for rel, data in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_bytes(data)
        ctx = Context(Path(tmp) / "results", Path(tmp) / "checkpoints")
        run = dataclasses.replace(run, flags=tuple(f.replace(TASK_DIR, tmp) for f in run.flags))
        rdir, cdir = run.result_dir(ctx), run.ckpt_dir(ctx)
        rdir.mkdir(parents=True, exist_ok=True)

        def should_stop() -> bool:
            try:
                return ray.get(stop_flag.get.remote(), timeout=30)
            except Exception:  # the driver's node is unreachable: go on, the run's files may still get home
                return False

        code = train_task(run.args(ctx, resume), os.getcwd(), str(rdir / "driver.log"), grace, should_stop)
        finished = read_summary(rdir) is not None
        tree = lambda root: {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
        ckpts = {k: p for k, p in tree(cdir).items() if not finished or any(p.match(g) for g in run.keep)}
        return {
            "code": code,
            "node": ray.get_runtime_context().get_node_id(),
            "results": {k: p.read_bytes() for k, p in tree(rdir).items()},
            "checkpoints": {k: p.read_bytes() for k, p in ckpts.items()},
        }


class StopFlag:
    """The driver's stop request to its cluster tasks (a Ray actor)."""

    def __init__(self):
        self.stopped = False

    def set(self) -> None:
        self.stopped = True

    def get(self) -> bool:
        return self.stopped


def bring_home(run: Run, out: dict, ctx) -> None:
    """A cluster task's files into the driver's results and checkpoint directories, each written atomically."""
    from memeplex.files import atomic_write

    for root, key in ((ctx.results, "results"), (ctx.checkpoints, "checkpoints")):
        for name, data in out[key].items():
            atomic_write(root / run.rel / name, data)


def config_mismatch(run: Run, ctx) -> str | None:
    """How a finished run's config.json differs from the flags the suite asks for, or None."""
    try:
        saved = json.loads((run.result_dir(ctx) / "config.json").read_text())["args"]
    except (OSError, ValueError, KeyError):
        return "it has no readable config.json"
    skip = {"--results-dir", "--checkpoint-dir", "--run-name", "--no-progress", "--resume"}
    for flag, value in options(run.args(ctx)[1:]).items():
        if flag in skip:
            continue
        dest, expected = flag[2:].replace("-", "_"), value
        if value is None:
            if flag.startswith("--no-") and dest[3:] in saved:
                dest, expected = dest[3:], False
            else:
                expected = True
        have = saved.get(dest, "<absent>")
        if isinstance(expected, bool) or isinstance(have, bool):
            same = have == expected
        elif isinstance(have, list):
            same = " ".join(map(str, have)) == expected
        else:
            try:
                same = float(have) == float(expected)
            except (TypeError, ValueError):
                same = str(have) == expected
        if not same:
            return f"it was run with {flag} {have}, the suite asks for {expected}"
    return None


def status(run: Run, ctx) -> tuple:
    """("finished" | "resume" | "new" | "blocked", detail)."""
    rdir, ckpt = run.result_dir(ctx), run.ckpt_dir(ctx)
    if read_summary(rdir) is not None:
        mismatch = config_mismatch(run, ctx)
        if mismatch:
            return "blocked", (
                f"{ctx.rel(rdir)} is finished but {mismatch}; move it away (or use another "
                "--results-dir) to run this one"
            )
        return "finished", ""
    if (ckpt / "latest.pt").exists():
        return "resume", ""
    if (rdir / "config.json").exists():
        return "blocked", (
            f"{ctx.rel(rdir)} was started but has no checkpoint {ctx.rel(ckpt / 'latest.pt')} to resume "
            "from (it died before saving one); delete both directories to start it again"
        )
    return "new", ""


def log_tail(path: Path, n: int = LOG_TAIL) -> str:
    """The last n lines of a log, indented, for a failure report."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in lines[-n:])


def execute(suite: str, stage: str, batch: list, ctx) -> None:
    """Run a batch of runs as Ray tasks (skipping finished ones, resuming
    interrupted ones); failures are reported and recorded in ctx.failures."""
    batch = list(dict.fromkeys(batch))
    states = [(run, *status(run, ctx)) for run in batch]
    count = {s: sum(1 for _, t, _ in states if t == s) for s in ("finished", "resume", "new", "blocked")}
    print(
        f"# {suite}, {stage}: {len(batch)} runs ({count['finished']} finished, {count['resume']} to resume, "
        f"{count['new']} to start" + (f", {count['blocked']} blocked" if count["blocked"] else "") + ")",
        flush=True,
    )
    for run, state, detail in states:
        if state == "blocked":
            print(f"error: {detail}", file=sys.stderr)
            ctx.failures.append((run, detail))
    todo = [(run, state == "resume") for run, state, _ in states if state in ("resume", "new")]
    if ctx.dry_run:
        for run, state, _ in states:
            if state == "finished":
                print(f"# finished: {ctx.rel(run.result_dir(ctx))}")
            elif state != "blocked":
                print(shlex.join(["python", *run.args(ctx, resume=state == "resume", shown=True)]))
    elif todo:
        _run_tasks(suite, todo, len(batch), ctx)


def _run_tasks(suite: str, todo: list, total: int, ctx) -> None:
    """Start one Ray task per (run, resume) of todo and report each as it ends; Ctrl-C or SIGTERM stops
    them all the way the scripts' own Ctrl-C does (each saves latest.pt)."""
    from tqdm import tqdm

    ray = ensure_ray(ctx)
    refs, flag = {}, None
    if ctx.address:  # a cluster: the run's files travel with the task and come back with its result
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        flag = ray.remote(num_cpus=0, scheduling_strategy=here)(StopFlag).remote()  # lives as long as the driver
        task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(cluster_task)
    else:
        task = ray.remote(num_cpus=1)(train_task)
    for run, resume in todo:
        log = run.result_dir(ctx) / "driver.log"
        if flag is not None:
            files, shipped = task_inputs(run, resume, ctx)
            refs[task.remote(shipped, resume, files, flag)] = (run, log)
        else:
            refs[task.remote(run.args(ctx, resume), str(ROOT), str(log))] = (run, log)
        print(f"{'resume' if resume else 'start '}  {ctx.rel(run.result_dir(ctx))}  (log: driver.log)", flush=True)
    bar = tqdm(total=total, initial=total - len(todo), unit="run", desc=suite, dynamic_ncols=True)
    pending = list(refs)
    previous = None  # SIGTERM stops the runs like Ctrl-C (set after ray.init, which installs a handler of its own)
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(1)
            _report(ray, done[0], *refs[done[0]], ctx)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"\ninterrupted: stopping {len(pending)} runs (each saves latest.pt; run the same command again "
            "to resume them)",
            file=sys.stderr,
            flush=True,
        )
        if flag is None:
            for ref in pending:
                ray.cancel(ref)
        else:  # the tasks stop their scripts and return what they saved
            flag.set.remote()
        done, _ = ray.wait(pending, num_returns=len(pending), timeout=STOP_GRACE + 30)
        for ref in done if flag is not None else ():
            try:
                bring_home(refs[ref][0], ray.get(ref), ctx)
            except Exception as exc:  # that task was lost: its run restarts from what the driver has
                print(f"lost {ctx.rel(refs[ref][0].result_dir(ctx))}: {type(exc).__name__}", file=sys.stderr)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    bar.close()


def _report(ray, ref, run: Run, log: Path, ctx) -> None:
    """One ended task: done, or FAILED with the tail of its log (and recorded in ctx.failures)."""
    from tqdm import tqdm

    try:
        code, problem = ray.get(ref), None
        if isinstance(code, dict):  # a cluster task: its files come home first
            bring_home(run, code, ctx)
            code = code["code"]
    except Exception as exc:  # the task itself failed (worker died, ...)
        code, problem = None, f"Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if problem is None and code != 0:
        problem = f"exit code {code}"
    if problem is None and read_summary(run.result_dir(ctx)) is None:
        problem = "exited 0 without a finished summary.json"
    if problem:
        ctx.failures.append((run, problem))
        tqdm.write(
            f"FAILED  {ctx.rel(run.result_dir(ctx))}: {problem}; last lines of {ctx.rel(log)}:\n{log_tail(log)}",
            file=sys.stderr,
        )
    else:
        tqdm.write(f"done    {ctx.rel(run.result_dir(ctx))}")


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def report_failures(ctx) -> int:
    """List the runs that failed or were blocked on stderr; the exit code (1 if any, else 0)."""
    if not ctx.failures:
        return 0
    print(f"\n{len(ctx.failures)} run(s) failed or blocked:", file=sys.stderr)
    for run, problem in ctx.failures:
        print(f"  {ctx.rel(run.result_dir(ctx))}: {problem}", file=sys.stderr)
    return 1
