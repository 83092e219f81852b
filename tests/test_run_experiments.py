"""run_experiments.py: runs through local Ray, skipping and resuming, dry runs,
failures, cancellation, and the tuning choice on a synthetic results tree."""

import json
import sys
import time

import pytest
import ray

import run_experiments as rx
from conftest import TINY_PPO, dirs
from memeplex import experiments, suites
from memeplex.reports import spread

TINY = tuple(TINY_PPO)  # the run's own --no-progress is added by Run.args too


def tiny_suite(ctx):
    yield (
        "two tiny IPPO runs",
        [experiments.Run("train_ppo.py", "spread", "ppo", "tiny", seed, TINY) for seed in (1, 2)],
    )


def failing_suite(ctx):
    yield (
        "one good run, one bad",
        [
            experiments.Run("train_ppo.py", "spread", "ppo", "good", 1, TINY),
            experiments.Run("train_ppo.py", "spread", "ppo", "bad", 1, (*TINY, "--lr", "-1")),
        ],
    )


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def ctx_for(tmp_path, **kw):
    return experiments.Context(tmp_path / "results", tmp_path / "checkpoints", **kw)


def test_tiny_suite_runs_as_ray_tasks_then_skips(tmp_path, monkeypatch, capsys, local_ray):
    monkeypatch.setitem(rx.SUITES, "tiny", tiny_suite)
    argv = ["--suite", "tiny", *dirs(tmp_path)]
    assert rx.main([*argv, "--dry-run"]) == 0  # lists the two commands, runs nothing
    out = capsys.readouterr().out
    assert "0 finished, 0 to resume, 2 to start" in out
    assert out.count("python train_ppo.py --env spread --seed") == 2 and "--run-name tiny" in out
    assert not (tmp_path / "results").exists()

    t0 = time.perf_counter()
    assert rx.main(argv) == 0
    for seed in (1, 2):
        run = tmp_path / f"results/spread/ppo/tiny_s{seed}"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["env_steps"] == 1024 and not summary["interrupted"] and "test_score" in summary
        log = (run / "driver.log").read_text()
        assert "train_ppo.py" in log and "# exit code 0" in log
    out = capsys.readouterr().out
    assert out.count("start ") == 2 and out.count("done ") == 2
    print(f"two tiny runs through Ray: {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    assert rx.main(argv) == 0  # everything finished: skipped, nothing started
    out = capsys.readouterr().out
    assert "2 finished, 0 to resume, 0 to start" in out and "start " not in out
    assert rx.main([*argv, "--dry-run"]) == 0
    assert "python train_ppo.py" not in capsys.readouterr().out


def test_failed_run_is_reported_and_the_others_finish(tmp_path, monkeypatch, capsys, local_ray):
    monkeypatch.setitem(rx.SUITES, "failing", failing_suite)
    assert rx.main(["--suite", "failing", *dirs(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "bad_s1: exit code 2" in err
    assert "error:" in err  # the tail of the failed run's log: the script's one-line error
    assert (tmp_path / "results/spread/ppo/good_s1/summary.json").exists()


def test_cancelled_task_stops_its_script_gracefully(tmp_path, local_ray):
    """ray.cancel (what Ctrl-C in the driver does) must reach the script as
    SIGTERM, so it can save latest.pt, even though Ray blocks signals."""
    script = tmp_path / "sleeper.py"
    script.write_text(
        "import signal, sys, time\n"
        "def stop(signum, frame):\n"
        f"    open({str(tmp_path / 'stopped')!r}, 'w').write(str(signum)); sys.exit(128 + signum)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "driver.log"
    experiments.ensure_ray(ctx_for(tmp_path))  # the running local Ray; ships train_task by value
    ref = ray.remote(num_cpus=1)(experiments.train_task).remote([str(script)], str(tmp_path), str(log), 10.0)
    deadline = time.time() + 30
    while "started" not in (log.read_text() if log.exists() else "") and time.time() < deadline:
        time.sleep(0.2)
    t0 = time.time()
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=30)
    assert time.time() - t0 < 10
    assert (tmp_path / "stopped").read_text() == "15"
    assert "stopped by the driver; exit code 143" in log.read_text()


def test_status_skips_resumes_and_blocks(tmp_path):
    ctx = ctx_for(tmp_path)
    run = experiments.Run("train_ppo.py", "spread", "ppo", "x", 1, ("--lr", "0.001", "--max-steps", "1024"))
    assert experiments.status(run, ctx)[0] == "new"
    run.ckpt_dir(ctx).mkdir(parents=True)
    (run.ckpt_dir(ctx) / "latest.pt").write_bytes(b"")
    run.result_dir(ctx).mkdir(parents=True)
    (run.result_dir(ctx) / "config.json").write_text(
        json.dumps({"args": {"env": "spread", "seed": 1, "lr": 0.001, "max_steps": 1024, "progress": False}})
    )
    (run.result_dir(ctx) / "summary.json").write_text(json.dumps({"interrupted": True}))
    assert experiments.status(run, ctx)[0] == "resume"  # interrupted, with a checkpoint: --resume
    assert "--resume" in run.args(ctx, resume=True)
    (run.result_dir(ctx) / "summary.json").write_text(json.dumps({"interrupted": False}))
    assert experiments.status(run, ctx)[0] == "finished"
    other = experiments.Run("train_ppo.py", "spread", "ppo", "x", 1, ("--lr", "0.002", "--max-steps", "1024"))
    state, detail = experiments.status(other, ctx)  # the same directory, made with other flags: never silently reused
    assert state == "blocked" and "--lr 0.001" in detail
    (run.result_dir(ctx) / "summary.json").unlink()
    (run.ckpt_dir(ctx) / "latest.pt").unlink()
    state, detail = experiments.status(run, ctx)  # started, died before any checkpoint
    assert state == "blocked" and "no checkpoint" in detail
    maddpg = experiments.Run("train_maddpg.py", "spread", "maddpg", "x", 1, ())
    maddpg.ckpt_dir(ctx).mkdir(parents=True)
    (maddpg.ckpt_dir(ctx) / "latest.pt").write_bytes(b"")
    assert experiments.status(maddpg, ctx)[0] == "resume"  # MADDPG's latest.pt resumes exactly too


def test_ippo_and_method_i_get_the_same_ppo_sweep():
    stage1 = rx.stage1_candidates()
    ppo = [c.flags for c in stage1 if c.algorithm == "ppo"]
    mi = [c.flags[: len(c.flags) - 6] for c in stage1 if c.algorithm == "method_i"]
    assert len(ppo) == rx.PPO_DRAWS and ppo == mi
    assert rx.draw(rx.PPO_GRID, rx.PPO_DRAWS, rx.PPO_DRAW_SEED) == rx.PPO_CONFIGS  # drawn once, reproducibly
    assert all(r.seed in rx.TUNE_SEEDS and "--final-eval-episodes" in r.flags for c in stage1 for r in c.runs())
    names = [(c.algorithm, c.name) for c in stage1]
    assert len(set(names)) == len(names)


def write_summary(ctx, run, score):
    d = run.result_dir(ctx)
    d.mkdir(parents=True, exist_ok=True)
    (d / "summary.json").write_text(json.dumps({"last5_eval_normalised": score, "interrupted": False}))


def test_choose_picks_the_best_candidate_and_names_a_missing_run(tmp_path, capsys):
    ctx = ctx_for(tmp_path)
    argv = ["--suite", "choose", *dirs(tmp_path)]
    planted = {"ppo": 5, "method_i": 2, "maddpg_pop4": 1, "maddpg_pop1": 3}
    index = {}
    for c in rx.stage1_candidates():
        i = index[c.algorithm] = index.get(c.algorithm, -1) + 1
        for r in c.runs():  # the planted candidate is best on average, not on every seed
            write_summary(ctx, r, (0.6 if i == planted[c.algorithm] else 0.1 * (i % 4)) + (r.seed - 102) * 0.35)
    stage2 = rx.stage2_candidates(rx.PPO_CONFIGS[2])  # around Method I's best stage-1 PPO configuration
    assert stage2[0].name == [c for c in rx.stage1_candidates() if c.algorithm == "method_i"][2].name
    ring = [c for c in stage2 if "-ring" in c.name][0]
    for c in stage2[1:]:
        for r in c.runs():
            write_summary(ctx, r, 0.7 if c is ring else 0.2)

    assert rx.main(argv) == 0
    choice = json.loads((tmp_path / "results/spread/tuning/chosen.json").read_text())["algorithms"]
    by_algo = {}
    for c in rx.stage1_candidates():
        by_algo.setdefault(c.algorithm, []).append(c)
    assert choice["method_i"]["run_name"] == ring.name and choice["method_i"]["flags"] == list(ring.flags)
    assert choice["method_i"]["mean"] == pytest.approx(0.7)
    assert len(choice["method_i"]["candidates"]) == rx.PPO_DRAWS + len(stage2) - 1
    for key in ("ppo", "maddpg_pop4", "maddpg_pop1"):
        assert choice[key]["run_name"] == by_algo[key][planted[key]].name
        assert choice[key]["mean"] == pytest.approx(0.6)  # (0.25 + 0.6 + 0.95) / 3
        assert [c["mean"] for c in choice[key]["candidates"]] == sorted(
            (c["mean"] for c in choice[key]["candidates"]), reverse=True
        )
        assert choice[key]["candidates"][0]["scores"] == {
            "101": pytest.approx(0.25),
            "102": pytest.approx(0.6),
            "103": pytest.approx(0.95),
        }
    assert f"**{ring.name}**" in (tmp_path / "results/spread/tuning/chosen.md").read_text()

    assert rx.main(["--suite", "main", "--dry-run", *dirs(tmp_path)]) == 0  # main uses the chosen flags
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("python ")]
    assert len(lines) == 4 * len(rx.REPORT_SEEDS)
    assert all("--topology ring" in x for x in lines if "train_method_i.py" in x)
    assert rx.main(["--suite", "ablation", "--dry-run", *dirs(tmp_path)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("python ")]
    names = {x.split("--run-name ")[1].split()[0] for x in lines}
    assert {
        "abl-chosen",
        "abl-topology-none",
        "abl-target-shuffled",
        "abl-target-random-encoder",
        "abl-weight-10",
        "abl-interval-50",
    } <= names and "abl-topology-ring" not in names  # = the chosen one
    assert all("--distill-weight" not in x for x in lines if "abl-topology-none" in x)
    assert rx.run_cli(rx.main, ["--suite", "wallclock", "--dry-run", *dirs(tmp_path)]) == 2
    assert "main-tuned-pop4_s1 has not finished" in capsys.readouterr().err

    missing = [r for r in by_algo["maddpg_pop1"][0].runs()][1]
    (missing.result_dir(ctx) / "summary.json").unlink()
    assert rx.run_cli(rx.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: tuning run" in err and missing.leaf in err


def test_main_without_chosen_json_is_a_one_line_error(tmp_path, capsys):
    assert rx.run_cli(rx.main, ["--suite", "main", *dirs(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--suite tune" in err and "--suite choose" in err


def test_the_reports_look_for_the_runs_the_suites_make():
    """The spread report's main rows are the main suite's runs (one definition: memeplex.suites)."""
    main = [r for key in suites.ALGORITHMS for r in rx.runs_of(key, suites.MAIN_RUN, [1])]
    assert [(r.algo, r.name) for r in main] == [(algo, name) for _, algo, name in spread.MAIN]
    assert [label for label, _, _ in spread.MAIN] == [a.label for a in suites.ALGORITHMS.values()]
    chosen = rx.ppo_flags(rx.PPO_CONFIGS[0]) + rx.distill_flags(rx.DISTILL_CENTRE)
    names = [name for name, _ in rx.ablation_variants(chosen)]
    assert all(name.startswith(suites.ABLATION_PREFIX) for name in names) and "abl-chosen" in names


def test_cluster_tasks_carry_the_files_their_runs_need(tmp_path, monkeypatch):
    """What a cluster task is given: a resumed run's results and checkpoint directories and every file a flag
    names (the flag then points at the task's copy); what comes home is written under the driver's dirs."""
    monkeypatch.chdir(tmp_path)
    ctx = ctx_for(tmp_path)
    opponent = tmp_path / "checkpoints/tag/ppo/selfplay_s1/latest.pt"
    own = tmp_path / "checkpoints/tag/ppo/br_s1"
    files = {opponent: b"opponent", tmp_path / "results/tag/ppo/br_s1/metrics.csv": b"step\n",
             own / "latest.pt": b"state", own / "step_000000512.pt": b"snap"}  # fmt: skip
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    run = experiments.Run("train_ppo.py", "tag", "ppo", "br", 1, ("--opponent", ctx.rel(opponent), "--team", "prey"))
    given, shipped = experiments.task_inputs(run, False, ctx)
    assert given == {"inputs/1/latest.pt": b"opponent"}
    assert shipped.flags == ("--opponent", "{task_dir}/inputs/1/latest.pt", "--team", "prey")
    given, _ = experiments.task_inputs(run, True, ctx)
    names = {"results/tag/ppo/br_s1/metrics.csv", "checkpoints/tag/ppo/br_s1/latest.pt",
             "checkpoints/tag/ppo/br_s1/step_000000512.pt"}  # fmt: skip
    assert set(given) == {"inputs/1/latest.pt", *names}
    home = ctx_for(tmp_path / "driver")
    experiments.bring_home(run, {"results": {"summary.json": b"{}"}, "checkpoints": {"latest.pt": b"x"}}, home)
    assert (home.results / "tag/ppo/br_s1/summary.json").read_bytes() == b"{}"
    assert (home.checkpoints / "tag/ppo/br_s1/latest.pt").read_bytes() == b"x"


def test_the_power_suite_pairs_method_i_and_ippo_on_tuning_seeds(tmp_path, capsys):
    assert rx.main(["--suite", "power", "--dry-run", *dirs(tmp_path)]) == 0
    lines = [x.split() for x in capsys.readouterr().out.splitlines() if x.startswith("python ")]
    runs = {(x[1], x[x.index("--max-steps") + 1], int(x[x.index("--seed") + 1])): x for x in lines}
    assert len(runs) == len(lines) == 2 * sum(len(s) for s in suites.POWER_SEEDS.values())
    for steps, seeds in suites.POWER_SEEDS.items():
        for script in ("train_method_i.py", "train_ppo.py"):  # the same seeds for both: paired
            assert {s for sc, st, s in runs if sc == script and st == str(steps)} == set(seeds)
        assert all(101 <= s <= 199 for s in seeds)  # tuning seeds only
    for x in lines:
        assert x[x.index("--final-eval-episodes") + 1] == "0"  # never the test seeds
        assert ("--rollout-length" in x) == (x[x.index("--max-steps") + 1] == "2000000")
