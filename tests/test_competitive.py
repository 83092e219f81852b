"""Tag (predator-prey): the win detector, that the win metric can go both ways,
Elo and exploitability maths, the rolling pool, and every tag script end to end."""

import json
import shutil

import numpy as np
import pytest
import torch

import train_maddpg
import train_method_i
import train_ppo
from conftest import ChasingPredators, FleeingPrey, StationaryPolicy, assert_clean_error, dirs, run_script
from memeplex import checkpoints, competitive, errors, protocol
from memeplex.envs import spec
from memeplex.files import read_metrics, write_json


def _world(seed=0):
    env = spec.make_env("tag")
    env.reset(seed=seed)
    return env, env.unwrapped.world


def test_win_detector_on_constructed_world_states():
    env, world = _world()
    predators = [a for a in world.agents if a.adversary]
    prey = next(a for a in world.agents if not a.adversary)
    far = [np.array([-0.9, -0.9]), np.array([0.9, -0.9]), np.array([-0.9, 0.9])]
    for p, pos in zip(predators, far):
        p.state.p_pos = pos.copy()
    prey.state.p_pos = np.array([0.9, 0.9])
    assert protocol.predator_prey_contacts(world) == 0
    # just inside and just outside the sum of the radii (0.075 + 0.05)
    predators[0].state.p_pos = prey.state.p_pos + np.array([0.124, 0.0])
    assert protocol.predator_prey_contacts(world) == 1
    predators[0].state.p_pos = prey.state.p_pos + np.array([0.126, 0.0])
    assert protocol.predator_prey_contacts(world) == 0
    for p in predators[:2]:  # two predators on the prey at once
        p.state.p_pos = prey.state.p_pos.copy()
    assert protocol.predator_prey_contacts(world) == 2
    env.close()


def test_win_metric_goes_both_ways():
    seeds = protocol.eval_seeds("validation", 100)
    rnd = competitive.play("tag", protocol.RandomPolicy("tag", 1), protocol.RandomPolicy("tag", 2), seeds)
    assert 0.05 < rnd["wins"].mean() < 0.95  # predators can lose: not a reward-sign artefact
    assert (rnd["wins"] == (rnd["contacts"] > 0)).all()
    chase = ChasingPredators()
    stationary = competitive.play("tag", chase, StationaryPolicy("tag"), seeds)["wins"].mean()
    fleeing = competitive.play("tag", chase, FleeingPrey(), seeds)["wins"].mean()
    assert stationary > 0.9 and fleeing < 0.3 and stationary - fleeing > 0.5


def test_contacts_match_the_predators_collision_reward():
    # simple_tag pays every predator +10 per predator-prey collision (a team reward): the world-state count agrees
    seeds = protocol.eval_seeds("validation", 20)
    out = protocol.run_episodes("tag", competitive.combine("tag", ChasingPredators(), StationaryPolicy("tag")), seeds)
    assert out["contacts"].sum() > 20
    for a in spec.teams("tag")["predator"]:
        np.testing.assert_allclose(out["returns"][a], 10.0 * out["contacts"])


def test_elo_maths():
    assert competitive.elo_expected(1000, 1000) == pytest.approx(0.5)
    assert competitive.elo_expected(1200, 1000) == pytest.approx(1 / (1 + 10 ** (-0.5)))
    assert competitive.elo_expected(1200, 1000) + competitive.elo_expected(1000, 1200) == pytest.approx(1.0)
    assert competitive.elo_update(1000, 1000, 1.0) == pytest.approx(1016.0)
    assert competitive.elo_update(1000, 1000, 0.0) == pytest.approx(984.0)
    assert competitive.elo_update(1000, 1000, 0.5) == pytest.approx(1000.0)
    r = competitive.elo_update(1000, 1000, 1.0)
    assert competitive.elo_rate(1000, [(1000, 1.0), (1000, 0.0)]) == pytest.approx(
        r + 32 * (0 - competitive.elo_expected(r, 1000))
    )
    # many wins against a fixed 1000 pool: converges up, never past where expected = actual
    assert 1000 < competitive.elo_rate(1000, [(1000, 1.0)] * 50) < 1000 + 400 * 3
    assert competitive.interleave([(1, [1, 0]), (2, [0])]) == [(1, 1.0), (2, 0.0), (1, 0.0)]
    # performance rating: 75% against 1000-rated opponents is 1000 + 400 log10(3); even score = the opponents' mean
    assert competitive.performance_rating([(1000, 1.0)] * 3 + [(1000, 0.0)]) == pytest.approx(
        1000 + 400 * np.log10(3), abs=1e-6
    )
    assert competitive.performance_rating([(900, 1.0), (1100, 0.0)]) == pytest.approx(1000, abs=1e-6)
    assert np.isfinite(competitive.performance_rating([(1000, 1.0)] * 10))
    games = [(1000, 1.0)] * 3 + [(1000, 0.0)]
    k32 = [competitive.elo_rate(1000, games * 200)]  # game-by-game K=32 hovers around it
    assert abs(k32[0] - competitive.performance_rating(games)) < 100


def test_exploitability_proxy():
    assert competitive.exploitability([0.9, 0.6]) == 0.0
    assert competitive.exploitability([0.9, 0.2]) == pytest.approx(0.3)
    assert competitive.exploitability([0.0]) == 0.5
    assert np.isnan(competitive.exploitability([]))


def test_pool_rotation_keeps_files_and_rates_a_strong_team_up(tmp_path):
    loaded = []

    def load(path):
        loaded.append(path)
        return StationaryPolicy("tag")

    pool = competitive.SelfPlayPool("tag", size=5, episodes=10, load_policy=load)
    for step in range(1, 8):
        path = tmp_path / f"step_{step}.pt"
        path.write_bytes(b"x")
        pool.add(step, path)
    assert [e["step"] for e in pool.entries] == [3, 4, 5, 6, 7]
    assert all((tmp_path / f"step_{s}.pt").exists() for s in range(1, 8))  # rotation deletes nothing
    # scripted chasers vs stationary pool prey: predators win every game, so their Elo rises
    strong = competitive.combine("tag", ChasingPredators(), FleeingPrey())
    row = pool.evaluate(strong)
    assert row["predator_elo"] > 1100 and row["predator_exploitability"] == 0.0
    assert row["predator_min_win_vs_pool"] == 1.0 and row["pool"] == "3 4 5 6 7"
    assert row["prey_elo"] > 1000  # the fleeing prey escapes stationary predators
    assert pool.ratings["predator"] == row["predator_elo"]
    frozen = pool.evaluate(strong, update=False)
    assert pool.ratings["predator"] == row["predator_elo"] and frozen["predator_elo"] > row["predator_elo"]
    # the pool survives a checkpoint round trip; a pruned snapshot is a clear error
    state = json.loads(json.dumps(pool.state_dict()))
    again = competitive.SelfPlayPool("tag", size=5, episodes=10, load_policy=load)
    again.load_state_dict(state)
    assert [e["step"] for e in again.entries] == [3, 4, 5, 6, 7] and again.ratings == pool.ratings
    (tmp_path / "step_3.pt").unlink()
    with pytest.raises(errors.UsageError, match="step_3.pt is missing"):
        again.load_state_dict(state)
    labels, m = pool.matrix(episodes=4)
    assert labels[0] == "random" and m.shape == (6, 6)


TAG = [
    "--env",
    "tag",
    "--max-steps",
    "1024",
    "--num-envs",
    "2",
    "--eval-interval",
    "512",
    "--elo-episodes",
    "2",
    "--matrix-interval",
    "1024",
    "--matrix-episodes",
    "2",
    "--final-eval-episodes",
    "10",
    "--pool-size",
    "2",
    "--no-progress",
]
PPO = ["--rollout-length", "64", "--update-epochs", "1"]
MADDPG = [
    "--evo-steps",
    "256",
    "--population-size",
    "2",
    "--learning-delay",
    "64",
    "--batch-size",
    "32",
    "--fitness-episodes",
    "1",
]


@pytest.fixture(scope="module")
def tag_runs(tmp_path_factory):
    """Tiny tag runs of all three algorithms (the 'main' run of the step pool set)."""
    root = tmp_path_factory.mktemp("tag")
    assert train_method_i.main([*TAG, *PPO, *dirs(root), "--run-name", "selfplay"]) == 0
    assert train_ppo.main([*TAG, *PPO, *dirs(root), "--run-name", "selfplay"]) == 0
    assert train_maddpg.main([*TAG, *MADDPG, *dirs(root), "--run-name", "selfplay"]) == 0
    return root


def test_tag_training_writes_competitive_metrics(tag_runs):
    for algo in ("method_i", "ppo", "maddpg"):
        run = tag_runs / "results/tag" / algo / "selfplay_s1"
        rows = read_metrics(run / "metrics.csv")
        assert [r["step"] for r in rows][-1] >= 1024
        for r in rows:
            assert 0 <= r["predator_win_vs_random"] <= 1 and 0 <= r["prey_exploitability"] <= 0.5
            assert r["elo_episodes"] == 2
        assert str(rows[-1]["pool"]).split() == [str(r["step"]) for r in rows[-2:]]  # rolling pool of 2
        summary = json.loads((run / "summary.json").read_text())
        for key in (
            "predator_elo",
            "prey_elo",
            "predator_exploitability",
            "test_predator_win_vs_random",
            "test_prey_win_vs_random_ci",
            "throughput_without_eval",
        ):
            assert key in summary, (algo, key)
        assert (run / "training_plot.png").stat().st_size > 1000
        assert list(run.glob("win_matrix_step_*.png")) and list(run.glob("win_matrix_step_*.csv"))
        ckpts = sorted(p.name for p in (tag_runs / "checkpoints/tag" / algo / "selfplay_s1").glob("step_*.pt"))
        assert len(ckpts) == len(rows)  # every pool snapshot is still on disk


def test_method_i_tag_distills_predators_only(tag_runs):
    from method_i import LAIPPO

    state = checkpoints.load_checkpoint(tag_runs / "checkpoints/tag/method_i/selfplay_s1/latest.pt")
    learner = LAIPPO.from_state_dict(state["learner"])
    sizes = sorted(len(g.agent_ids) for g in learner.groups)
    assert sizes == [1, 3]  # the prey is alone in its group: it has no distillation peer


def test_tag_resume_restores_the_pool(tmp_path):
    assert train_method_i.main([*TAG, *PPO, *dirs(tmp_path), "--run-name", "r", "--max-steps", "512"]) == 0
    assert train_method_i.main([*TAG, *PPO, *dirs(tmp_path), "--run-name", "r", "--max-steps", "1024", "--resume"]) == 0
    rows = read_metrics(tmp_path / "results/tag/method_i/r_s1/metrics.csv")
    assert [r["step"] for r in rows] == [512, 1024] and rows[-1]["pool"] == "512 1024"


def test_fixed_pool_and_cross_play(tag_runs, tmp_path):
    common = ["--checkpoint-dir", tag_runs / "checkpoints", "--results-dir", tmp_path, "--episodes", "10"]
    proc = run_script("evaluate_fixed_pool.py", "--pool-set", "step", *common)
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "tag/fixed_pool_step_s1.json").read_text())
    assert out["pool"][0] == "random" and len(out["pool"]) == 1 + 3 * 2
    for algo in ("method_i", "ppo", "maddpg"):
        summary = json.loads((tag_runs / "results/tag" / algo / "selfplay_s1/summary.json").read_text())
        for team in ("predator", "prey"):
            res = out["results"][algo][team]
            assert len(res["win_rates"]) == 7 and 0 <= res["exploitability"] <= 0.5
            # every pairing meets the same random team: the run's own test games against random agree
            assert res["win_rates"]["random"] == pytest.approx(summary[f"test_{team}_win_vs_random"]), (algo, team)
    assert "Predator Elo (fixed pool)" in (tmp_path / "tag/fixed_pool_step_s1.md").read_text()
    proc = run_script("cross_play_matrix.py", "--pool-set", "step", "--algos", "maddpg", "method_i", *common)
    assert proc.returncode == 0, proc.stderr
    for name in ("maddpg_vs_method_i", "method_i_vs_maddpg"):
        assert (tmp_path / f"tag/cross_play_step_s1/{name}.png").stat().st_size > 1000
        assert len(read_metrics(tmp_path / f"tag/cross_play_step_s1/{name}.csv")) == 2
    # the wallclock pool set lacks the time-matched runs: they are named, the rest is still rated
    proc = run_script("evaluate_fixed_pool.py", "--pool-set", "wallclock", *common)
    assert proc.returncode == 0, proc.stderr
    assert (
        "missing run: method_i" in proc.stderr and "train_ppo.py --env tag --run-name selfplay-wallclock" in proc.stderr
    )
    assert list(json.loads((tmp_path / "tag/fixed_pool_wallclock_s1.json").read_text())["results"]) == ["maddpg"]
    proc = run_script("evaluate_fixed_pool.py", "--pool-set", "step", "--seed", "7", *common)
    assert_clean_error(proc, "no tag runs for pool set 'step'")


def test_fixed_pool_of_several_run_names_on_validation_seeds(tag_runs, tmp_path):
    """Two settings of one algorithm (--run-name A B) rated against a pool of both, on the validation seeds."""
    ck = tmp_path / "checkpoints"
    shutil.copytree(tag_runs / "checkpoints/tag/maddpg/selfplay_s1", ck / "tag/maddpg/selfplay_s1")
    shutil.copytree(tag_runs / "checkpoints/tag/maddpg/selfplay_s1", ck / "tag/maddpg/copy_s1")
    common = ["--checkpoint-dir", ck, "--results-dir", tmp_path, "--episodes", "2", "--algos", "maddpg"]
    proc = run_script("evaluate_fixed_pool.py", "--run-name", "selfplay", "copy", "--split", "validation", *common)
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "tag/fixed_pool_run-selfplay+copy_validation_s1.json").read_text())
    assert out["split"] == "validation" and out["run_name"] == ["selfplay", "copy"]
    assert list(out["results"]) == ["maddpg-selfplay", "maddpg-copy"] and len(out["pool"]) == 1 + 2 * 2
    assert out["results"]["maddpg-selfplay"]["predator"] == out["results"]["maddpg-copy"]["predator"]  # same run
    # the validation seeds: against random, the run's own last evaluation (2 validation episodes) is replayed
    last = read_metrics(tag_runs / "results/tag/maddpg/selfplay_s1/metrics.csv")[-1]
    for team in ("predator", "prey"):
        assert out["results"]["maddpg-copy"][team]["win_rates"]["random"] == last[f"{team}_win_vs_random"], team
    proc = run_script("evaluate_fixed_pool.py", "--run-name", "nope", "other", *common)
    assert_clean_error(proc, "no tag runs for run name 'nope other'")


def test_eval_scripts_on_tag_checkpoints(tag_runs, tmp_path):
    mi = tag_runs / "checkpoints/tag/method_i/selfplay_s1/latest.pt"
    md = tag_runs / "checkpoints/tag/maddpg/selfplay_s1/latest.pt"
    proc = run_script(
        "eval_method_i.py",
        "--checkpoint",
        mi,
        "--episodes",
        "3",
        "--opponent",
        md,
        "--render",
        "--out",
        tmp_path / "chase.gif",
    )
    assert proc.returncode == 0, proc.stderr
    assert "vs random: predators win" in proc.stdout and "vs opponent" in proc.stdout
    assert (tmp_path / "chase.gif").stat().st_size > 1000
    proc = run_script("eval_maddpg.py", "--checkpoint", md, "--episodes", "3")
    assert proc.returncode == 0 and "vs itself" in proc.stdout, proc.stderr
    spread_opponent = run_script("eval_method_i.py", "--checkpoint", mi, "--opponent", tmp_path / "nope.pt")
    assert_clean_error(spread_opponent, "checkpoint not found")


def test_compare_results_on_tag(tag_runs, tmp_path):
    proc = run_script(
        "compare_results.py", "--env", "tag", "--results-dir", tag_runs / "results", "--out-dir", tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "comparison.md").read_text()
    assert "Predator Elo (final, rolling pool)" in md and "MADDPG [selfplay]" in md and "IPPO [selfplay]" in md
    table = json.loads((tmp_path / "comparison.json").read_text())
    summary = json.loads((tag_runs / "results/tag/ppo/selfplay_s1/summary.json").read_text())
    assert table["IPPO [selfplay]"]["prey_elo"]["mean"] == pytest.approx(summary["prey_elo"])
    assert (tmp_path / "comparison_plot.png").stat().st_size > 1000


def test_tag_report_tables_fixed_pools_and_self_play(tmp_path):
    from memeplex.reports import tag

    tag_dir = tmp_path / "tag"
    for seed, rate in ((1, 0.25), (2, 0.75)):
        res = {"maddpg": {"predator": {"win_rate_vs_pool": rate}, "prey": {"win_rate_vs_pool": 1 - rate}}}
        write_json(tag_dir / f"fixed_pool_step_s{seed}.json", {"pool_set": "step", "seed": seed, "results": res})
        summary = {key: 0.1 * seed for key, _ in tag.TAG_SELFPLAY_METRICS}
        write_json(tag_dir / "ppo" / f"selfplay_s{seed}" / "summary.json",
                        {**summary, "env_steps": 1000 * seed, "wall_time": 10.0 * seed})  # fmt: skip
    out = tag.report(tmp_path)
    md = out["fixed_pool.md"]
    assert "| step | 1 | 0 | 0.250 | 0.750 |" in md and "| step | 2 | 0 | 0.750 | 0.250 |" in md
    assert "| step: mean [95% CI] | 2 seeds | | 0.500 [0.250, 0.750] | 0.500 [0.250, 0.750] |" in md
    # IPPO's two seeds score 0.1 and 0.2 on every metric: mean 0.15, the bootstrap's extremes as the interval
    row = next(line for line in out["selfplay.md"].splitlines() if line.startswith("| IPPO |"))
    assert row.startswith("| IPPO | 1, 2 | 1,500 | 15 | 0.15 [0.10, 0.20]<br>(0.10 / 0.20) |")
    assert tag.report(tmp_path / "nothing") == {}


def test_loading_any_checkpoint_leaves_global_rng_alone(tag_runs):
    import random

    import torch

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    for algo in ("method_i", "ppo", "maddpg"):
        checkpoints.load_policy(tag_runs / "checkpoints/tag" / algo / "selfplay_s1/latest.pt", "tag")
    assert random.getstate() == states[0]
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), states[1]))
    assert torch.equal(torch.get_rng_state(), states[2])


def _noise_of_tag_run(monkeypatch, argv):
    """Train a tiny tag run; return the standard-normal action noise of every stochastic act
    call and, for each pool snapshot taken, how many had been drawn by then."""
    import method_i

    noise, marks = [], []
    real_act, real_add = method_i.AgentGroup.act, competitive.SelfPlayPool.add

    def act(self, obs, deterministic=False, generator=None):
        out = real_act(self, obs, deterministic, generator)
        if not deterministic:
            with torch.inference_mode():  # the acting tensors are inference tensors, as in act
                t = self._acting_tensors()
                noise.append((out[0] - self._forward(t, obs)[0]) / t.std)
        return out

    def add(self, step, path):
        marks.append(len(noise))
        return real_add(self, step, path)

    monkeypatch.setattr(method_i.AgentGroup, "act", act)
    monkeypatch.setattr(competitive.SelfPlayPool, "add", add)
    assert train_method_i.main(argv) == 0
    monkeypatch.undo()
    return noise, marks


SMALL_TAG = [
    "--env",
    "tag",
    "--num-envs",
    "2",
    "--rollout-length",
    "32",
    "--update-epochs",
    "1",
    "--eval-interval",
    "64",
    "--elo-episodes",
    "1",
    "--matrix-episodes",
    "1",
    "--final-eval-episodes",
    "0",
    "--pool-size",
    "2",
    "--no-progress",
]


def test_each_seed_keeps_its_own_noise_after_evaluations_and_resume(tmp_path, monkeypatch):
    """Loading pool snapshots must not reseed anything: after an evaluation, two seeds still draw
    different action noise, and a resumed run continues the noise stream it saved."""
    runs = {
        seed: _noise_of_tag_run(
            monkeypatch, [*SMALL_TAG, *dirs(tmp_path), "--run-name", "n", "--seed", str(seed), "--max-steps", "192"]
        )
        for seed in (1, 2)
    }
    (n1, marks), (n2, _) = runs[1], runs[2]
    after = marks[0]  # the first act after the first evaluation
    assert not torch.allclose(n1[after], n2[after])
    first, _ = _noise_of_tag_run(monkeypatch, [*SMALL_TAG, *dirs(tmp_path), "--run-name", "r", "--max-steps", "64"])
    resumed, _ = _noise_of_tag_run(
        monkeypatch, [*SMALL_TAG, *dirs(tmp_path), "--run-name", "r", "--max-steps", "192", "--resume"]
    )
    assert len(first) + len(resumed) == len(n1)
    # (a - mean) / std recovers the noise up to rounding, and the means differ after the resume (new episodes)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(n1, first + resumed))


@pytest.mark.kernel_sensitive
def test_best_response_finds_the_exploit_of_a_stationary_prey(tmp_path):
    """The best-response recipe (suites.BEST_RESPONSE_FLAGS) against a frozen prey that never moves: the
    median of 3 tuning seeds beats random predators by the recipe's margin, which it clears on at least 9 of 10
    seeds at both kernel levels (docs/best_response.md): a learner that needs luck fails here."""
    from benchmarks import best_response as br
    from memeplex import suites

    opponent = tmp_path / "stationary.pt"
    br.save_stationary_prey(opponent)
    summaries = [br.train_responder(opponent, seed, suites.BEST_RESPONSE_FLAGS, tmp_path) for seed in (101, 102, 103)]
    assert all(s["team"] == "predator" and s["test_episodes"] == br.TEST_EPISODES for s in summaries)
    rates = [s["test_best_response_win_rate"] for s in summaries]
    random_rate = br.random_win_rate(opponent)
    assert np.median(rates) - random_rate >= br.MARGIN, (rates, random_rate)  # it found the exploit
    state = checkpoints.load_checkpoint(tmp_path / "checkpoints/tag/ppo/br_s101/latest.pt")
    assert state["learner"]["agent_ids"] == spec.teams("tag")["predator"]  # only the predators learned
    with pytest.raises(errors.UsageError, match="for --env tag"):
        train_ppo.main(["--opponent", str(opponent), *dirs(tmp_path)])


def test_intransitivity_and_nash_averaging():
    from memeplex.reports import cross_seed

    rps = np.array([[0.5, 0.8, 0.2], [0.2, 0.5, 0.8], [0.8, 0.2, 0.5]])  # rock-paper-scissors
    ((cycle, margin),) = cross_seed.cycles(rps)
    assert sorted(cycle) == [0, 1, 2] and margin == pytest.approx(0.3)
    mass, skill = cross_seed.nash_average(rps)
    np.testing.assert_allclose(mass, [1 / 3] * 3, atol=1e-6)
    np.testing.assert_allclose(skill, 0.0, atol=1e-6)
    ordered = np.array([[0.5, 0.8, 0.9], [0.2, 0.5, 0.7], [0.1, 0.3, 0.5]])
    assert cross_seed.cycles(ordered) == [] and cross_seed.nash_average(ordered)[0][0] == pytest.approx(1.0)


def test_cross_seed_play_and_its_report(tag_runs, tmp_path):
    from memeplex.reports import cross_seed, tag

    common = ["--checkpoint-dir", tag_runs / "checkpoints", "--results-dir", tmp_path]
    proc = run_script("cross_seed_play.py", "--run-name", "selfplay", "--seeds", "1", "--episodes", "6", *common)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "tag/cross_seed_selfplay.json").read_text())
    assert data["teams"] == ["method_i@s1", "ppo@s1", "maddpg@s1"] and len(data["wins"][0][2]) == 6
    w5 = cross_seed.wins_array(data)
    assert w5.shape == (3, 3, 1, 1, 6)
    # the same games as playing the two checkpoints directly
    mi, md = (checkpoints.load_policy(tag_runs / f"checkpoints/tag/{a}/selfplay_s1/latest.pt", "tag")[0]
              for a in ("method_i", "maddpg"))  # fmt: skip
    direct = competitive.play("tag", mi, md, protocol.eval_seeds("test", 6))["wins"].astype(float)
    np.testing.assert_array_equal(w5[0, 2, 0, 0], direct)
    out = tag.report(tmp_path)
    assert "Bradley-Terry" in out["cross_seed_selfplay.md"] and "| Method I |" in out["cross_seed_selfplay.md"]
    assert_clean_error(run_script("cross_seed_play.py", "--seeds", "9", *common), "final checkpoints missing")


def test_tag_headline_joins_ratings_and_best_responders():
    from memeplex.reports import tag

    bt = {"anchor": "random predators at 1000",
          "predator": {"rating": [1100.0, 900.0], "ci": [(1050.0, 1150.0), (850.0, 950.0)]},
          "prey": {"rating": [1000.0, 1200.0], "ci": [(950.0, 1050.0), (1150.0, 1250.0)]}}  # fmt: skip
    # (algorithm label, run, frozen team, exploitability, pool proxy, responders' win-rates): IPPO's predators
    # 0.2 and 0.4, the best of 3 and of 2 responders
    rows = [("IPPO", "selfplay_s1", "predator", 0.2, 0.0, [0.1, 0.2, 0.0]),
            ("IPPO", "selfplay_s2", "predator", 0.4, 0.1, [0.4, 0.3]),
            ("IPPO", "selfplay_s1", "prey", 0.5, 0.0, [0.5, 0.5, 0.5])]  # fmt: skip
    md = tag.headline(["method_i", "ppo"], bt, rows)
    assert "| Method I | 1100 [1050, 1150] | 1000 [950, 1050] | n/a | n/a |" in md
    assert "| IPPO | 900 [850, 950] | 1200 [1150, 1250] | 0.300 [0.200, 0.400] (2 teams, best of 2-3) | n/a |" in md


def test_exploitability_is_the_best_of_the_responders(tmp_path):
    from memeplex.reports import tag

    tag_dir = tmp_path / "tag"
    write_json(tag_dir / "ppo/selfplay_s1/summary.json", {"test_prey_exploitability": 0.25})
    # three responders against IPPO's seed-1 prey, two against its seed-2 prey, one interrupted (not counted)
    for seed, (team_seed, rate, interrupted) in enumerate(
        [(1, 0.2, False), (1, 0.7, False), (1, 0.4, False), (1, 0.9, True), (2, 0.1, False), (2, 0.3, False)]
    ):
        opponent = f"checkpoints/tag/ppo/selfplay_s{team_seed}/latest.pt"
        write_json(tag_dir / f"ppo/br-ppo-s{team_seed}-predator_s{seed}/summary.json",
                        {"test_best_response_win_rate": rate, "team": "predator", "opponent": opponent,
                         "interrupted": interrupted})  # fmt: skip
    files, rows = tag.exploitability(tmp_path)
    assert [r[:4] for r in rows] == [("IPPO", "selfplay_s1", "prey", 0.7), ("IPPO", "selfplay_s2", "prey", 0.3)]
    md = files["exploitability.md"]
    assert "| IPPO prey | selfplay_s1 | 0.700 | 0.200 / 0.700 / 0.400 | 0.250 |" in md
    assert "| IPPO prey | 2 | 2-3 | 0.500 [0.300, 0.700] | 0.250 |" in md  # mean of the two maxima


def test_best_response_recipe_tables(tmp_path):
    from memeplex.reports import benchmarks

    machine = {"cpu": "x", "torch": "2", "numpy": "2", "environment": {}}
    rows = lambda rates: [{"seed": 101 + i, "win_rate": r, "wall_time": 10.0} for i, r in enumerate(rates)]
    level = lambda rates: {"machine": machine, "random_win_rate": 0.1, "runs": rows(rates)}
    data = {"recipe": ["--max-steps", "9"], "margin": 0.3, "test_episodes": 100,
            "levels": {"AVX512": level([0.9, 0.3]), "AVX2": level([0.5])}}  # fmt: skip
    write_json(tmp_path / "tag/best_response_recipe/recipe.json", data)
    write_json(tmp_path / "tag/best_response_recipe/candidates/01.json", {**data, "recipe": ["--lr", "1"]})
    out = benchmarks.best_response_recipe_report(tmp_path)
    assert sorted(out) == ["best_response_candidates.md", "best_response_recipe.md"]
    assert "| 101 | 0.90 | 0.10 | +0.80 | yes | 0.50 | 0.10 | +0.40 | yes |" in out["best_response_recipe.md"]
    assert "| 102 | 0.30 | 0.10 | +0.20 | NO | n/a | n/a | n/a | n/a |" in out["best_response_recipe.md"]
    assert "AVX512: 1 of 2 seeds pass" in out["best_response_recipe.md"]
    assert (
        "| `--lr 1` | candidates/01.json | AVX2 | 101-101 | 1 of 1 | +0.40 | +0.40 | 10 |"
        in out["best_response_candidates.md"]
    )
    assert benchmarks.best_response_recipe_report(tmp_path / "nothing") == {}


def test_cycles_among_algorithm_seed_teams():
    from memeplex.reports import cross_seed

    rps = np.array([[0.5, 0.9, 0.1], [0.1, 0.5, 0.9], [0.9, 0.1, 0.5]])  # predators of row vs prey of column
    line = cross_seed._team_cycles(rps, ["x@s1", "y@s1", "z@s1"], ["x", "y", "z"], ["X", "Y", "Z"])
    assert "1 cycles" in line and "at least 0.400" in line and "mass X 0.33, Y 0.33, Z 0.33" in line
    ordered = np.array([[0.5, 0.9, 0.9], [0.1, 0.5, 0.9], [0.1, 0.1, 0.5]])  # x > y > z: all on x
    line = cross_seed._team_cycles(ordered, ["x@s1", "x@s2", "z@s1"], ["x", "z"], ["X", "Z"])
    assert "0 cycles" in line and "mass X 1.00, Z 0.00" in line


def test_each_tag_result_set_reports_only_its_own_teams(tmp_path):
    """A best responder against a second-result-set team (selfplay-v2) is counted in exploitability_v2.md only,
    and the first result set's tables keep their names."""
    from memeplex.reports import tag

    tag_dir = tmp_path / "tag"
    for run, rate in (("selfplay", 0.2), ("selfplay-v2", 0.6)):
        opponent = f"checkpoints/tag/mappo/{run}_s1/latest.pt"
        write_json(tag_dir / f"ppo/br-{run}_s1/summary.json",
                   {"test_best_response_win_rate": rate, "team": "prey", "opponent": opponent})  # fmt: skip
    v1, rows1 = tag.exploitability(tmp_path)
    v2, rows2 = tag.exploitability(tmp_path, tag.V2)
    assert list(v1) == ["exploitability.md"] and list(v2) == ["exploitability_v2.md"]
    assert [r[:4] for r in rows1] == [("MAPPO", "selfplay_s1", "predator", 0.2)]
    assert [r[:4] for r in rows2] == [("MAPPO", "selfplay-v2_s1", "predator", 0.6)]
    assert {"exploitability.md", "exploitability_v2.md"} <= set(tag.report(tmp_path))
