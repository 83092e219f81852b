"""memeplex.reports.power on synthetic paired runs: the paired difference, its sd and the seed counts follow
from the per-seed scores; a shared per-seed level cancels in the pairing."""

import json

import numpy as np
import pytest

from memeplex import files, stats
from memeplex.reports import power


def fake_runs(results, name, scores):
    for algo, by_seed in scores.items():
        for seed, score in by_seed.items():
            d = results / "spread" / algo / f"{name}_s{seed}"
            files.write_json(d / "summary.json", {"interrupted": False, power.SCORE: score})


def test_seeds_needed_follow_from_the_paired_differences(tmp_path):
    r = tmp_path / "results"
    assert power.report(r) == {}
    level = np.array([0.2, 0.5, 0.3, 0.6, 0.4, 0.35])  # each seed's own level, shared by both algorithms
    noise = np.array([0.01, -0.02, 0.03, 0.0, -0.01, 0.02])
    seeds = range(101, 107)
    fake_runs(r, "power-200k", {"method_i": dict(zip(seeds, level + 0.02 + noise)), "ppo": dict(zip(seeds, level))})
    fake_runs(r, "power-2M", {"method_i": {101: 0.8}, "ppo": {101: 0.8, 102: 0.7}})  # too few pairs: no row
    out = power.report(r)
    (m,) = json.loads(out["power.json"])
    assert m["steps"] == 200_000 and m["seeds"] == list(seeds) and m["effect"] == 0.05
    sd = np.std(noise, ddof=1)
    assert m["difference"]["mean"] == pytest.approx(0.02 + noise.mean()) and m["difference"]["sd"] == pytest.approx(sd)
    assert m["seeds_needed"] == stats.seeds_for_power(sd, 0.05) < 10  # the pairing removes the seeds' own levels
    assert m["seeds_needed_unpaired"] > 30  # without it, their spread (sd ~0.14 each) needs many more
    assert m["mde_today"] == pytest.approx(stats.minimal_detectable_effect(sd, 10))
    assert m["correlation"] > 0.95
    assert "| 200k | 101-106 |" in out["power.md"] and "2M" not in out["power.md"].split("\n", 3)[-1]
