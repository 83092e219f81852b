"""The envs: specs by name, the parallel step of one mpe2 env, the training VecEnv and its backends."""

import numpy as np
import pytest

from memeplex import errors, protocol
from memeplex.envs import spec, vec


def test_vecenv_returns_real_final_observation_and_episode_scores():
    envs = vec.VecEnv("spread", 2, seed=0)
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


@pytest.mark.parametrize("name", ["spread", "tag", "reference"])
def test_the_backend_is_an_argument_and_both_step_the_same_episodes(name):
    """Two vector envs on different backends, used side by side in one process, step the very
    same episodes (automatic resets included); so do evaluation episodes on either backend."""
    batched, reference = vec.make_vec_env(name, 3, seed=5), vec.make_vec_env(name, 3, seed=5, backend="mpe2")
    assert type(batched) is vec.VecEnv and type(reference) is vec.Mpe2VecEnv
    policy = protocol.RandomPolicy(name, seed=1)
    obs_a, obs_b = batched.reset(), reference.reset()
    for _ in range(60):  # two episode ends
        for a in batched.agents:
            np.testing.assert_array_equal(obs_a[a], obs_b[a])
        actions = policy(obs_a, None)
        out_a, out_b = batched.step(actions), reference.step(actions)
        (obs_a, rew_a, *flags_a, final_a, fin_a), (obs_b, rew_b, *flags_b, final_b, fin_b) = out_a, out_b
        for a in batched.agents:
            np.testing.assert_array_equal(rew_a[a], rew_b[a])
            np.testing.assert_array_equal(final_a[a], final_b[a])
        for x, y in zip(flags_a, flags_b):
            np.testing.assert_array_equal(x, y)
        assert fin_a == fin_b
    reference.close()
    seeds = protocol.eval_seeds("validation", 4)
    one = protocol.run_episodes(name, protocol.RandomPolicy(name), seeds, backend="mpe2")
    other = protocol.run_episodes(name, protocol.RandomPolicy(name), seeds, backend="batched")
    np.testing.assert_array_equal(one["scores"], other["scores"])
    if name == "tag":
        np.testing.assert_array_equal(one["contacts"], other["contacts"])
    with pytest.raises(errors.UsageError, match="unknown backend"):
        vec.make_vec_env(name, 1, seed=0, backend="gpu")


def test_unknown_env_is_a_usage_error():
    with pytest.raises(errors.UsageError, match="unknown env"):
        spec.make_env("spreadd")


@pytest.mark.parametrize("name", ["spread", "tag", "reference"])
def test_step_env_matches_the_parallel_api_bit_for_bit(name):
    official, fast = spec.make_env(name), spec.make_env(name)
    rng = np.random.default_rng(0)
    agents, _, act_dims = spec.env_info(name)
    for episode in range(3):
        o1, _ = official.reset(seed=episode)
        o2, _ = fast.reset(seed=episode)
        for t in range(30):
            actions = {a: rng.random(act_dims[a]).astype(np.float32) for a in agents}
            o1, r1, term1, trunc1, _ = official.step(actions)
            o2, r2, term2, trunc2 = spec.step_env(fast, actions)
            for a in agents:
                np.testing.assert_array_equal(o1[a], o2[a])
                assert r1[a] == r2[a]
            assert any(term1.values()) == term2 and any(trunc1.values()) == trunc2
            if trunc2 or term2:
                assert t == 24  # the 25-step time limit, reached by both
                break
