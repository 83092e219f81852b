"""memeplex.reports.maddpg_tag_form on synthetic runs and common-pool evaluations: the tuning score is the mean of
the two teams' win-rates against the common pool, averaged over seeds; candidates are ordered by it; the head-to-head
table splits the same games by the candidate each pool snapshot belongs to."""

from memeplex import files
from memeplex.reports import maddpg_tag_form as tf


def fake_run(results, cand, seed, args):
    d = results / "tag" / tf.SUITE / cand / "tag" / "maddpg" / f"{cand}_s{seed}"
    files.write_json(d / "config.json", {"args": {"max_steps": 200_000, **args, "seed": seed, "run_name": cand}})
    files.write_json(d / "summary.json", {"interrupted": False, "wall_time": 240.0, "throughput_without_eval": 900.0})


def team(rates: dict) -> dict:
    return {"win_rate_vs_pool": sum(rates.values()) / len(rates), "win_rates": rates}


def fake_evaluation(results, seed, a_pred, b_pred):
    """Pool: random and one snapshot of each candidate; a's predators catch everyone's prey at rate a_pred, b's
    at b_pred; each prey escapes the others' predators at 1 - their rate."""
    pool = ["random", "maddpg-a@200", "maddpg-b@200"]
    res = {
        "maddpg-a": {"predator": team({"random": 0.9, "maddpg-a@200": 0.5, "maddpg-b@200": a_pred}),
                     "prey": team({"random": 1.0, "maddpg-a@200": 0.5, "maddpg-b@200": 1 - b_pred})},
        "maddpg-b": {"predator": team({"random": 0.3, "maddpg-a@200": b_pred, "maddpg-b@200": 0.5}),
                     "prey": team({"random": 0.8, "maddpg-a@200": 1 - a_pred, "maddpg-b@200": 0.5})},
    }  # fmt: skip
    name = f"fixed_pool_run-a+b_validation_s{seed}.json"
    files.write_json(results / "tag" / tf.SUITE / tf.POOL / "tag" / name,
                     {"seed": seed, "split": "validation", "episodes_per_pairing": 100, "pool": pool,
                      "results": res})  # fmt: skip


def rows(text):
    return {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}


def test_the_tuning_score_ranks_candidates_on_the_common_pool(tmp_path):
    r = tmp_path / "results"
    assert tf.report(r) == {}
    for seed in (101, 102):
        fake_run(r, "a", seed, {"population_size": 4, "shared_networks": True})
        fake_run(r, "b", seed, {"population_size": 4, "shared_networks": False})
    fake_evaluation(r, 101, a_pred=0.7, b_pred=0.2)
    fake_evaluation(r, 102, a_pred=0.5, b_pred=0.4)
    text = tf.report(r)["maddpg_tag_form.md"]
    table = rows(text.split("Head to head")[0])
    # a, seed 101: predators (0.9 + 0.5 + 0.7) / 3 = 0.7, prey (1.0 + 0.5 + 0.8) / 3 = 0.7667: score 0.733
    # seed 102: predators 0.633, prey 0.7: score 0.667; mean 0.700
    assert "**0.700**<br>(0.733 / 0.667)" in table["a"] and "population of 4, shared networks" in table["a"]
    assert "per-agent networks" in table["b"]
    assert text.index("| a |") < text.index("| b |")  # best first
    assert "last 1 snapshots" in text and "100 validation episodes per pairing" in text
    # head to head: a's predators against b's prey snapshots: 0.7 and 0.5; a's prey against b's predators: 0.8, 0.6
    assert "| a | 0.50 / 0.50 | 0.60 / 0.70 |" in text
    assert "| b | 0.30 / 0.40 | 0.50 / 0.50 |" in text


def test_runs_without_an_evaluation_are_listed_without_a_score(tmp_path):
    r = tmp_path / "results"
    fake_run(r, "a", 101, {"population_size": 1, "shared_networks": True})
    table = rows(tf.report(r)["maddpg_tag_form.md"])
    assert "one member, shared networks" in table["a"] and "| - |" in table["a"]
