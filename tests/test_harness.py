"""The shared harness: envs, evaluation protocol, references, run directories."""

import json

import numpy as np
import pytest

from memeplex import errors, files, harness, rundir


@pytest.mark.kernel_sensitive
def test_reference_policies_land_in_their_ranges():
    refs = harness.reference_scores("spread", "validation", 50)
    assert -85.0 < refs["random"] < -65.0  # uniform random actions: about -75 to -79
    assert refs["oracle"] > -25.0  # Hungarian assignment + PD control: about -18
    assert harness.normalised(refs["random"], refs) == pytest.approx(0.0)
    assert harness.normalised(refs["oracle"], refs) == pytest.approx(1.0)


def test_evaluation_seeds_are_fixed_and_disjoint():
    val, test = harness.eval_seeds("validation", 100), harness.eval_seeds("test", 100)
    assert not set(val) & set(test)
    assert max(val + test) < 2**32 <= harness.train_env_seed(0, 0)
    seeds = {
        harness.train_env_seed(s, e, k)
        for s in (0, 1, harness.MAX_SEED - 1)
        for e in (0, 1, harness.MAX_ENVS - 1)
        for k in (0, 1, 500)
    }
    assert len(seeds) == 27  # distinct for every run seed, env and session
    policy = harness.RandomPolicy("spread", seed=3)
    a = harness.run_episodes("spread", policy, val[:5])["scores"]
    b = harness.run_episodes("spread", harness.RandomPolicy("spread", seed=3), val[:5])["scores"]
    np.testing.assert_array_equal(a, b)


def test_force_to_action_mapping():
    a = harness.force_to_action(np.array([[0.5, -2.0]]))
    np.testing.assert_allclose(a, [[0.0, 0.0, 0.5, 1.0, 0.0]])  # +x half, -y saturated


def test_vecenv_returns_real_final_observation_and_episode_scores():
    envs = harness.VecEnv("spread", 2, seed=0)
    obs = envs.reset()
    zero = {a: np.zeros((2, 5), np.float32) for a in envs.agents}
    total = np.zeros(2)
    for t in range(25):
        prev = obs
        obs, rewards, dones, terminated, final_obs, finished = envs.step(zero)
        total += sum(rewards[a] for a in envs.agents)
        if t < 24:
            assert not dones.any() and not finished
    assert dones.all() and not terminated.any()  # MPE episodes end by time limit
    assert len(finished) == 2
    np.testing.assert_allclose([f["score"] for f in finished], total, rtol=1e-5)
    for a in envs.agents:
        # zero actions: the agent keeps its position, so the final observation
        # continues the episode while the returned obs is a fresh reset
        np.testing.assert_allclose(final_obs[a][:, 2:4], prev[a][:, 2:4], atol=1e-6)
        assert not np.allclose(final_obs[a], obs[a])


def test_mean_ci():
    mean, ci = harness.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert ci == pytest.approx(3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)


def test_run_dir_never_overwrites_and_writes_complete_files(tmp_path):
    run = rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    run.write_config({"a": 1})
    run.append_metrics({"step": 1, "eval_score": -50.0})
    run.append_metrics({"step": 2, "eval_score": -40.0, "extra": 3})
    rows = files.read_metrics(run.path / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2] and rows[1]["extra"] == 3
    assert not list(run.path.glob(".*.tmp"))  # no temp files left behind
    with pytest.raises(errors.UsageError, match="in use by another process"):  # while it is open
        rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    run.close()
    with pytest.raises(errors.UsageError, match="already exists"):  # and after it ended
        rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    with pytest.raises(errors.UsageError, match="no checkpoint"):
        rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "y", 1, resume=True)
    assert json.loads((run.path / "config.json").read_text()) == {"a": 1}


def test_unknown_env_is_a_usage_error():
    with pytest.raises(errors.UsageError, match="unknown env"):
        harness.make_env("spreadd")


@pytest.mark.parametrize("name", ["spread", "tag"])
def test_step_env_matches_the_parallel_api_bit_for_bit(name):
    official, fast = harness.make_env(name), harness.make_env(name)
    rng = np.random.default_rng(0)
    agents = harness.env_info(name)[0]
    for episode in range(3):
        o1, _ = official.reset(seed=episode)
        o2, _ = fast.reset(seed=episode)
        for t in range(30):
            actions = {a: rng.random(5).astype(np.float32) for a in agents}
            o1, r1, term1, trunc1, _ = official.step(actions)
            o2, r2, term2, trunc2 = harness.step_env(fast, actions)
            for a in agents:
                np.testing.assert_array_equal(o1[a], o2[a])
                assert r1[a] == r2[a]
            assert any(term1.values()) == term2 and any(trunc1.values()) == trunc2
            if trunc2 or term2:
                assert t == 24  # the 25-step time limit, reached by both
                break
