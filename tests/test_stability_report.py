"""memeplex.reports.stability on synthetic runs: candidates are found under results/spread/stability/, their
flags are read as the difference from the baseline's arguments, scores are read at the evaluation nearest
each step, a run that ends below its own 0.5M score is counted, and compare_results.py fills the docs block."""

import pytest

import compare_results
from memeplex import files
from memeplex.reports import stability

BASE_ARGS = {"max_steps": 2_000_000, "eval_episodes": 5, "gamma": 0.95, "anneal_lr": True, "seed": 0}


def fake_run(results, cand, seed, curve, args=None, interrupted=False, value_loss=lambda step: 1.0, suite="stability"):
    """A finished stability run: eval scores curve(step) every 100k steps (to its max_steps), updates every 10k."""
    d = results / "spread" / suite / cand / "spread" / "ppo" / f"{cand}_s{seed}"
    args = {**BASE_ARGS, **(args or {}), "seed": seed, "run_name": cand}
    files.write_json(d / "config.json", {"args": args})
    files.write_json(d / "summary.json", {"interrupted": interrupted})
    steps = range(100_000, args["max_steps"] + 1, 100_000)
    files.write_csv(d / "metrics.csv", [{"step": s, "eval_normalised": curve(s)} for s in steps])
    updates = [
        {"step": s, "log_std": -0.5 + s / 4e6, "value_loss": value_loss(s), "approx_kl": 0.01}
        for s in range(10_000, 2_000_001, 10_000)
    ]
    files.write_csv(d / "updates.csv", updates)


def rise_then_fall(s):
    return 0.5 - abs(s - 500_000) / 4e6  # peaks at 0.5M, 0.125 lower at 1M, 0.125 * 3 lower at 2M


def rise(s):
    return s / 4e6


@pytest.fixture
def results(tmp_path):
    r = tmp_path / "results"
    for seed in (101, 102):
        fake_run(r, "baseline", seed, rise_then_fall, value_loss=lambda s: 1.0 if s <= 500_000 else 4.0)
        fake_run(r, "steady", seed, rise, args={"gamma": 0.99, "anneal_lr": False})
    fake_run(r, "steady", 103, rise_then_fall, args={"gamma": 0.99, "anneal_lr": False}, interrupted=True)
    return r


def rows(text):
    return {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}


def test_the_table_reads_flags_scores_and_declines_from_the_runs(results):
    text = stability.report(results)["stability.md"]
    table = rows(text)
    base, steady = table["baseline (ppo)"], table["steady (ppo)"]
    assert "`defaults`" in base and "`--no-anneal-lr --gamma 0.99`" in steady
    assert "| 101, 102 |" in steady  # the interrupted seed 103 is left out
    assert "2 of 2 (s101, s102)" in base and "0 of 2" in steady
    assert "**0.425**" in base and "**0.500**" in base and "**0.125**" in base  # 200k, 0.5M and 2M
    assert "0.500 at 500k" in base and "0.500 at 2M" in steady  # the peak of the mean curve
    assert "**4.0**" in base and "**1.0**" in steady  # value loss at the end over its 0.5M value
    assert "tuning seeds 101, 102" in text and "2M env steps" in text and "5 validation episodes" in text


def test_a_shorter_screen_shows_no_score_past_its_budget(results):
    fake_run(results, "quick", 101, rise, args={"max_steps": 600_000}, suite="screen600k")
    quick = rows(stability.report(results)["stability.md"])["screen600k/quick (ppo)"]
    assert "`--max-steps 600000`" in quick and "**0.125**" in quick  # 500k: 0.5M / 4M
    assert [c.strip() for c in quick.split("|")][6:8] == ["-", "-"]  # 1M and 2M: past the run's 600k


def test_the_short_table_compares_each_candidate_with_the_defaults_runs(results):
    for seed in (101, 102):
        fake_run(results, "defaults", seed, rise, args={"max_steps": 200_000}, suite="short")
        fake_run(results, "lower", seed, lambda s: rise(s) / 2, args={"max_steps": 200_000, "lr": 1e-4}, suite="short")
    table = rows(stability.report(results)["stability_short.md"])
    assert "`defaults`" in table["defaults (ppo)"] and "`--lr 0.0001`" in table["lower (ppo)"]
    assert "**0.050**" in table["defaults (ppo)"] and "**0.025**" in table["lower (ppo)"]  # the last evaluation
    assert "**0.038**" in table["defaults (ppo)"]  # the mean of the last 5: (0.025 + 0.05) / 2 of two evaluations


def test_no_stability_runs_no_report(tmp_path):
    assert stability.report(tmp_path) == {}


def test_compare_results_fills_the_stability_block_and_check_passes(results, capsys):
    root = results.parent
    (root / "docs").mkdir()
    (root / "README.md").write_text("# x\n")
    (root / "docs" / "stability.md").write_text("<!-- report:spread/stability.md -->\nold\n<!-- /report -->\n")
    assert compare_results.report(results, check=False, root=root) == 0
    assert "steady (ppo)" in (root / "docs" / "stability.md").read_text()
    assert (results / "spread" / "report" / "stability_curves.png").exists()
    assert compare_results.report(results, check=True, root=root) == 0
    fake_run(results, "steady", 104, rise, args={"gamma": 0.99, "anneal_lr": False})
    assert compare_results.report(results, check=True, root=root) == 1
    assert "stability.md" in capsys.readouterr().err
