"""memeplex.reports.dose on synthetic runs: one table per ladder (results/spread/dose/<ladder>/), rows in
run-name order with each run's settings, and whether the test CKA rises monotonically down the ladder."""

from memeplex import files
from memeplex.reports import dose

ARGS = {"max_steps": 200_000, "topology": "ring", "distill_interval": 1, "distill_weight": 1.0,
        "distill_steps": 1, "distill_max_grad_norm": 0.0, "max_grad_norm": 0.5}  # fmt: skip


def fake_run(results, ladder, name, seed, cka, **args):
    d = results / "spread" / "dose" / ladder / "spread" / "method_i" / f"{name}_s{seed}"
    files.write_json(d / "config.json", {"args": {**ARGS, **args, "seed": seed}})
    summary = {"updates": 196, "test_cka": cka, "test_rel_distance": 1 - cka, "test_normalised": 0.5}
    files.write_json(d / "summary.json", summary)


def test_one_table_per_ladder_and_its_monotonicity(tmp_path):
    for seed in (101, 102):
        fake_run(tmp_path, "shared", "d0-none", seed, 0.6, topology="none")
        fake_run(tmp_path, "shared", "d1-low", seed, 0.79 + (seed - 101) * 0.02)
        fake_run(tmp_path, "own", "d0-none", seed, 0.6, topology="none")
        fake_run(tmp_path, "own", "d1-i10", seed, 0.5, distill_interval=10, distill_optimizer="own")
    text = dose.report(tmp_path)["dose.md"]
    shared, own = text.split("**own**")
    assert "**shared**" in shared and "(rows in order): yes; from 0.600 to 0.800" in shared
    assert "(rows in order): no; from 0.600 to 0.500" in own
    row = next(line for line in own.splitlines() if line.startswith("| d1-i10"))
    assert "| ring | 10 | 1 | 1 | none | own | 19<br>(19 / 19) |" in row  # 196 updates // 10 events, 1 step each
    assert "| PPO's |" in next(line for line in shared.splitlines() if line.startswith("| d1-low"))
    assert "**default**" not in text  # a ladder without runs has no table


def test_no_dose_runs_no_report(tmp_path):
    assert dose.report(tmp_path) == {}
