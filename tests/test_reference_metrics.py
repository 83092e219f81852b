"""Short Method I runs on spread and tag reproduce committed reference metrics.

Refactoring and speed work must not change results: the metrics of these two
runs (everything in metrics.csv and summary.json but timings) are recorded in
tests/data/reference_metrics.json, one record per kind of machine. Runs are
bit-identical only where the floating-point kernels are the same, so a record
is keyed by what picks the kernels: the CPU vendor (MKL dispatches on it),
torch's kernel level (AVX2 / AVX512), numpy's SIMD dispatch targets, and the
torch and numpy versions. CI records and checks both levels on one AVX-512
machine by restricting the kernels to AVX2 (see .ci/run).

On a machine with no record the comparison is skipped (it says why), but two
checks hold on every machine and always run: the same seed twice in one process
gives identical metrics, and both env backends give identical metrics.

Re-record only when a change is *meant* to alter results, and say so in the
commit message; run it once per kernel level:

    python tests/test_reference_metrics.py --record
    ATEN_CPU_CAPABILITY=avx2 NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" \\
        python tests/test_reference_metrics.py --record
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import train_method_i  # noqa: E402
from memeplex import files, rundir  # noqa: E402

REFERENCE = Path(__file__).resolve().parent / "data" / "reference_metrics.json"
COMMON = ["--num-envs", "4", "--rollout-length", "64", "--update-epochs", "2", "--final-eval-episodes", "4",
          "--no-progress", "--seed", "3", "--run-name", "ref"]  # fmt: skip
RUNS = {
    "spread": [*COMMON, "--max-steps", "2048", "--eval-interval", "512", "--eval-episodes", "8",
               "--distill-interval", "2"],
    "tag": [*COMMON, "--env", "tag", "--max-steps", "1024", "--eval-interval", "512", "--elo-episodes", "4",
            "--matrix-interval", "1024", "--matrix-episodes", "2", "--pool-size", "2", "--distill-interval", "2"],
}  # fmt: skip
pytestmark = pytest.mark.kernel_sensitive  # .ci/run also checks (and can record) the AVX2 reference

TIMING = ("wall_time", "cpu_time", "sps", "throughput", "train_time", "eval_time")


def machine() -> dict:
    """What decides the floating-point kernels a run uses: a record applies where all of it matches."""
    import numpy
    import torch
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    vendor = ""
    try:
        with open("/proc/cpuinfo") as f:
            vendor = next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), "")
    except OSError:
        pass
    return {
        "cpu_vendor": vendor or rundir.cpu_info()["cpu_model"],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy_simd": " ".join(t for t in __cpu_dispatch__ if __cpu_features__.get(t)),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }


def key(m: dict) -> str:
    return " | ".join(f"{k}={m[k]}" for k in sorted(m))


def run_metrics(env: str, root: Path, backend: str = "batched") -> list:
    """metrics.csv rows and summary.json of the short run, without timings."""
    argv = [*RUNS[env], "--backend", backend, "--results-dir", str(root / "results"),
            "--checkpoint-dir", str(root / "checkpoints")]  # fmt: skip
    assert train_method_i.main(argv) == 0
    run = root / "results" / env / "method_i" / "ref_s3"
    summary = json.loads((run / "summary.json").read_text())
    untimed = lambda row: {k: v for k, v in row.items() if not k.startswith(TIMING)}
    return [untimed(r) for r in files.read_metrics(run / "metrics.csv")] + [untimed(summary)]


def as_text(rows: list, keys_from: list | None = None) -> list:
    """Rows as canonical JSON (only the columns of keys_from's rows, if given: new diagnostic
    columns may be added later, recorded values may not change)."""
    keys_from = keys_from or rows
    return [json.dumps({k: r.get(k, "missing") for k in ref}, sort_keys=True) for r, ref in zip(rows, keys_from)]


_cache = {}


def metrics(env: str, backend: str, repeat: int, tmp_path_factory) -> list:
    """Each (env, backend, repeat) run once per session, in this process."""
    if (env, backend, repeat) not in _cache:
        _cache[env, backend, repeat] = run_metrics(env, tmp_path_factory.mktemp(f"{env}-{backend}-{repeat}"), backend)
    return _cache[env, backend, repeat]


@pytest.mark.parametrize("env", sorted(RUNS))
def test_same_seed_twice_gives_identical_metrics(env, tmp_path_factory):
    """Holds on every machine: nothing but the seed decides a run (no hidden global state between runs)."""
    first, second = (metrics(env, "batched", r, tmp_path_factory) for r in (0, 1))
    assert len(first) == len(second) and as_text(first) == as_text(second)


@pytest.mark.parametrize("env", sorted(RUNS))
def test_both_backends_give_identical_metrics(env, tmp_path_factory):
    """Batched stepping changes the speed, not the results (on every machine)."""
    batched, mpe2 = metrics(env, "batched", 0, tmp_path_factory), metrics(env, "mpe2", 0, tmp_path_factory)
    assert len(batched) == len(mpe2) and as_text(batched) == as_text(mpe2)


@pytest.mark.parametrize("env", sorted(RUNS))
def test_short_run_reproduces_the_reference_metrics(env, tmp_path_factory):
    records = json.loads(REFERENCE.read_text())["records"]
    here = key(machine())
    if here not in records:
        pytest.skip(f"no reference recorded for this kind of machine ({here}); recorded: {sorted(records)}")
    recorded = records[here]["runs"][env]
    now = metrics(env, "batched", 0, tmp_path_factory)
    assert len(now) == len(recorded) and as_text(now, recorded) == as_text(recorded)


def record() -> None:
    """Add (or replace) the record of this kind of machine."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    records = json.loads(REFERENCE.read_text())["records"] if REFERENCE.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        recorded = {env: run_metrics(env, Path(tmp) / env) for env in sorted(RUNS)}
    records[key(machine())] = {"commit": commit, "machine": machine(), "runs": recorded}
    files.write_json(REFERENCE, {"records": dict(sorted(records.items()))})
    print(f"recorded {REFERENCE} for {key(machine())}")


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    record()
