"""Short Method I runs on spread and tag reproduce committed reference metrics.

Refactoring and speed work must not change results: the metrics of these two
runs (everything in metrics.csv but timings) were recorded with the code of
the commit named in tests/data/reference_metrics.json. Runs are bit-identical
only on the same CPU and build, so on another machine the comparison is
skipped (it says why). Re-record only when a change is *meant* to alter
results, and say so in the commit message:

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

import runs  # noqa: E402
import train_method_i  # noqa: E402

REFERENCE = Path(__file__).resolve().parent / "data" / "reference_metrics.json"
COMMON = [
    "--num-envs",
    "4",
    "--rollout-length",
    "64",
    "--update-epochs",
    "2",
    "--final-eval-episodes",
    "4",
    "--no-progress",
    "--seed",
    "3",
    "--run-name",
    "ref",
]
RUNS = {
    "spread": [
        *COMMON,
        "--max-steps",
        "2048",
        "--eval-interval",
        "512",
        "--eval-episodes",
        "8",
        "--distill-interval",
        "2",
    ],
    "tag": [
        *COMMON,
        "--env",
        "tag",
        "--max-steps",
        "1024",
        "--eval-interval",
        "512",
        "--elo-episodes",
        "4",
        "--matrix-interval",
        "1024",
        "--matrix-episodes",
        "2",
        "--pool-size",
        "2",
        "--distill-interval",
        "2",
    ],
}
TIMING = ("wall_time", "sps", "throughput")


def machine() -> dict:
    import numpy
    import torch

    info = runs.cpu_info()
    return {
        "cpu_model": info["cpu_model"],
        "torch_cpu_capability": info["torch_cpu_capability"],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }


def run_metrics(env: str, root: Path, backend: str = "batched") -> list:
    """metrics.csv rows and summary.json of the short run, without timings."""
    assert (
        train_method_i.main(
            [
                *RUNS[env],
                "--backend",
                backend,
                "--results-dir",
                str(root / "results"),
                "--checkpoint-dir",
                str(root / "checkpoints"),
            ]
        )
        == 0
    )
    run = root / "results" / env / "method_i" / "ref_s3"
    summary = json.loads((run / "summary.json").read_text())
    untimed = lambda row: {
        k: v for k, v in row.items() if not k.startswith(TIMING) and k != "train_time" and k != "eval_time"
    }
    return [untimed(r) for r in runs.read_metrics(run / "metrics.csv")] + [untimed(summary)]


@pytest.mark.parametrize("backend", ["batched", "mpe2"])
@pytest.mark.parametrize("env", sorted(RUNS))
def test_short_run_reproduces_the_reference_metrics(env, backend, tmp_path):
    """Both env backends give the recorded numbers: batched stepping changes the speed, not the results."""
    reference = json.loads(REFERENCE.read_text())
    if reference["machine"] != machine():
        pytest.skip(
            f"reference recorded on {reference['machine']}, this is {machine()}: runs are bit-identical "
            "only on the same CPU and build"
        )
    recorded = reference["runs"][env]
    now = run_metrics(env, tmp_path, backend)
    # every recorded metric, as recorded (new diagnostic columns may be added; values may not change)
    as_text = lambda rows: [
        json.dumps({k: r.get(k, "missing") for k in ref}, sort_keys=True) for r, ref in zip(rows, recorded)
    ]
    assert len(now) == len(recorded) and as_text(now) == as_text(recorded)


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        recorded = {env: run_metrics(env, Path(tmp) / env) for env in sorted(RUNS)}
    runs.write_json(REFERENCE, {"commit": commit, "machine": machine(), "runs": recorded})
    print(f"recorded {REFERENCE}")
