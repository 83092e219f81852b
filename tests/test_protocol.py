"""The evaluation protocol: seeds, episodes, references, intervals."""

import numpy as np
import pytest

from memeplex import protocol
from memeplex.envs import spec


@pytest.mark.kernel_sensitive
def test_reference_policies_land_in_their_ranges():
    refs = protocol.reference_scores("spread", "validation", 50)
    assert -85.0 < refs["random"] < -65.0  # uniform random actions: about -75 to -79
    assert refs["oracle"] > -25.0  # Hungarian assignment + PD control: about -18
    assert protocol.normalised(refs["random"], refs) == pytest.approx(0.0)
    assert protocol.normalised(refs["oracle"], refs) == pytest.approx(1.0)


def test_evaluation_seeds_are_fixed_and_disjoint():
    val, test = protocol.eval_seeds("validation", 100), protocol.eval_seeds("test", 100)
    assert not set(val) & set(test)
    assert max(val + test) < 2**32 <= spec.train_env_seed(0, 0)
    seeds = {
        spec.train_env_seed(s, e, k)
        for s in (0, 1, spec.MAX_SEED - 1)
        for e in (0, 1, spec.MAX_ENVS - 1)
        for k in (0, 1, 500)
    }
    assert len(seeds) == 27  # distinct for every run seed, env and session
    policy = protocol.RandomPolicy("spread", seed=3)
    a = protocol.run_episodes("spread", policy, val[:5])["scores"]
    b = protocol.run_episodes("spread", protocol.RandomPolicy("spread", seed=3), val[:5])["scores"]
    np.testing.assert_array_equal(a, b)


def test_force_to_action_mapping():
    a = protocol.force_to_action(np.array([[0.5, -2.0]]))
    np.testing.assert_allclose(a, [[0.0, 0.0, 0.5, 1.0, 0.0]])  # +x half, -y saturated


def test_mean_ci():
    mean, ci = protocol.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert ci == pytest.approx(3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)
