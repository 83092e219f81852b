"""benchmarks/speed.py (this repository against the JAX reference) and docs/speed.md's tables from its JSON and
from the equivalence runs."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conftest import run_script  # noqa: E402
from memeplex.reports import speed  # noqa: E402


def test_without_jax_it_says_so_and_measures_this_repository(tmp_path):
    out = tmp_path / "benchmarks" / "speed.json"
    proc = run_script("benchmarks/speed.py", "--rounds", "1", "--steps", "1024", "--configs", "tuned", "--algos",
                      "ippo", "--jax-python", tmp_path / "no-python", "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("JAX reference unavailable") == 1
    data = json.loads(out.read_text())
    assert {m["impl"] for m in data["measurements"]} == {"ippo"}
    assert [m["config"] for m in data["measurements"]] == ["tuned"]
    assert all(m["env_steps"] == 1024 and m["run_sps"] > 0 and m["e2e_s"] > 0 for m in data["measurements"])
    table = speed.report(tmp_path)["speed.md"]
    assert "JAX reference not measured" in table and "| IPPO |" in table


def measurement(config, impl, r, sps, compile_s=0.0, agents=3):
    m = {"config": config, "impl": impl, "round": r, "env_steps": 409600, "run_s": 409600 / sps, "run_sps": sps,
         "compile_s": compile_s, "e2e_s": 409600 / sps + compile_s + 2, "num_envs": 8, "agents": agents}  # fmt: skip
    return m if impl == "jax" else {**m, "learn_s": 0.5 * m["run_s"]}


def fake(kind, measurements, **args):
    return {"kind": kind, "args": {"rounds": 2, "torch_threads": 1, "env_counts": [8, 32], **args},
            "machine": {"cpu_model": "test CPU", "torch_cpu_capability": "AVX2"}, "cpu_count": 2,
            "load_average_1min": {"start": 0.1, "end": 0.2}, "jax": {"jax": "0.10.2", "jaxlib": "0.10.2"},
            "measurements": measurements}  # fmt: skip


def test_speed_table_ratios_are_of_the_medians_with_the_rounds_range():
    ms = [measurement("tuned", "jax", 0, 10000, 14.0), measurement("tuned", "ippo", 0, 8000),
          measurement("tuned", "jax", 1, 12000, 15.0), measurement("tuned", "ippo", 1, 12000),
          measurement("tuned", "method_i", 0, 7000), measurement("tuned", "method_i", 1, 9000)]  # fmt: skip
    table = speed.speed_table(fake("speed", ms))
    # medians: JAX 11,000, IPPO 10,000 -> 0.91; per round 0.80 and 1.00
    assert "| IPPO | 10,000 | 50 | 20,000 | - |" in table and "**0.91** (0.80-1.00)" in table
    assert "| tuned (409,600 steps) | JAX (jax.jit) | 11,000 | - | - | 14.5 |" in table
    assert "target >= 1.0: tuned 0.91 (not met)" in table and "target >= 0.90: tuned 0.80 (not met)" in table
    assert "**0.73** (0.70-0.75)" in table  # Method I: 8,000 / 11,000


def test_scaling_table_and_figure():
    ms = [
        measurement(f"envs={e}", impl, 0, sps) for e in (8, 32) for impl, sps in (("jax", 1000 * e), ("ippo", 500 * e))
    ]
    ms += [measurement("agents=6", "jax", 0, 4000, agents=6), measurement("agents=6", "ippo", 0, 3000, agents=6)]
    out = speed.report_for(fake("speed-scaling", ms), "speed_scaling")
    assert "| 32 envs (3 agents) | 32,000 | 16,000 | 0.50 |" in out["speed_scaling.md"]
    assert "| 3 agents (8 envs) | 8,000 | 4,000 | 0.50 |" in out["speed_scaling.md"]
    assert "| 6 agents (8 envs) | 4,000 | 3,000 | 0.75 |" in out["speed_scaling.md"]
    assert len(out["speed_scaling.png"].axes) == 2


def fake_eq_run(root: Path, backward: str, seed: int, score: float):
    run = root / "spread" / "equivalence" / backward / "spread" / "ppo" / f"eq_s{seed}"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"test_normalised": score, "interrupted": False}))
    (run / "config.json").write_text(json.dumps({"args": {"max_steps": 200000, "final_eval_episodes": 100}}))


@pytest.mark.parametrize("shift, verdict", [(0.0, "indistinguishable"), (0.2, "different")])
def test_equivalence_verdict(tmp_path, shift, verdict):
    for k, seed in enumerate(range(101, 121)):
        score = 0.5 + 0.01 * (k % 7)
        fake_eq_run(tmp_path, "autograd", seed, score)
        fake_eq_run(tmp_path, "fused", seed, score + shift + 0.005 * ((-1) ** k))
    table = speed.report(tmp_path)["equivalence.md"]
    assert f"**{verdict}**" in table and "tuning seeds 101-120 (20 seeds" in table


def test_jax_reference_without_jaxmarl_says_so_in_one_line():
    try:
        import jaxmarl  # noqa: F401

        pytest.skip("JaxMARL is installed here: the reference would run")
    except ImportError:
        pass
    proc = run_script("benchmarks/jax_ippo.py", "--total-steps", "1024")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "JAX reference unavailable" in proc.stderr
