"""memeplex.reports.maddpg_sweep on synthetic runs: candidates under results/spread/maddpg_sweep/, their flags read
against their group's base (the "off" value of an option an older run predates; a single member's tournament
size ignored), and a base candidate completed by the tuning suite's runs of the same flags on the seeds it lacks."""

from memeplex import files
from memeplex.reports import maddpg_sweep

BASE_ARGS = {"max_steps": 200_000, "population_size": 1, "batch_size": 128, "learn_step": 16, "shared_networks": True}


def fake_run(results, cand, seed, score, args=None, run_dir=None):
    """A finished run: eval_normalised = score at every one of 4 evaluations."""
    run_dir = run_dir or results / "spread" / "maddpg_sweep" / cand / "spread" / "maddpg"
    d = run_dir / f"{cand}_s{seed}"
    files.write_json(d / "config.json", {"args": {**BASE_ARGS, **(args or {}), "seed": seed, "run_name": cand}})
    summary = {"interrupted": False, "wall_time": 600.0, "throughput_without_eval": 400.0, "generations": 40,
               "env_steps": 200_000, "fitness_env_steps": 0}  # fmt: skip
    files.write_json(d / "summary.json", summary)
    files.write_csv(d / "metrics.csv", [{"step": s, "eval_normalised": score} for s in range(50_000, 200_001, 50_000)])


def rows(text):
    return {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}


def test_flags_against_the_base_and_the_tuned_runs_complete_the_base(tmp_path):
    r = tmp_path / "results"
    fake_run(r, "pop1-base", 101, 0.2, args={"expl_noise_final": -1.0, "tournament_size": 1})
    tuned = r / "spread" / "maddpg"
    for seed, score in ((101, 0.9), (102, 0.3), (103, 0.4)):  # 101 is the sweep's own run: not taken twice
        fake_run(r, maddpg_sweep.TUNED["pop1-base"], seed, score, args={"tournament_size": 1}, run_dir=tuned)
    fake_run(r, "pop1-b1024", 101, 0.4, args={"batch_size": 1024, "expl_noise_final": -1.0, "tournament_size": 2,
                                              "actor_reg": 0.0})  # fmt: skip
    table = rows(maddpg_sweep.report(r)["maddpg_sweep.md"])
    assert set(table) == {"candidate", "pop1-base", "pop1-b1024"}
    assert "| 101-103 |" in table["pop1-base"] and "**0.300**" in table["pop1-base"]  # mean of 0.2, 0.3, 0.4
    assert "`--batch-size 1024`" in table["pop1-b1024"]  # neither the tournament size nor a default is a flag


def test_a_group_without_its_own_base_run_takes_the_tuned_one(tmp_path):
    r = tmp_path / "results"
    pop4 = {"population_size": 4, "tournament_size": 2}
    fake_run(r, maddpg_sweep.TUNED["pop4-base"], 101, 0.2, args=pop4, run_dir=r / "spread" / "maddpg")
    fake_run(r, "pop4-hponly", 101, 0.25, args={**pop4, "mut_architecture": 0.0})
    table = rows(maddpg_sweep.report(r)["maddpg_sweep.md"])
    assert "`defaults`" in table["pop4-base"] and "`--mut-architecture 0.0`" in table["pop4-hponly"]
    assert maddpg_sweep.report(tmp_path / "nothing") == {}


def test_the_evolution_table_counts_what_was_done_to_each_generation_s_fittest_member(tmp_path):
    r = tmp_path / "results"
    pop4 = {"population_size": 4, "tournament_size": 2, "evo_steps": 5000}
    fake_run(r, "pop4-x", 101, 0.2, args=pop4)
    d = r / "spread" / "maddpg_sweep" / "pop4-x" / "spread" / "maddpg" / "pop4-x_s101"
    summary = {"interrupted": False, "wall_time": 60.0, "throughput_without_eval": 1.0, "generations": 4,
               "env_steps": 84_000, "fitness_env_steps": 4_000}  # fmt: skip
    files.write_json(d / "summary.json", summary)
    metrics = [{"step": 21_000 * g, "generation": g, "eval_normalised": 0.1, "best_member": b}
               for g, b in ((1, 2), (2, 6), (3, 7), (4, 9))]  # fmt: skip
    files.write_csv(d / "metrics.csv", metrics)
    updates = [{"generation": 1, "mutations": "2:None 4:None 5:param 6:batch_size"},
               {"generation": 2, "mutations": "6:None 7:head_net.add_node 8:None 9:lr_actor"},
               {"generation": 3, "mutations": "9:None 10:remove_latent_node 11:param 12:None"}]  # fmt: skip
    files.write_csv(d / "updates.csv", updates)
    table = rows(maddpg_sweep.report(r)["maddpg_evolution.md"])
    line = table["pop4-x"]
    assert "**4**" in line and "**4.8%**" in line and "**20,000**" in line  # (84k - 4k) / 4 per line of descent
    # the fittest of generation 2: member 6, its batch size mutated; 3: 7, its architecture; 4: 9, the elite
    cells = [c.strip() for c in line.split("|")[6:11]]
    assert cells == ["1 of 3", "0 of 3", "0 of 3", "1 of 3", "1 of 3"]


def test_the_throughput_line_reads_the_side_by_side_benchmark(tmp_path):
    r = tmp_path / "results"
    fake_run(r, "pop1-base", 101, 0.2)
    bench = {"what": "w", "cpu": "AVX2", "whole_process_wall_s_median": {"before": 60.0, "after": 45.0},
             "before": {"command": "a", "throughput_without_eval": [100.0, 300.0, 200.0]},
             "after": {"command": "b", "throughput_without_eval": [350.0, 250.0, 300.0]}}  # fmt: skip
    files.write_json(r / "benchmarks" / maddpg_sweep.THROUGHPUT, bench)
    text = maddpg_sweep.report(r)["maddpg_throughput.md"]
    assert "**200** env steps/s" in text and "**300** with" in text and "**1.50x**" in text  # medians, their ratio
