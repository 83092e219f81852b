"""memeplex.reports.cooperative on synthetic runs: the compare tables' paired differences, their minimal
detectable effects and verdicts, the dose-response rows and the controls, checked against values computed
by hand from the planted scores."""

import json

import pytest

from memeplex import stats, suites
from memeplex.reports import cooperative

SEEDS = (1, 2, 3, 4)
IPPO = {1: 0.50, 2: 0.60, 3: 0.40, 4: 0.70}
PLUS = {1: 0.05, 2: 0.15, 3: 0.10, 4: 0.10}  # Method I - IPPO per seed: mean 0.10, all positive


def plant(results, env, key, name, scores, **summary):
    """Finished runs of an algorithm: summary.json (the test score and what else is given) and config.json."""
    a = suites.ALGORITHMS[key]
    args = summary.pop("args", {"topology": "none"})
    for seed, score in scores.items():
        d = results / env / a.algo_dir / f"{name}{a.suffix}_s{seed}"
        d.mkdir(parents=True)
        s = {"interrupted": False, "test_normalised": score, "updates": 625, "test_comm_gap": score / 2,
             "test_cka": 0.5, "test_rel_distance": 0.9, "test_signalling": 0.9, "test_listening": score - 0.55,
             **summary}  # fmt: skip
        (d / "summary.json").write_text(json.dumps(s))
        (d / "config.json").write_text(json.dumps({"args": args}))


def test_compare_pairs_method_i_with_each_algorithm_by_seed(tmp_path):
    plant(tmp_path, "reference", "ppo", "main-2M", IPPO)
    plant(tmp_path, "reference", "method_i", "main-2M", {s: IPPO[s] + PLUS[s] for s in SEEDS})
    plant(tmp_path, "reference", "mappo", "main-2M", {s: IPPO[s] for s in SEEDS[:3]})  # seed 4 unfinished
    out = cooperative.report(tmp_path, "reference")
    assert set(out) == {"compare_2M.md", "compare_2M.json", "headline.md"}
    line = out["headline.md"].splitlines()[-1]
    assert (
        line.startswith("| 2M | 4 | 0.650 [")
        and "| +0.100 [" in line
        and line.endswith("| Method I (LA-IPPO) (0.650) |")
    )
    data = json.loads(out["compare_2M.json"])
    assert list(data["algorithms"]) == ["method_i", "ppo", "mappo"]  # table order
    assert data["algorithms"]["mappo"]["seeds"] == [1, 2, 3]
    assert data["algorithms"]["ppo"]["test_normalised"]["mean"]["value"] == pytest.approx(0.55)
    assert data["algorithms"]["ppo"]["test_comm_gap"]["mean"]["value"] == pytest.approx(0.275)  # reference only
    d = data["method_i_vs"]["ppo"]["difference"]
    sd = stats.np.std([0.05, 0.15, 0.10, 0.10], ddof=1)
    assert d["mean"] == pytest.approx(0.10) and d["n"] == 4 and d["sd"] == pytest.approx(sd)
    assert d["mde"] == pytest.approx(stats.minimal_detectable_effect(sd, 4))
    assert 0.05 <= d["lo"] <= 0.10 <= d["hi"] <= 0.15  # a percentile interval of the four differences' mean
    assert data["method_i_vs"]["mappo"]["difference"]["n"] == 3  # only the seeds both have
    table = out["compare_2M.md"]
    assert "| IPPO | 4 | +0.100 [" in table and "| higher |" in table
    assert "| MAPPO | 0.900 [0.900, 0.900] | -0.050 [" in table and "| 1 of 3 |" in table  # listening 0.05 on seed 2
    p = data["method_i_vs"]["ppo"]["p_improvement"]["value"]
    assert p == pytest.approx(11.5 / 16)  # Mann-Whitney by hand, a tie counts 1/2


def test_no_difference_states_what_the_seeds_could_detect(tmp_path):
    plant(tmp_path, "spread", "ppo", "main-200k", IPPO)
    plant(tmp_path, "spread", "method_i", "main-200k", {1: 0.55, 2: 0.55, 3: 0.45, 4: 0.65})  # +-0.05
    table = cooperative.report(tmp_path, "spread")["compare_200k.md"]
    mde = stats.minimal_detectable_effect(stats.np.std([0.05, -0.05, 0.05, -0.05], ddof=1), 4)
    assert f"no difference detected (detectable: {mde:.3f})" in table
    assert "communication gap" not in table  # spread has none


def test_dose_response_runs_from_ippo_to_shared_parameters(tmp_path):
    plant(tmp_path, "spread", "ppo", "main-2M", IPPO)
    plant(tmp_path, "spread", "ppo_shared", "main-2M", IPPO)
    unclipped = {"topology": "ring", "distill_interval": 1, "distill_weight": 1.0, "distill_steps": 3}
    plant(tmp_path, "spread", "method_i", "dose-w1-s3", {s: IPPO[s] - 0.1 for s in SEEDS}, test_cka=0.9,
          args=unclipped)  # fmt: skip
    plant(tmp_path, "spread", "method_i", "dose-w1-s10", {s: IPPO[s] - 0.2 for s in SEEDS}, test_cka=0.95,
          args={**unclipped, "distill_steps": 10})  # fmt: skip
    plant(tmp_path, "spread", "method_i", "control-shuffled", IPPO, test_cka=0.4, args=unclipped)
    out = cooperative.report(tmp_path, "spread")
    lines = [x for x in out["dose_response.md"].splitlines() if x.startswith("| ") and "---" not in x][1:]
    assert [x.split(" | ")[0][2:] for x in lines] == ["IPPO (none)", "w1-s3", "w1-s10", "IPPO, shared parameters"]
    assert "| 1,875 |" in lines[1] and "| 6,250 |" in lines[2]  # 625 updates x 3 and x 10 steps
    assert "-0.100 [-0.100, -0.100] | lower" in lines[1]
    assert lines[3].split(" | ")[3] == "1.000 [1.000, 1.000]"  # one encoder: CKA 1
    assert len(out["dose_response.png"].axes) == 1  # spread: the score; reference adds the gap closed
    rows = [x for x in out["controls.md"].splitlines() if x.startswith("| peer") or x.startswith("| shuffled")]
    assert "+0.200 [+0.200, +0.200]" in rows[1]  # shuffled minus the true peer (w1-s10)


def test_team_size_pairs_the_same_seeds_with_3_and_6_agents(tmp_path):
    plant(tmp_path, "spread", "ppo", "main-2M", IPPO)
    plant(tmp_path, "spread", "method_i", "main-2M", {s: IPPO[s] + PLUS[s] for s in SEEDS})
    plant(tmp_path, "spread", "ppo", suites.SCALE_RUN, IPPO)
    plant(tmp_path, "spread", "method_i", suites.SCALE_RUN, {s: IPPO[s] - PLUS[s] for s in SEEDS})
    table = cooperative.report(tmp_path, "spread")["team_size.md"]
    three, six = [x for x in table.splitlines() if x.startswith("| 3 |") or x.startswith("| 6 |")]
    assert "| +0.100 [" in three and three.endswith("| higher |")
    assert "| -0.100 [" in six and six.endswith("| lower |")


def test_tuning_table_lists_the_choice_and_on_reference_its_gap_closed(tmp_path):
    chosen = {"tuning_steps": 200_000, "tuning_seeds": [101, 102], "metric": "last5_eval_normalised",
              "algorithms": {"ppo": {"label": "IPPO", "algo_dir": "ppo", "run_name": "t200k-a", "mean": 0.5,
                                     "candidates": [{"mean": 0.5}, {"mean": 0.25}]}}}  # fmt: skip
    for env in ("spread", "reference"):
        path = suites.chosen_file(tmp_path, env, "200k")
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(chosen))
        plant(tmp_path, env, "ppo", "t200k-a", {101: 0.4, 102: 0.6}, last5_eval_comm_gap=0.3)
    ref = cooperative.report(tmp_path, "reference")["tuning.md"]
    assert "| IPPO | 2 | `t200k-a` | 0.500 | 0.300 | 0.500, 0.250 |" in ref
    assert "| IPPO | 2 | `t200k-a` | 0.500 | 0.500, 0.250 |" in cooperative.report(tmp_path, "spread")["tuning.md"]
