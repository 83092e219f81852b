"""End-to-end smoke tests of every script at tiny budgets, bad input, determinism,
interruption and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import train_method_i
import train_ppo
from conftest import ROOT, TINY_PPO, assert_clean_error, dirs, run_script
from memeplex import errors, files, protocol

TINY = [*TINY_PPO, "--eval-episodes", "4", "--final-eval-episodes", "4"]  # 4 episodes: CIs need more than 2


def test_train_method_i_writes_run_directory(tmp_path):
    assert train_method_i.main([*TINY, *dirs(tmp_path), "--run-name", "smoke", "--distill-interval", "2"]) == 0
    run = tmp_path / "results/spread/method_i/smoke_s1"
    config = json.loads((run / "config.json").read_text())
    assert config["args"]["distill_interval"] == 2 and config["method_config"]["topology"] == "ring"
    assert config["packages"]["torch"].startswith("2.13")
    assert config["cpu_model"] and config["torch_cpu_capability"]  # runs are bit-identical only on one CPU and build
    rows = files.read_metrics(run / "metrics.csv")
    assert [r["step"] for r in rows] == [512, 1024]
    assert all(r["distill_loss"] == r["distill_loss"] for r in rows[1:])  # distillation happened: not nan
    summary = json.loads((run / "summary.json").read_text())
    for key in (
        "last5_eval_mean",
        "final_eval_score",
        "best_mean_score",
        "best_single_eval_fitness",
        "train_mean_score",
        "throughput_with_eval",
        "throughput_without_eval",
        "test_score",
        "test_normalised",
        "wall_time",
    ):
        assert key in summary
    assert summary["env_steps"] == 1024 and not summary["interrupted"]
    assert (run / "training_plot.png").stat().st_size > 1000
    ckpt = tmp_path / "checkpoints/spread/method_i/smoke_s1"
    assert sorted(p.name for p in ckpt.iterdir()) == ["latest.pt", "step_000000512.pt", "step_000001024.pt"]
    updates = files.read_metrics(run / "updates.csv")  # diagnostics of every update
    assert [u["update"] for u in updates] == list(range(1, 9))
    assert {"policy_loss", "value_loss", "entropy", "distill_loss", "log_std", "lr", "latent_distance"} <= set(
        updates[0]
    )
    assert updates[0]["lr"] > updates[-1]["lr"] > 0  # linear annealing


def test_train_ppo_is_method_i_without_distillation(tmp_path):
    assert train_ppo.main([*TINY, *dirs(tmp_path), "--run-name", "smoke"]) == 0
    run = tmp_path / "results/spread/ppo/smoke_s1"
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "ppo" and config["method_config"]["topology"] == "none"
    rows = files.read_metrics(run / "metrics.csv")
    assert all(r["distill_loss"] != r["distill_loss"] for r in rows)  # nan: never distilled
    with pytest.raises(SystemExit):  # no option is accepted and then ignored
        train_ppo.main([*TINY, *dirs(tmp_path), "--topology", "ring"])


def test_same_seed_gives_identical_metrics(tmp_path):
    for name in ("a", "b"):
        train_method_i.main([*TINY, *dirs(tmp_path), "--run-name", name, "--seed", "7", "--distill-interval", "1"])
    timing = {"wall_time", "throughput_with_eval", "throughput_without_eval"}
    rows = [files.read_metrics(tmp_path / f"results/spread/method_i/{n}_s7/metrics.csv") for n in ("a", "b")]
    strip = lambda rs: [{k: v for k, v in r.items() if k not in timing} for r in rs]
    assert strip(rows[0]) == strip(rows[1])
    train_method_i.main([*TINY, *dirs(tmp_path), "--run-name", "c", "--seed", "8"])
    other = files.read_metrics(tmp_path / "results/spread/method_i/c_s8/metrics.csv")
    assert strip(other) != strip(rows[0])


def test_eval_method_i_evaluates_and_renders(tmp_path):
    train_method_i.main([*TINY, *dirs(tmp_path), "--run-name", "ev"])
    ckpt = tmp_path / "checkpoints/spread/method_i/ev_s1/latest.pt"
    gif = tmp_path / "out.gif"
    proc = run_script(
        "eval_method_i.py", "--checkpoint", ckpt, "--episodes", "6", "--render", "--out", gif, "--render-episodes", "2"
    )
    assert proc.returncode == 0, proc.stderr
    assert "95% CI, 6 episodes" in proc.stdout and "normalised score" in proc.stdout
    from PIL import Image

    with Image.open(gif) as im:
        # two episodes of 26 frames (reset + 25 steps); the GIF writer merges identical consecutive frames
        assert 26 < im.n_frames <= 2 * 26


def test_eval_accepts_ippo_checkpoints(tmp_path):
    train_ppo.main([*TINY, *dirs(tmp_path), "--run-name", "ev"])
    proc = run_script(
        "eval_method_i.py", "--checkpoint", tmp_path / "checkpoints/spread/ppo/ev_s1/latest.pt", "--episodes", "3"
    )
    assert proc.returncode == 0 and "IPPO" in proc.stdout, proc.stderr


def test_bad_input_fails_with_one_clear_line(tmp_path):
    assert_clean_error(run_script("eval_method_i.py", "--checkpoint", tmp_path / "missing.pt"), "checkpoint not found")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    assert_clean_error(run_script("eval_method_i.py", "--checkpoint", corrupt), "not a readable torch checkpoint")
    train_method_i.main([*TINY, *dirs(tmp_path), "--run-name", "ok"])
    ckpt = tmp_path / "checkpoints/spread/method_i/ok_s1/latest.pt"
    assert_clean_error(run_script("eval_method_i.py", "--checkpoint", ckpt, "--env", "tag"), "trained on 'spread'")
    assert_clean_error(run_script("train_method_i.py", *dirs(tmp_path), "--topology", "mesh"), "invalid choice: 'mesh'")
    assert_clean_error(run_script("train_method_i.py", *dirs(tmp_path), "--max-steps", "0"), "must be positive")
    assert_clean_error(
        run_script("train_method_i.py", *dirs(tmp_path), "--topology", "none", "--distill-weight", "0.5"),
        "no effect with --topology none",
    )
    assert_clean_error(run_script("train_method_i.py", *dirs(tmp_path), "--max-time", "-5"), "must be positive")
    assert_clean_error(run_script("train_ppo.py", *dirs(tmp_path), "--elo-episodes", "5"), "is for --env tag")
    assert_clean_error(
        run_script("eval_method_i.py", "--checkpoint", ckpt, "--opponent", ckpt), "is for tag checkpoints"
    )
    assert_clean_error(run_script("train_method_i.py", *TINY, *dirs(tmp_path), "--run-name", "ok"), "already exists")


def test_sigterm_saves_and_resume_continues(tmp_path):
    args = [
        "train_method_i.py",
        *dirs(tmp_path),
        "--run-name",
        "sig",
        "--max-steps",
        "10000000",
        "--num-envs",
        "2",
        "--rollout-length",
        "64",
        "--eval-interval",
        "256",
        "--eval-episodes",
        "2",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    metrics = tmp_path / "results/spread/method_i/sig_s1/metrics.csv"
    deadline = time.time() + 120
    while not (metrics.exists() and len(files.read_metrics(metrics)) >= 2) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "--resume" in err
    summary = json.loads((tmp_path / "results/spread/method_i/sig_s1/summary.json").read_text())
    assert summary["interrupted"]
    stopped_at = summary["env_steps"]
    assert (tmp_path / "checkpoints/spread/method_i/sig_s1/latest.pt").exists()
    # resume with a budget 2 updates beyond where it stopped; other options come from the run's config
    assert (
        train_method_i.main(
            [*dirs(tmp_path), "--run-name", "sig", "--resume", "--max-steps", str(stopped_at + 256), "--no-progress"]
        )
        == 0
    )
    summary = json.loads((tmp_path / "results/spread/method_i/sig_s1/summary.json").read_text())
    assert summary["env_steps"] == stopped_at + 256 and not summary["interrupted"]
    rows = files.read_metrics(metrics)
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})  # one row per evaluation, in order
    with pytest.raises(errors.UsageError, match="differs"):
        train_method_i.main([*dirs(tmp_path), "--run-name", "sig", "--resume", "--lr", "0.5"])


def test_compare_results_tables_and_plot(tmp_path):
    import compare_results

    for seed in ("1", "2"):
        train_method_i.main([*TINY, *dirs(tmp_path), "--run-name", "cmp", "--seed", seed])
    train_ppo.main([*TINY, *dirs(tmp_path), "--run-name", "cmp", "--seed", "1"])
    train_ppo.main([*TINY, *dirs(tmp_path), "--run-name", "other", "--seed", "1", "--lr", "0.0005"])
    results = tmp_path / "results"
    assert compare_results.main(["--results-dir", str(results)]) == 0
    md = (results / "spread/comparison.md").read_text()
    # one column per (algorithm, run name): experiments are never pooled
    assert (
        "Method I (LA-IPPO) [cmp], seeds 1, 2" in md and "IPPO [cmp], seeds 1" in md and "IPPO [other], seeds 1" in md
    )
    table = json.loads((results / "spread/comparison.json").read_text())
    s1, s2 = (
        json.loads((results / f"spread/method_i/cmp_s{s}/summary.json").read_text())["test_score"] for s in (1, 2)
    )
    assert table["Method I (LA-IPPO) [cmp]"]["test_score"]["mean"] == pytest.approx((s1 + s2) / 2)
    assert (results / "spread/comparison_plot.png").stat().st_size > 1000
    assert compare_results.main(["--results-dir", str(results), "--by-run"]) == 0
    assert "lr=0.0005" in (results / "spread/runs.md").read_text()
    with pytest.raises(errors.UsageError, match="no finished runs"):
        compare_results.main(["--results-dir", str(results), "--run-name", "missing"])


SCRIPTS = (
    "train_method_i",
    "train_ppo",
    "train_mappo",
    "train_maddpg",
    "eval_method_i",
    "eval_maddpg",
    "evaluate_fixed_pool",
    "cross_play_matrix",
    "compare_results",
)


def test_help_and_one_line_errors_do_not_import_agilerl(tmp_path):
    """AgileRL (with transformers and jax) takes 8-27 s to import: --help and a missing checkpoint must not
    wait for it."""
    probe = f"""
import importlib, json, sys
from memeplex import cli
out = {{}}
for name in {SCRIPTS!r}:
    mod = importlib.import_module(name)
    try:
        mod.main(["--help"])
    except SystemExit:
        pass
    out[name] = sorted(m for m in ("agilerl", "transformers", "jax") if m in sys.modules)
for name in ("eval_method_i", "eval_maddpg"):
    code = cli.run_cli(importlib.import_module(name).main, ["--checkpoint", {str(tmp_path / "missing.pt")!r}])
    out[name + " missing checkpoint"] = [code] + sorted(m for m in ("agilerl", "transformers") if m in sys.modules)
print(json.dumps(out))
"""
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        **{name: [] for name in SCRIPTS},
        "eval_method_i missing checkpoint": [2],
        "eval_maddpg missing checkpoint": [2],
    }


EXACT = [
    *TINY_PPO,
    "--max-steps",
    "3072",
    "--eval-interval",
    "256",
    "--eval-episodes",
    "3",
    "--final-eval-episodes",
    "5",
]


def test_sigterm_then_resume_equals_the_uninterrupted_run(tmp_path):
    """The envs' worlds, step counters and RNGs, the learner and its noise stream all travel in
    latest.pt: a run stopped by SIGTERM and resumed is the uninterrupted run, bit for bit."""
    assert train_method_i.main([*EXACT, *dirs(tmp_path / "a"), "--run-name", "x", "--seed", "5"]) == 0
    args = [sys.executable, "train_method_i.py", *EXACT, *dirs(tmp_path / "b"), "--run-name", "x", "--seed", "5"]
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    metrics = tmp_path / "b/results/spread/method_i/x_s5/metrics.csv"
    deadline = time.time() + 120
    while not (metrics.exists() and len(files.read_metrics(metrics)) >= 2) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    stopped_at = json.loads((metrics.parent / "summary.json").read_text())["env_steps"]
    assert stopped_at < 3072
    assert train_method_i.main([*dirs(tmp_path / "b"), "--run-name", "x", "--seed", "5", "--resume"]) == 0
    timing = ("wall_time", "cpu_time", "throughput", "train_time", "eval_time")
    untimed = lambda row: json.dumps({k: v for k, v in row.items() if not k.startswith(timing)}, sort_keys=True)
    whole = {r["step"]: untimed(r) for r in files.read_metrics(tmp_path / "a/results/spread/method_i/x_s5/metrics.csv")}
    parted = {r["step"]: untimed(r) for r in files.read_metrics(metrics)}
    assert max(whole) == 3072 and [s for s in whole if s > stopped_at]  # evaluations after the resume are compared
    assert all(parted[s] == row for s, row in whole.items()), "the resumed run parted from the uninterrupted one"
    summaries = [
        json.loads((d / "results/spread/method_i/x_s5/summary.json").read_text())
        for d in (tmp_path / "a", tmp_path / "b")
    ]
    assert summaries[0]["test_score"] == summaries[1]["test_score"]


def test_num_agents_trains_and_evaluates_a_larger_team(tmp_path):
    assert train_ppo.main([*TINY, *dirs(tmp_path), "--run-name", "n4", "--num-agents", "4"]) == 0
    summary = json.loads((tmp_path / "results/spread/ppo/n4_s1/summary.json").read_text())
    four = protocol.reference_scores("spread-4", "test", 4)
    assert summary["test_references"] == four and four != protocol.reference_scores("spread", "test", 4)
    ckpt = tmp_path / "checkpoints/spread/ppo/n4_s1/latest.pt"
    proc = run_script("eval_method_i.py", "--checkpoint", ckpt, "--episodes", "3")
    assert proc.returncode == 0 and "on spread-4" in proc.stdout, proc.stderr
    assert_clean_error(
        run_script("train_ppo.py", *dirs(tmp_path), "--env", "tag", "--num-agents", "4"), "is for --env spread"
    )


def test_reference_trains_evaluates_and_renders_with_its_diagnostics(tmp_path):
    """--env reference: the communication gap and both diagnostics in every metrics row, summary.json and
    the eval script's output; the GIF renders (messages drawn by mpe2's text, which needs pygame's font);
    MAPPO's centralised critic takes the task too."""
    import train_mappo

    assert train_mappo.main([*TINY, *dirs(tmp_path), "--env", "reference", "--run-name", "ref"]) == 0
    assert "test_comm_gap" in json.loads((tmp_path / "results/reference/mappo/ref_s1/summary.json").read_text())
    algo = "method_i"
    proc = run_script("train_method_i.py", *TINY, *dirs(tmp_path), "--env", "reference", "--run-name", "ref")
    assert proc.returncode == 0, proc.stderr
    results = tmp_path / "results/reference" / algo / "ref_s1"
    rows = files.read_metrics(results / "metrics.csv")
    assert len(rows) == 2 and all(0 <= r["eval_signalling"] <= 1 and "eval_listening" in r for r in rows)
    summary = json.loads((results / "summary.json").read_text())
    refs = summary["test_references"]
    assert refs == protocol.reference_scores("reference", "test", 4) and set(refs) == {"random", "oracle", "no_comm"}
    gap = (summary["test_score"] - refs["no_comm"]) / (refs["oracle"] - refs["no_comm"])
    assert summary["test_comm_gap"] == pytest.approx(gap)
    assert {"test_signalling", "test_listening", "final_eval_signalling", "last5_eval_comm_gap"} <= set(summary)
    gif = tmp_path / "ref.gif"
    ckpt = tmp_path / "checkpoints/reference" / algo / "ref_s1/latest.pt"
    proc = run_script("eval_method_i.py", "--checkpoint", ckpt, "--episodes", "4", "--render", "--out", gif)
    assert proc.returncode == 0, proc.stderr
    assert "communication gap closed" in proc.stdout and "signalling" in proc.stdout and gif.stat().st_size > 0


def _fake_run(results, algo, name, seed, score, curve=(0.1, 0.2)):
    d = results / "spread" / algo / f"{name}_s{seed}"
    files.write_json(d / "config.json", {"args": {"max_time": None}})
    files.write_json(d / "summary.json", {"test_normalised": score, "env_steps": 200_000, "interrupted": False})
    files.write_csv(
        d / "metrics.csv",
        [{"step": 10_000 * (k + 1), "eval_normalised": v, "latent_cka": 0.5} for k, v in enumerate(curve)],
    )


def test_report_tables_are_checked_against_the_runs(tmp_path):
    import compare_results

    results = tmp_path / "results"
    for seed, (a, b) in enumerate([(0.6, 0.4), (0.6, 0.5), (0.6, 0.3), (0.6, 0.2)], start=1):
        _fake_run(results, "method_i", "main-tuned", seed, a, curve=(0.3, 0.5))
        _fake_run(results, "ppo", "main-tuned", seed, b, curve=(0.1, 0.1 * seed))
    for seed, (a, b) in enumerate([(0.3, 0.5), (0.2, 0.6)], start=1):
        _fake_run(results, "method_i", "long-tuned", seed, a)
        _fake_run(results, "ppo", "long-tuned", seed, b)
    (tmp_path / "docs").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- report:spread/main.md -->\nold numbers\n<!-- /report -->\n")
    assert compare_results.report(results, check=False, root=tmp_path) == 0
    main = (results / "spread/report/main.md").read_text()
    # Method I scored 0.6 on every seed: IQM = mean = 0.6 with a zero-width interval
    assert "| Method I (LA-IPPO) | 4 | 0.600 [0.600, 0.600] | 0.600 [0.600, 0.600] |" in main
    # IPPO: the mean of 0.4, 0.5, 0.3, 0.2 is 0.35; the IQM (middle two) is (0.3 + 0.4) / 2 = 0.35
    assert "| IPPO | 4 | 0.350 [" in main and "P(Method I > IPPO) = 1.000" in main
    assert (results / "spread/report/profile.png").stat().st_size > 1000
    assert "P(Method I > IPPO) = 0.000" in (results / "spread/report/long.md").read_text()  # 2M: IPPO won every pair
    # over training: the mean of each run's evaluations, (0.3 + 0.5) / 2 = 0.4 for Method I; IPPO's
    # 0.1, 0.15, 0.2, 0.25 have IQM (0.15 + 0.2) / 2 = 0.175
    over = (results / "spread/report/main_over_training.md").read_text()
    assert "| Method I (LA-IPPO) | 4 | 0.400 [0.400, 0.400] |" in over and "| IPPO | 4 | 0.175 [" in over
    assert "P(Method I > IPPO) = 1.000" in over
    assert "| IPPO | 4 |" in readme.read_text() and "old numbers" not in readme.read_text()
    assert compare_results.report(results, check=True, root=tmp_path) == 0
    _fake_run(results, "ppo", "main-tuned", 4, 0.25)  # a changed number in the logs
    assert compare_results.report(results, check=True, root=tmp_path) == 1


def test_throughput_benchmark_runs_both_backends_and_its_table_regenerates(tmp_path):
    from memeplex.reports import benchmarks

    out = tmp_path / "benchmarks" / "throughput.json"
    proc = run_script("benchmarks/throughput.py", "--envs", "spread", "--rounds", "1", "--env-steps", "80",
                      "--train-steps", "1024", "--eval-episodes", "2", "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    train = data["results"]["spread/train"]
    assert set(train["rounds"]) == {"mpe2", "batched"} and train["ratio"] > 0
    assert set(data["load_average_1min"]) == {"start", "end"}
    table = benchmarks.report(tmp_path)["throughput.md"]
    assert f"| spread: Method I training, env steps/s | {train['median']['mpe2']:,.0f} |" in table
    assert f"**{train['ratio']:.2f}x**" in table


@pytest.mark.parametrize("script", ["train_method_i", "train_maddpg"])
def test_a_cpu_time_budget_ends_the_run_and_resumes_with_its_clock(tmp_path, script):
    """--max-cpu-time counts the process's own CPU time from the training loop's start, over resumed sessions:
    the run stops soon after the budget (an update or generation and an evaluation past it), long before its step
    budget, and a resumed run with a larger budget goes on from the clock where it stopped."""
    import train_maddpg
    from conftest import TINY_MADDPG

    main, tiny = {"train_method_i": (train_method_i.main, TINY), "train_maddpg": (train_maddpg.main, TINY_MADDPG)}[
        script
    ]
    argv = [*tiny, *dirs(tmp_path), "--run-name", "cpu", "--max-steps", "100000000"]
    assert main([*argv, "--max-cpu-time", "2"]) == 0
    algo = {"train_method_i": "method_i", "train_maddpg": "maddpg"}[script]
    summary = json.loads((tmp_path / f"results/spread/{algo}/cpu_s1/summary.json").read_text())
    assert 2 <= summary["cpu_time"] < 30 and summary["env_steps"] < 100_000_000
    first = summary["env_steps"]
    assert main([*argv, "--max-cpu-time", "4", "--resume"]) == 0
    summary = json.loads((tmp_path / f"results/spread/{algo}/cpu_s1/summary.json").read_text())
    assert 4 <= summary["cpu_time"] < 40 and summary["env_steps"] > first
