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


def test_the_ppo_learners_get_the_same_tuning_candidates_at_every_task_and_budget():
    from method_i import Config

    d = Config()  # the first candidate is the scripts' defaults
    assert rx.PPO_CONFIGS[0] == {
        "lr": d.lr,
        "ent_coef": d.ent_coef,
        "update_epochs": d.update_epochs,
        "num_minibatches": d.num_minibatches,
        "clip_coef": d.clip_coef,
        "init_log_std": d.init_log_std,
        "width": d.latent_dim,
        "norm_reward": d.norm_reward,
    }
    assert list(d.hidden_sizes) == [d.latent_dim]
    assert len({json.dumps(c, sort_keys=True) for c in rx.PPO_CONFIGS}) == rx.PPO_CANDIDATES  # distinct
    for env in suites.ENVS:
        for budget, steps in suites.BUDGETS.items():
            stage1 = rx.stage1_candidates(env, budget)
            knobs = {}
            for c in stage1:
                fixed = (*suites.ALGORITHMS[c.algorithm].fixed_flags, *suites.BUDGET_FLAGS[budget])
                if c.algorithm in suites.OFF_POLICY:
                    assert budget == "200k"
                    continue
                assert c.flags[: len(fixed)] == fixed
                own = c.flags[len(fixed) :]
                if c.algorithm == "mappo":  # its critic learns at the actors' rate
                    assert own[-2:] == ("--critic-lr", own[own.index("--lr") + 1])
                    own = own[:-2]
                knobs.setdefault(c.algorithm, []).append(own)
            assert knobs["ppo"] == knobs["ppo_shared"] == knobs["mappo"] and len(knobs["ppo"]) == rx.PPO_CANDIDATES
            assert {c.algorithm for c in stage1} == {"ppo", "ppo_shared", "mappo", *suites.OFF_POLICY} - (
                set() if budget == "200k" else set(suites.OFF_POLICY)
            )
            for c in stage1:
                for r in c.runs():  # tuning seeds, the budget, never the test seeds
                    assert r.seed in suites.TUNE_SEEDS and r.env == env
                    o = experiments.options(r.flags)
                    assert o["--max-steps"] == str(steps) and o["--final-eval-episodes"] == "0"
            names = [(suites.ALGORITHMS[c.algorithm].algo_dir, c.name) for c in stage1]
            assert len(set(names)) == len(names)


def write_summary(ctx, run, score, **more):
    """A finished run: its summary.json and a config.json with the flags it was asked for."""
    d = run.result_dir(ctx)
    d.mkdir(parents=True, exist_ok=True)
    (d / "summary.json").write_text(json.dumps({"last5_eval_normalised": score, "interrupted": False, **more}))
    args = {}
    for flag, value in experiments.options(run.args(ctx)[1:]).items():
        dest = flag[2:].replace("-", "_")
        if value is None and dest.startswith("no_"):
            args[dest[3:]] = False
        else:
            args[dest] = True if value is None else value
    (d / "config.json").write_text(json.dumps({"args": args}))


def python_lines(capsys) -> list:
    return [x for x in capsys.readouterr().out.splitlines() if x.startswith("python ")]


def test_choose_picks_the_best_candidate_and_the_suites_use_it(tmp_path, capsys):
    ctx = ctx_for(tmp_path)
    part = ["--env", "spread", "--budget", "200k", *dirs(tmp_path)]
    planted = {"ppo": 5, "ppo_shared": 2, "mappo": 7, "maddpg_pop4": 1, "maddpg_pop1": 2, "method_i": 3}
    index = {}
    for c in rx.stage1_candidates("spread", "200k"):
        i = index[c.algorithm] = index.get(c.algorithm, -1) + 1
        for r in c.runs():  # the planted candidate is best on average, not on every seed
            write_summary(ctx, r, (0.6 if i == planted[c.algorithm] else 0.1 * (i % 4)) + (r.seed - 102) * 0.35)
    ippo = [c for c in rx.stage1_candidates("spread", "200k") if c.algorithm == "ppo"][planted["ppo"]]
    assert rx.run_cli(rx.main, ["--suite", "choose", *part]) == 2  # Method I's doses have not run
    assert "error: tuning run" in capsys.readouterr().err
    assert rx.main(["--suite", "tune", "--dry-run", *part]) == 0  # they are listed on IPPO's best configuration
    doses = [x for x in python_lines(capsys) if "train_method_i.py" in x]
    assert len(doses) == len(rx.DOSES) * len(suites.TUNE_SEEDS)
    assert all(" ".join(ippo.flags) in x for x in doses)
    for i, c in enumerate(rx.dose_candidates("spread", "200k", ippo.flags)):
        for r in c.runs():
            write_summary(ctx, r, 0.7 if i == planted["method_i"] else 0.2)

    assert rx.main(["--suite", "choose", *part]) == 0
    choice = json.loads(suites.chosen_file(ctx.results, "spread", "200k").read_text())["algorithms"]
    assert list(choice) == list(suites.ALGORITHMS)
    assert choice["ppo"]["flags"] == list(ippo.flags)
    dose = list(rx.DOSES)[planted["method_i"]]
    assert choice["method_i"]["flags"] == [*ippo.flags, *rx.DOSES[dose].split()]
    assert choice["method_i"]["mean"] == pytest.approx(0.7)
    for key in ("ppo", "ppo_shared", "mappo", "maddpg_pop4", "maddpg_pop1"):
        assert choice[key]["mean"] == pytest.approx(0.6)  # (0.25 + 0.6 + 0.95) / 3
        assert choice[key]["candidates"][0]["scores"] == {
            "101": pytest.approx(0.25),
            "102": pytest.approx(0.6),
            "103": pytest.approx(0.95),
        }
    assert (
        f"**{choice['method_i']['run_name']}**"
        in suites.chosen_file(ctx.results, "spread", "200k").with_suffix(".md").read_text()
    )

    assert rx.main(["--suite", "main", "--dry-run", *part]) == 0  # the chosen flags, the power suite's seeds
    lines = [x.split() for x in python_lines(capsys)]
    per_script = {}
    for x in lines:
        per_script.setdefault((x[1], x[x.index("--run-name") + 1]), set()).add(int(x[x.index("--seed") + 1]))
    assert per_script[("train_method_i.py", "main-200k")] == set(suites.REPORT_SEEDS["200k"]) == set(range(1, 91))
    seeds = [int(x[x.index("--seed") + 1]) for x in lines]
    assert seeds == sorted(seeds)  # seed by seed: a suite stopped part-way leaves whole, paired seeds
    assert per_script[("train_maddpg.py", "main-200k-pop1")] == set(suites.MADDPG_REPORT_SEEDS)
    assert len(per_script) == len(suites.ALGORITHMS)
    assert all(" ".join(choice["mappo"]["flags"]) in " ".join(x) for x in lines if x[1] == "train_mappo.py")
    assert rx.run_cli(rx.main, ["--suite", "dose", "--dry-run", *part]) == 2  # 2M has no choice yet
    assert "chosen-2M.json" in capsys.readouterr().err

    assert rx.run_cli(rx.main, ["--suite", "cpu", "--dry-run", *part]) == 2  # needs MADDPG's main runs
    assert "main-200k-pop1_s1" in capsys.readouterr().err
    for r in rx.runs_of("maddpg_pop1", "spread", "main-200k", suites.MADDPG_REPORT_SEEDS):
        write_summary(ctx, r, 0.3, cpu_time=100.0 + r.seed)  # median 110.5
    assert rx.main(["--suite", "cpu", "--dry-run", *part]) == 0
    lines = python_lines(capsys)
    assert len(lines) == len(suites.ALGORITHMS) * len(suites.CPU_MATCHED_SEEDS)
    assert all("--max-cpu-time 110.5" in x for x in lines)

    missing = rx.stage1_candidates("spread", "200k")[0].runs()[1]
    (missing.result_dir(ctx) / "summary.json").unlink()
    assert rx.run_cli(rx.main, ["--suite", "choose", *part]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: tuning run" in err and missing.leaf in err


def test_dose_and_controls_are_methods_i_ladder_on_ippos_2m_choice(tmp_path, capsys):
    ctx = ctx_for(tmp_path)
    ippo = ("--num-envs", "128", "--rollout-length", "25", "--lr", "0.001")
    path = suites.chosen_file(ctx.results, "reference", "2M")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"algorithms": {"ppo": {"flags": list(ippo)}}}))
    part = ["--env", "reference", "--budget", "2M", *dirs(tmp_path)]
    assert rx.main(["--suite", "dose", "--dry-run", *part]) == 0
    lines = python_lines(capsys)
    assert len(lines) == len(rx.DOSE_LADDER) * len(suites.REPORT_SEEDS["2M"])
    for dose in rx.DOSE_LADDER:
        runs = [x for x in lines if f"--run-name dose-{dose} " in x]
        assert len(runs) == 10 and all(" ".join((*ippo, *rx.DOSES[dose].split())) in x for x in runs)
    assert rx.main(["--suite", "controls", "--dry-run", *part]) == 0
    lines = python_lines(capsys)
    for target in rx.CONTROL_TARGETS:
        runs = [x for x in lines if f"--run-name control-{target} " in x]
        assert len(runs) == 10 and all(f"{rx.DOSES[rx.CONTROL_DOSE]} --distill-target {target}" in x for x in runs)


def test_main_without_chosen_json_is_a_one_line_error(tmp_path, capsys):
    assert rx.run_cli(rx.main, ["--suite", "main", *dirs(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--suite tune" in err and "--suite choose" in err


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


def test_the_tag_suite_matches_maddpgs_cpu_time_and_exploits_every_final_team(tmp_path, capsys):
    ctx = ctx_for(tmp_path)
    argv = ["--suite", "tag", "--dry-run", *dirs(tmp_path)]
    assert rx.run_cli(rx.main, argv) == 2  # each algorithm runs with its spread choice at 200k
    assert "chosen-200k.json" in capsys.readouterr().err
    chosen = {k: {"flags": [f"--{k}-flag"]} for k in suites.TAG_V2_ALGOS}
    path = suites.chosen_file(ctx.results, "spread", "200k")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"algorithms": chosen}))
    assert rx.run_cli(rx.main, argv) == 2  # the CPU-matched runs need MADDPG's self-play runs
    out = capsys.readouterr()
    selfplay = [x.split() for x in out.out.splitlines() if x.startswith("python ")]
    assert len(selfplay) == len(suites.TAG_V2_ALGOS) * len(suites.TAG_SEEDS) == 20
    for x in selfplay:  # MADDPG's is the single member's
        key = {"train_maddpg.py": "maddpg_pop1", "train_ppo.py": "ppo"}.get(x[1], x[1][6:-3])
        assert x[x.index("--run-name") + 2] == f"--{key}-flag"
    assert "selfplay-v2_s1, which has not finished" in out.err
    flags = {"maddpg_pop1": ("--maddpg_pop1-flag",)}
    for r in rx.tag_runs(suites.SELFPLAY_V2_RUN, ["maddpg_pop1"], suites.TAG_SEEDS, flags, "--max-steps", "200000"):
        write_summary(ctx, r, 0.0, cpu_time=200.0 + r.seed)  # median 203
    assert rx.main(argv) == 0
    lines = python_lines(capsys)
    cpu = [x for x in lines if "--run-name selfplay-v2-cpu " in x]
    assert len(cpu) == 15 and all("--max-cpu-time 203" in x for x in cpu)
    assert not any("train_maddpg.py" in x for x in cpu)
    pools = [x for x in lines if x.startswith("python evaluate_fixed_pool.py")]
    assert len(pools) == 2 * len(suites.TAG_SEEDS) and all("--algos method_i ppo mappo maddpg " in x for x in pools)
    responders = [x for x in lines if "--opponent" in x]
    assert len(responders) == 4 * 5 * 2 * len(suites.BEST_RESPONSE_SEEDS)
    assert all("selfplay-v2_s" in x.split("--opponent ")[1].split()[0] for x in responders)


def test_chosen_md_shows_what_every_candidate_shares_once():
    from memeplex.tuning import shared_prefix

    assert shared_prefix([["--a", "1", "--b", "2", "--c", "3"], ["--a", "1", "--b", "2", "--c", "4"]]) == [
        "--a", "1", "--b", "2"]  # fmt: skip
    assert shared_prefix([["--h", "64", "--l"], ["--h", "64", "64"]]) == []  # never splits an option's values
    assert shared_prefix([["--x", "-0.5", "--y"], ["--x", "-0.5", "--z"]]) == ["--x", "-0.5"]  # a negative value
