"""run_experiments.py --address on a real two-node Ray cluster whose nodes share nothing with the driver.

Two Ray nodes on this machine, each with its own temporary directory and 1 CPU (`ray start --head`, then
`ray start --address`), and a driver in a third directory: every run's files arrive under the driver's
results/, both nodes run tasks, a node killed mid-suite loses nothing (its run starts again on the head and
appears once), and a suite stopped with Ctrl-C resumes with the same command. The cluster is stopped at the
end whatever happens (only its own processes: never `ray stop`, which stops every Ray on the machine).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import run_experiments as rx
from conftest import TINY_PPO
from memeplex import experiments, files

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="starts Ray nodes: Linux only")

RAY = str(Path(sys.executable).parent / "ray")
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_kill_child_processes_on_worker_exit": "0", "RAY_AUTH_MODE": "disabled"}
# the head declares a lost node dead after ~5 s instead of ~15 s (its runs then start again elsewhere)
HEALTH = '{"health_check_period_ms": 1000, "health_check_failure_threshold": 5, "health_check_timeout_ms": 2000}'
TINY = tuple(TINY_PPO)


def free_ports(n: int) -> list:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def node_ports(ports: list) -> list:
    """The port flags that keep two raylets on one host apart (and make each one's processes findable)."""
    names = ("node-manager-port", "object-manager-port", "metrics-export-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "runtime-env-agent-port")  # fmt: skip
    return [x for name, p in zip(names, ports) for x in (f"--{name}", str(p))]


def pids_of(pattern: str) -> list:
    out = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != os.getpid()]


def children(pid: int) -> list:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def kill(pids) -> None:
    for pid in set(pids):
        try:
            os.kill(pid, signal.SIGKILL)  # gcs_server and the monitor ignore SIGTERM for many seconds
        except ProcessLookupError:
            pass


class Cluster:
    """A head and a second node on this machine, each with its own temp dir; their workers keep their
    temporary files (the tasks' run directories) under <node>/tmp, so the test can see what each runs."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **ENV}
        for d in ("head", "head/tmp", "node2", "node2/tmp"):
            (root / d).mkdir(parents=True, exist_ok=True)

    def start(self):
        head = self.root / "head"
        self._ray(head, "start", "--head", "--num-cpus", "1", "--port", str(self.port), "--temp-dir", str(head),
                  "--include-dashboard=false", "--disable-usage-stats", "--object-store-memory", "200000000",
                  "--ray-client-server-port", str(free_ports(1)[0]), "--system-config", HEALTH,
                  *node_ports(free_ports(6)), env={**self.env, "TMPDIR": str(head / "tmp")})  # fmt: skip
        node2 = self.root / "node2"
        self._ray(node2, "start", "--address", self.address, "--num-cpus", "1", "--temp-dir", str(node2),
                  "--disable-usage-stats", "--object-store-memory", "200000000", *node_ports(free_ports(6)),
                  env={**self.env, "TMPDIR": str(node2 / "tmp")})  # fmt: skip

    def _ray(self, cwd, *args, env=None):
        proc = subprocess.run([RAY, *args], cwd=cwd, env=env or self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def tasks(self, node: str = "node2") -> list:
        """The directories of the tasks running on a node now (memeplex-task-* temp dirs)."""
        return sorted((self.root / node / "tmp").glob("memeplex-task-*"))

    def kill_node2(self):
        """Node 2 dies (its raylet, agents, workers and their scripts): what a crashed machine does."""
        node2 = str(self.root / "node2")
        raylets = pids_of(f"raylet .*--temp_dir={node2}( |$)")
        workers = [c for r in raylets for c in children(r)]
        kill([*raylets, *workers, *(g for w in workers for g in children(w)), *pids_of(f"{node2}/")])

    def stop(self):
        raylets = pids_of(f"raylet .*--temp_dir={self.root}/")
        workers = [c for r in raylets for c in children(r)]
        kill([*pids_of(f"{self.root}/(head|node2)"), *raylets, *workers, *(g for w in workers for g in children(w)),
              *pids_of(f"ray.util.client.server --address=[0-9.]*:{self.port}")])  # fmt: skip


@pytest.fixture
def cluster():
    import tempfile

    c = Cluster(Path(tempfile.mkdtemp(prefix="mx-", dir="/tmp")))  # short: Ray's socket paths must fit 107 bytes
    try:
        c.start()
        yield c
    finally:
        import ray

        ray.shutdown()
        c.stop()
        shutil.rmtree(c.root, ignore_errors=True)


def suite(name: str, seeds, *flags):
    def make(ctx):
        yield name, [experiments.Run("train_ppo.py", "spread", "ppo", name, seed, (*TINY, *flags)) for seed in seeds]

    return make


def node_of(run_dir: Path) -> str:
    return json.loads((run_dir / "config.json").read_text())["ray_node_id"]


def background(fn):
    """fn() in a thread; returns the thread."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def files_under(dirs, pattern: str) -> list:
    """The files matching pattern under dirs, [] while a task creates or deletes them under the walk."""
    try:
        return [p for d in dirs for p in d.rglob(pattern)]
    except OSError:
        return []


def test_a_suite_on_a_two_node_cluster_brings_every_run_home(cluster, tmp_path, monkeypatch, capsys):
    import ray

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    driver = tmp_path / "driver"  # neither the repository nor a node's directory
    driver.mkdir()
    monkeypatch.chdir(driver)
    monkeypatch.setitem(rx.SUITES, "five", suite("five", range(1, 6)))
    argv = ["--suite", "five", "--address", cluster.address]

    # node 2 dies in a run after one of its runs came home: that run starts again on the head, is written once
    seen, killed = set(), []  # the runs node 2 took; the one it was running when it died

    def kill_in_second_run():
        deadline = time.time() + 180
        while time.time() < deadline:
            now = {log.parent.name for log in files_under(cluster.tasks(), "driver.log")}
            seen.update(now)
            home = {leaf for leaf in seen - now if (driver / "results/spread/ppo" / leaf / "summary.json").exists()}
            if home and now:
                cluster.kill_node2()
                killed.extend(now)
                return
            time.sleep(0.1)

    killer = background(kill_in_second_run)
    assert rx.main(argv) == 0, capsys.readouterr().err
    killer.join(timeout=5)
    assert killed, f"node 2 never ran a second run after one came home (it ran {sorted(seen)})"
    runs = [driver / "results/spread/ppo" / f"five_s{s}" for s in range(1, 6)]
    for run in runs:  # every run's files came home: the driver's results/, nothing on the nodes' side
        summary = json.loads((run / "summary.json").read_text())
        assert not summary["interrupted"] and summary["env_steps"] == 1024
        assert len(files.read_metrics(run / "metrics.csv")) == 2  # no row twice, none lost
        assert "# exit code 0" in (run / "driver.log").read_text()
    nodes = [node_of(run) for run in runs]
    assert len(set(nodes)) == 2, nodes  # both nodes ran tasks
    ray.init(address=cluster.address, logging_level="ERROR")
    head = ray.get_runtime_context().get_node_id()  # a driver on this machine attaches to the head
    assert node_of(driver / "results/spread/ppo" / killed[0]) == head  # the dead node's run, done again there
    assert not (driver / "checkpoints").exists() or not any((driver / "checkpoints").rglob("*.pt"))  # not kept
    ray.shutdown()

    # Ctrl-C in the driver: the running scripts save latest.pt, which comes home; the same command resumes it
    monkeypatch.setitem(rx.SUITES, "long", suite("long", [7], "--max-steps", "20000", "--eval-interval", "4000"))
    argv = ["--suite", "long", "--address", cluster.address]

    driving = threading.Event()  # the watcher interrupts only while the driver runs

    def interrupt_when_running():
        deadline = time.time() + 120
        while time.time() < deadline and driving.is_set():
            tasks = cluster.tasks("head") + cluster.tasks("node2")  # (node 2's killed task left its directory)
            if files_under(tasks, "long_s7/metrics.csv"):  # the run has written its first evaluation
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
                return
            time.sleep(0.2)

    driving.set()
    background(interrupt_when_running)
    try:
        with pytest.raises(KeyboardInterrupt):
            rx.main(argv)
    finally:
        driving.clear()
    run = driver / "results/spread/ppo/long_s7"
    assert (driver / "checkpoints/spread/ppo/long_s7/latest.pt").is_file()  # it came home with the stop
    assert json.loads((run / "summary.json").read_text())["interrupted"]
    ray.shutdown()
    assert rx.main(argv) == 0
    assert "1 to resume" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert not summary["interrupted"] and summary["env_steps"] >= 20000
    steps = [r["step"] for r in files.read_metrics(run / "metrics.csv")]
    assert steps == sorted(set(steps)) and len(steps) == 5
