"""stats.py on synthetic data: values checked by hand, determinism, untouched global RNG."""

import numpy as np
import pytest
import torch

from memeplex import stats

REPS = 2_000


def test_identical_scores_give_a_zero_width_interval():
    out = stats.aggregate({"a": np.full(5, 0.3)}, reps=REPS)["a"]
    for est in (out["iqm"], out["mean"]):
        assert est.value == pytest.approx(0.3) and est.lo == pytest.approx(0.3) and est.hi == pytest.approx(0.3)
    assert out["runs"] == 5 and out["tasks"] == 1


def test_iqm_and_mean_by_hand():
    scores = np.array([0.0, 1, 2, 3, 4, 5, 6, 100])  # 8 runs: the IQM drops 2 at each end
    out = stats.aggregate({"a": scores}, reps=REPS)["a"]
    assert out["iqm"].value == pytest.approx((2 + 3 + 4 + 5) / 4)
    assert out["mean"].value == pytest.approx(121 / 8)
    assert out["iqm"].lo < out["iqm"].value < out["iqm"].hi
    assert out["mean"].lo < out["mean"].value < out["mean"].hi
    # two runs scoring 0 and 1: the resampled means are 0 (p 1/4), 0.5 (1/2) and 1 (1/4),
    # so the 95% percentile interval is [0, 1]
    two = stats.aggregate({"b": np.array([0.0, 1.0])}, reps=REPS)["b"]["mean"]
    assert (two.value, two.lo, two.hi) == (0.5, 0.0, 1.0)
    # [runs, tasks]: the IQM pools every run-task score, the mean averages the per-task means
    grid = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0]])
    out = stats.aggregate({"c": grid}, reps=REPS)["c"]
    assert out["iqm"].value == pytest.approx((2 + 3 + 10 + 20) / 4)
    assert out["mean"].value == pytest.approx((1.5 + 25) / 2) and out["tasks"] == 2


def test_probability_of_improvement():
    x, y = np.array([5.0, 6, 7, 8, 9]), np.array([1.0, 2, 3, 4])
    assert stats.probability_of_improvement(x, y, reps=REPS) == (1.0, (1.0, 1.0))  # X always ahead
    assert stats.probability_of_improvement(y, x, reps=REPS)[0] == 0.0
    p, (lo, hi) = stats.probability_of_improvement(x, x.copy(), reps=REPS)
    assert p == 0.5 and lo < 0.5 < hi
    p, _ = stats.probability_of_improvement(np.array([1.0, 3.0]), np.array([2.0, 2.0]), reps=REPS)
    assert p == pytest.approx(0.5)  # one of the two runs beats each of Y's: 2 pairs of 4


def test_performance_profile_and_figure():
    rng = np.random.default_rng(0)
    data = {"good": rng.normal(0.6, 0.1, 10), "bad": rng.normal(0.3, 0.1, 10)}
    taus, profiles, cis = stats.performance_profile(data, reps=REPS)
    assert len(taus) == 101 and profiles["good"][0] == 1.0 and profiles["good"][-1] == 0.0
    for p in profiles.values():
        assert np.all(np.diff(p) <= 0)  # fraction of runs above tau never grows with tau
    assert cis["bad"].shape == (2, 101) and np.all(cis["bad"][0] <= profiles["bad"] + 1e-12)
    assert np.all(profiles["good"] >= profiles["bad"] - 0.2)
    at = np.array([0.5])
    _, prof, _ = stats.performance_profile({"x": np.array([0.1, 0.4, 0.6, 0.9])}, taus=at, reps=REPS)
    assert prof["x"][0] == 0.5
    fig = stats.performance_profile_figure(taus, profiles, cis, labels={"good": "Method I"})
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "Method I" in labels and "bad" in labels


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match="finite"):
        stats.aggregate({"a": np.array([0.1, np.nan])})
    with pytest.raises(ValueError, match="tasks"):
        stats.probability_of_improvement(np.zeros((3, 2)), np.zeros((3, 1)))


def test_same_seed_same_numbers_and_global_rng_untouched():
    np.random.seed(123)
    torch.manual_seed(7)
    before_np, before_torch = np.random.get_state(), torch.get_rng_state()
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=6), rng.normal(size=6)
    wins = (rng.random((3, 3, 20)) < 0.4).astype(float)
    first = (
        stats.aggregate({"a": a}, reps=REPS),
        stats.probability_of_improvement(a, b, reps=REPS),
        stats.performance_profile({"a": a}, reps=200)[1]["a"],
        stats.cluster_bootstrap_winrate(wins),
        stats.bradley_terry_bootstrap(wins[None, None], reps=50)["predator"]["ci"],
    )
    after_np = np.random.get_state()
    assert after_np[0] == before_np[0] and np.array_equal(after_np[1], before_np[1]) and after_np[2:] == before_np[2:]
    assert torch.equal(torch.get_rng_state(), before_torch)
    np.random.seed(999)  # another global state: the same answers
    second = (
        stats.aggregate({"a": a}, reps=REPS),
        stats.probability_of_improvement(a, b, reps=REPS),
        stats.performance_profile({"a": a}, reps=200)[1]["a"],
        stats.cluster_bootstrap_winrate(wins),
        stats.bradley_terry_bootstrap(wins[None, None], reps=50)["predator"]["ci"],
    )
    assert first[:2] == second[:2] and first[3] == second[3]
    assert np.array_equal(first[2], second[2]) and np.array_equal(first[4], second[4])
    assert stats.aggregate({"a": a}, reps=REPS, seed=1) != first[0]  # the seed matters


def test_cluster_bootstrap_is_wider_when_games_are_clustered():
    # 2 of 5 predator seeds always win, 3 never: the outcome is a property of the seed,
    # so the 500 games carry the information of 5 draws, not 500
    wins = np.zeros((5, 4, 25))
    wins[:2] = 1.0
    p, (lo, hi) = stats.cluster_bootstrap_winrate(wins)
    q, (nlo, nhi) = stats.iid_winrate_interval(wins)
    assert p == q == 0.4
    assert hi - lo > 4 * (nhi - nlo)
    assert lo <= 0.2 and hi >= 0.6  # resampling 5 seeds: multiples of 0.2 around 0.4
    # start states as clusters: every seed pair wins from the same 10 of 25 starts
    starts = np.zeros((4, 4, 25))
    starts[:, :, :10] = 1.0
    _, (slo, shi) = stats.cluster_bootstrap_winrate(starts)
    _, (ilo, ihi) = stats.iid_winrate_interval(starts)
    assert shi - slo > 2 * (ihi - ilo)
    # independent games: no cluster effect; the interval is wider than the naive one by the
    # documented factor of about sqrt(7) (single-game variance counted 7 times), not more
    iid = (np.random.default_rng(0).random((8, 8, 40)) < 0.3).astype(float)
    _, (a, b) = stats.cluster_bootstrap_winrate(iid)
    _, (c, d) = stats.iid_winrate_interval(iid)
    assert 1.5 * (d - c) < b - a < 3.0 * (d - c)


def test_cluster_bootstrap_same_runs_and_bad_input():
    wins = (np.random.default_rng(2).random((4, 4, 10)) < 0.5).astype(float)
    p, (lo, hi) = stats.cluster_bootstrap_winrate(wins, same_runs=True)
    assert lo <= p <= hi
    with pytest.raises(ValueError):
        stats.cluster_bootstrap_winrate(np.full((2, 2, 3), 0.5))  # not 0/1
    with pytest.raises(ValueError):
        stats.cluster_bootstrap_winrate(np.zeros((2, 3, 3)), same_runs=True)


def elo_p(r, s):
    return 1.0 / (1.0 + 10.0 ** ((s - r) / 400.0))


def test_bradley_terry_recovers_known_ratings():
    pred, prey = np.array([1000.0, 1200.0, 900.0]), np.array([1100.0, 900.0, 1000.0])
    games = np.full((3, 3), 1000.0)
    wins = games * elo_p(pred[:, None], prey[None, :])  # expected counts: the MLE is the truth
    r, s = stats.bradley_terry(wins, games, anchor=("prey", 2))
    np.testing.assert_allclose(r, pred, atol=0.05)
    np.testing.assert_allclose(s, prey, atol=0.05)
    r2, s2 = stats.bradley_terry(wins, games)  # default anchor: the mean of all teams at 1000
    assert np.mean(np.concatenate([r2, s2])) == pytest.approx(1000.0)
    np.testing.assert_allclose(r2 - s2[2], pred - 1000.0, atol=0.05)
    games[0, 0] = wins[0, 0] = 0.0  # an unplayed pairing changes nothing here
    np.testing.assert_allclose(stats.bradley_terry(wins, games, anchor=("prey", 2))[0], pred, atol=0.05)


def test_bradley_terry_separation_and_connectivity():
    games = np.full((2, 2), 10.0)
    wins = np.array([[10.0, 10.0], [5.0, 5.0]])  # predator team 0 never lost: no finite MLE
    r, s = stats.bradley_terry(wins, games, anchor=("predator", 1))
    assert r[1] == 1000.0 and r[0] - 1000.0 == pytest.approx(stats.MAX_RATING_GAP, abs=1e-3)
    with pytest.raises(ValueError, match="connect"):
        stats.bradley_terry(np.array([[5.0, 0.0], [0.0, 5.0]]), np.array([[10.0, 0.0], [0.0, 10.0]]))


def test_bradley_terry_bootstrap():
    rng = np.random.default_rng(3)
    pred, prey = np.array([1000.0, 1300.0]), np.array([1000.0, 1150.0])
    p = elo_p(pred[:, None], prey[None, :])
    wins = (rng.random((2, 2, 4, 4, 30)) < p[:, :, None, None, None]).astype(float)
    out = stats.bradley_terry_bootstrap(wins, anchor=("prey", 0), reps=200)
    ci_pred, ci_prey = out["predator"]["ci"], out["prey"]["ci"]
    assert np.all(ci_pred[:, 0] <= out["predator"]["rating"]) and np.all(out["predator"]["rating"] <= ci_pred[:, 1])
    assert ci_prey[0, 0] == ci_prey[0, 1] == 1000.0  # the anchor does not move
    assert ci_pred[1, 0] > ci_pred[0, 1] - 150  # the 300-point gap is seen
    assert out["at_bound"] == {"predator": [], "prey": []}
    shared = stats.bradley_terry_bootstrap(wins, pred_groups=["a", "b"], prey_groups=["a", "b"], reps=200)
    assert shared["predator"]["ci"].shape == (2, 2) and "mean of all teams" in shared["anchor"]
    wins[0, 1] = np.nan  # a pairing that was not played
    out = stats.bradley_terry_bootstrap(wins, reps=50)
    assert np.all(np.isfinite(out["prey"]["rating"]))
    wins[1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="partly"):
        stats.bradley_terry_bootstrap(wins, reps=50)


def test_cluster_bootstrap_interval_by_hand():
    # two predator seeds, one always wins and one never, one prey seed, 10 start states: a replicate
    # draws the two seeds with replacement, so its mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4
    # (the start states and the single prey seed change nothing): the 95% interval is [0, 1]
    wins = np.zeros((2, 1, 10))
    wins[0] = 1.0
    p, (lo, hi) = stats.cluster_bootstrap_winrate(wins)
    assert (p, lo, hi) == (0.5, 0.0, 1.0)


def test_mean_only_aggregate_has_the_same_interval_as_the_full_one():
    scores = np.random.default_rng(3).normal(size=(7, 2))
    full = stats.aggregate({"a": scores}, reps=REPS)["a"]
    mean_only = stats.aggregate({"a": scores}, reps=REPS, which=("mean",))["a"]
    assert mean_only["mean"] == full["mean"] and "iqm" not in mean_only and mean_only["runs"] == 7


def test_bootstrap_ci_of_a_mean():
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    lo, hi = stats.bootstrap_ci([0.0, 1.0, 2.0, 3.0])
    assert 0.0 <= lo < 1.5 < hi <= 3.0
    assert all(np.isnan(stats.bootstrap_ci([1.0])))  # one value has no interval


def test_minimal_detectable_effect_and_seeds_for_power():
    # many seeds: the normal quantiles, (1.960 + 0.842) sd / sqrt(n)
    assert stats.minimal_detectable_effect(1.0, 10_000) == pytest.approx(2.8016 / 100, rel=1e-3)
    # few seeds: Student's t with n - 1 degrees of freedom (t_.975 = 2.262, t_.8 = 0.883 for 9)
    assert stats.minimal_detectable_effect(0.1, 10) == pytest.approx((2.2622 + 0.8834) * 0.1 / np.sqrt(10), rel=1e-3)
    assert np.isnan(stats.minimal_detectable_effect(0.1, 1))
    n = stats.seeds_for_power(0.1, 0.05)
    assert stats.minimal_detectable_effect(0.1, n) <= 0.05 < stats.minimal_detectable_effect(0.1, n - 1)
    assert n == 34  # the normal approximation's (2.8 * 0.1 / 0.05)^2 = 31.4, and a little more for t
    assert stats.seeds_for_power(0.0, 0.05) == 2
    with pytest.raises(ValueError, match="effect > 0"):
        stats.seeds_for_power(0.1, 0.0)


def test_a_simulated_paired_t_test_has_the_stated_power():
    """At the minimal detectable effect, a paired t-test on n seeds rejects about 80% of the time."""
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(0)
    n, sd = 12, 0.08
    effect = stats.minimal_detectable_effect(sd, n)
    base = rng.normal(0.5, 0.2, size=(4000, n))  # the seed's own level, shared by both (same initial weights)
    x = base + effect + rng.normal(0, sd / np.sqrt(2), size=base.shape)
    y = base + rng.normal(0, sd / np.sqrt(2), size=base.shape)
    rejected = ttest_rel(x, y, axis=1).pvalue < 0.05
    assert 0.77 < rejected.mean() < 0.83


def test_paired_difference():
    x, y = [0.5, 0.6, 0.7, 0.4], [0.4, 0.5, 0.5, 0.45]
    d = stats.paired_difference(x, y)
    assert d.mean == pytest.approx(0.0875) and d.n == 4
    assert d.sd == pytest.approx(np.std([0.1, 0.1, 0.2, -0.05], ddof=1))
    assert d.lo < d.mean < d.hi and d.mde == pytest.approx(stats.minimal_detectable_effect(d.sd, 4))
    assert stats.paired_difference(x, y) == d  # seeded
    # the pairing matters: a shared per-seed level cancels, so the paired interval is narrower than the spread
    wide = stats.paired_difference(np.array(x) * 0 + [0.1, 0.9, 0.2, 0.8], [0.0, 0.8, 0.1, 0.7])
    assert wide.sd == pytest.approx(0.0, abs=1e-12) and wide.lo == pytest.approx(0.1) == wide.hi
    with pytest.raises(ValueError, match="one shape"):
        stats.paired_difference([1, 2], [1, 2, 3])
