"""Statistics for comparing algorithms over seeds (a module; no script).

Spread (one score per run, e.g. summary.json's `test_normalised`), with rliable:

    from memeplex import stats
    table = stats.aggregate({"method_i": mi_scores, "ppo": ppo_scores})   # IQM and mean, 95% CIs
    p, (lo, hi) = stats.probability_of_improvement(mi_scores, ppo_scores)  # P(Method I > IPPO)
    d = stats.paired_difference(mi_scores, ppo_scores)  # by seed: mean, CI, sd, minimal detectable effect
    n = stats.seeds_for_power(sd_of_differences, 0.05)    # paired seeds that detect 0.05 with 80% power
    taus, profiles, cis = stats.performance_profile({"method_i": mi_scores, "ppo": ppo_scores})
    stats.performance_profile_figure(taus, profiles, cis).savefig("profile.png")

Scores are arrays of shape [runs] (one task) or [runs, tasks].  The intervals
are rliable's stratified percentile bootstrap over runs (within each task).

Predator-prey (tag), where games are not independent:

    p, (lo, hi) = stats.cluster_bootstrap_winrate(wins)  # [pred_seeds, prey_seeds, start_states] of 0/1
    ratings = stats.bradley_terry_bootstrap(wins5)  # [pred_teams, prey_teams, pred_seeds, prey_seeds, start_states]

The games of one predator seed share that seed's network, the games of one
start state share that start, and so on: wins and losses come in clusters.
Both functions resample the clusters (seeds on both axes, start states), not
the games, so their intervals carry that correlation.

Determinism: every function takes a `seed` and returns the same numbers for
the same input and seed.  rliable draws its bootstrap indices from numpy's
global RNG; this module seeds it for the duration of the call and restores the
caller's state afterwards (so it is not thread-safe).  The cluster bootstrap
uses its own `numpy.random.Generator`.  No function leaves numpy's (or
torch's, which this module never touches) global RNG state changed.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

AGGREGATE_REPS = 5_000  # rliable defaults to 50k; 5k keeps --check under a minute, CI endpoints move by ~0.002
MEAN_REPS = 10_000  # bootstrap_ci: the comparison tables' interval of a mean (one draw is cheap)
REPS = 2_000  # probability of improvement, performance profiles, cluster bootstraps (each replicate costs more)
CONFIDENCE = 0.95
ELO_SCALE = 400.0 / math.log(10.0)  # Elo: a 400-point gap is 10:1 odds, as competitive.elo_expected
ELO_ANCHOR = 1000.0
MAX_RATING_GAP = 2000.0  # Bradley-Terry ratings are fitted within +-this of the reference team (see bradley_terry)


class Estimate(NamedTuple):
    """A point estimate and its confidence interval."""

    value: float
    lo: float
    hi: float


# ----------------------------------------------------------------------------
# rliable: aggregate metrics, probability of improvement, performance profiles
# ----------------------------------------------------------------------------


def _rliable():
    """(rliable.library, rliable.metrics).

    Every rliable release requires arch < 8, and arch < 8 calls pandas'
    private `deprecate_kwarg(old_name, new_name)`, whose signature pandas 3
    changed to `deprecate_kwarg(warning_class, old_name, new_name)`: under
    the pinned pandas 3, `import arch` raises TypeError.  So, once, while arch
    is first imported, pandas' decorator accepts the old call form too (with
    FutureWarning as the class); it is restored right after.  Nothing else in
    pandas or arch is touched."""
    if "arch" not in sys.modules:
        from pandas.util import _decorators

        original = _decorators.deprecate_kwarg
        if next(iter(inspect.signature(original).parameters), None) == "klass":

            def deprecate_kwarg(*args, **kwargs):
                if args and isinstance(args[0], str):  # the pandas < 3 call form
                    return original(FutureWarning, *args, **kwargs)
                return original(*args, **kwargs)

            _decorators.deprecate_kwarg = deprecate_kwarg
            try:
                import arch  # noqa: F401
            finally:
                _decorators.deprecate_kwarg = original
    from rliable import library, metrics

    return library, metrics


@contextlib.contextmanager
def _seeded_numpy(seed: int):
    """Seed numpy's global RNG (which rliable's bootstraps draw from) and
    restore the caller's state on exit."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _as_runs_by_tasks(scores, name: str = "scores") -> np.ndarray:
    x = np.asarray(scores, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name}: expected an array of shape [runs] or [runs, tasks], got shape {np.shape(scores)}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: scores must be finite (a run without this metric?)")
    return x


def aggregate(
    scores_by_algo: Mapping[str, np.ndarray],
    reps: int = AGGREGATE_REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    which: tuple = ("iqm", "mean"),
) -> dict:
    """IQM and mean of each algorithm's scores with stratified-bootstrap CIs.

    scores_by_algo: {algo: array [runs] or [runs, tasks]}.  Returns
    {algo: {"iqm": Estimate, "mean": Estimate, "runs": n, "tasks": m}}, with only the
    estimates named in `which` (the IQM is the costly one; the bootstrap draws do not
    depend on which are computed, so each interval is the same either way).
    The IQM is the mean of the middle 50% of all run-task scores (25% trimmed
    from each end, rliable.metrics.aggregate_iqm); the mean is the mean over
    tasks of the per-task mean over runs.  Each algorithm's bootstrap starts
    from the same seed, so its interval does not depend on which other
    algorithms are in the dict.
    """
    library, metrics = _rliable()
    chosen = [{"iqm": metrics.aggregate_iqm, "mean": metrics.aggregate_mean}[name] for name in which]

    def func(x):
        return np.array([f(x) for f in chosen])

    out = {}
    for algo, scores in scores_by_algo.items():
        x = _as_runs_by_tasks(scores, algo)
        with _seeded_numpy(seed):
            point, ci = library.get_interval_estimates({algo: x}, func, reps=reps, confidence_interval_size=confidence)
        (lo, hi) = ci[algo]
        out[algo] = {name: Estimate(float(point[algo][k]), float(lo[k]), float(hi[k])) for k, name in enumerate(which)}
        out[algo].update(runs=x.shape[0], tasks=x.shape[1])
    return out


def probability_of_improvement(x, y, reps: int = REPS, seed: int = 0, confidence: float = CONFIDENCE):
    """P(X > Y): the probability that a run of X scores above a run of Y on
    the same task (ties count one half; the Mann-Whitney U statistic over the
    product of runs), averaged over tasks (rliable.metrics).  x, y: arrays
    [runs] or [runs, tasks] with the same tasks; the number of runs may
    differ.  Returns (point, (lo, hi)) with rliable's stratified bootstrap CI,
    which resamples the runs of X and of Y independently."""
    library, metrics = _rliable()

    a, b = _as_runs_by_tasks(x, "x"), _as_runs_by_tasks(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x has {a.shape[1]} tasks and y {b.shape[1]}")
    with _seeded_numpy(seed):
        point, ci = library.get_interval_estimates(
            {"x,y": [a, b]}, metrics.probability_of_improvement, reps=reps, confidence_interval_size=confidence
        )
    lo, hi = np.ravel(ci["x,y"])
    return float(point["x,y"]), (float(lo), float(hi))


def performance_profile(
    scores_by_algo: Mapping[str, np.ndarray], taus=None, reps: int = REPS, seed: int = 0, confidence: float = CONFIDENCE
):
    """Score distributions: for each threshold tau, the fraction of runs (over
    all tasks) scoring above tau, with stratified-bootstrap CIs
    (rliable.library.create_performance_profile).

    taus: thresholds; default 101 points from the lowest to the highest score
    of any algorithm.  Returns (taus, {algo: profile [len(taus)]},
    {algo: ci [2, len(taus)]}), ready for performance_profile_figure."""
    library, _ = _rliable()

    data = {algo: _as_runs_by_tasks(s, algo) for algo, s in scores_by_algo.items()}
    if not data:
        raise ValueError("no algorithms")
    if taus is None:
        everything = np.concatenate([x.ravel() for x in data.values()])
        lo, hi = float(everything.min()), float(everything.max())
        taus = np.linspace(lo, hi if hi > lo else lo + 1.0, 101)
    taus = np.asarray(taus, dtype=float)
    profiles, cis = {}, {}
    for algo, x in data.items():
        with _seeded_numpy(seed):
            p, c = library.create_performance_profile({algo: x}, taus, reps=reps, confidence_interval_size=confidence)
        profiles[algo], cis[algo] = np.asarray(p[algo], dtype=float), np.asarray(c[algo], dtype=float)
    return taus, profiles, cis


def performance_profile_figure(
    taus,
    profiles: Mapping[str, np.ndarray],
    cis: Mapping[str, np.ndarray] | None = None,
    xlabel: str = r"normalised score $\tau$",
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    figsize=(7.0, 4.5),
):
    """A matplotlib Figure of the profiles (rliable.plot_utils), one line per
    algorithm with its CI band.  The figure is not registered with pyplot:
    the caller saves it (fig.savefig(path)) and no window opens."""
    from matplotlib.figure import Figure

    _rliable()
    from rliable import plot_utils

    labels = labels or {}
    named = {labels.get(a, a): np.asarray(p) for a, p in profiles.items()}
    named_cis = {labels.get(a, a): np.asarray(c) for a, c in cis.items()} if cis is not None else None
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot()
    plot_utils.plot_performance_profiles(
        named,
        np.asarray(taus),
        performance_profile_cis=named_cis,
        ax=ax,
        xlabel=xlabel,
        ylabel=r"fraction of runs with score $> \tau$",
        labelsize="large",
        ticklabelsize="medium",
        legend=True,
        legendsize="medium",
    )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------
# Predator-prey: cluster bootstrap of win-rates and Bradley-Terry ratings
# ----------------------------------------------------------------------------


def _counts(rng, n: int, reps: int) -> np.ndarray:
    """[reps, n] multiplicities of n clusters drawn n times with replacement."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=reps).astype(float)


def _cluster_replicates(
    wins: np.ndarray, played: np.ndarray, pred_groups, prey_groups, reps: int, rng, chunk_cells: int = 20_000_000
):
    """Yield (wins, games) of bootstrap replicates, [b, pred_teams, prey_teams]
    per chunk, for wins/played of shape [T, U, Sp, Sq, S].

    One replicate draws, with replacement, the predator seeds of each predator
    group, the prey seeds of each prey group and the start states (shared by
    every pairing), and weights every game by how often its seed pair and start
    state were drawn.  Teams with the same group label come from the same runs
    (an algorithm's predators and prey in self-play) and share their draw."""
    T, U, Sp, Sq, S = wins.shape
    groups = list(dict.fromkeys([*pred_groups, *prey_groups]))
    sizes = {g: Sp if g in pred_groups else Sq for g in groups}
    if any(g in prey_groups for g in pred_groups) and Sp != Sq:
        raise ValueError("teams that share runs (the same group on both sides) need as many predator as prey seeds")
    w = np.where(played, wins, 0.0)
    m = played.astype(float)
    per_rep = max(T * U * Sp * Sq * S, 1)
    done = 0
    while done < reps:
        b = min(reps - done, max(1, chunk_cells // per_rep))
        draws = {g: _counts(rng, sizes[g], b) for g in groups}
        c = np.stack([draws[g] for g in pred_groups], axis=1)  # [b, T, Sp]
        d = np.stack([draws[g] for g in prey_groups], axis=1)  # [b, U, Sq]
        e = _counts(rng, S, b)  # [b, S]
        num = np.einsum("tuijk,bti,buj,bk->btu", w, c, d, e, optimize=True)
        den = np.einsum("tuijk,bti,buj,bk->btu", m, c, d, e, optimize=True)
        yield num, den
        done += b


def _check_wins(wins, ndim: int, shape_doc: str, allow_nan: bool = False) -> np.ndarray:
    w = np.asarray(wins, dtype=float)
    if w.ndim != ndim or w.size == 0:
        raise ValueError(f"wins: expected shape {shape_doc}, got {np.shape(wins)}")
    finite = w[~np.isnan(w)] if allow_nan else w
    if np.isnan(finite).any() or not np.isin(finite, (0.0, 1.0)).all():
        raise ValueError(
            "wins must be 0 (prey won) or 1 (predators won)" + (" or NaN (not played)" if allow_nan else "")
        )
    return w


def _interval(samples: np.ndarray, confidence: float, axis=0) -> tuple:
    tail = 100.0 * (1.0 - confidence) / 2.0
    return np.percentile(samples, tail, axis=axis), np.percentile(samples, 100.0 - tail, axis=axis)


def bootstrap_ci(values, n_boot: int = MEAN_REPS, seed: int = 0, confidence: float = CONFIDENCE) -> tuple:
    """Percentile bootstrap CI (95% by default) of the mean of one sample (compare_results.py's per-metric tables,
    paired_difference; the result suites use aggregate).  (nan, nan) for fewer than two values."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    means = np.random.default_rng(seed).choice(x, size=(n_boot, len(x))).mean(1)
    lo, hi = _interval(means, confidence)
    return float(lo), float(hi)


# ----------------------------------------------------------------------------
# Paired differences and power: runs of two algorithms with the same seed share initial weights and environments
# ----------------------------------------------------------------------------

POWER = 0.8  # the power a seed count is chosen for, and the minimal detectable effect is stated at
ALPHA = 0.05  # two-sided


def minimal_detectable_effect(sd: float, n: int, power: float = POWER, alpha: float = ALPHA) -> float:
    """The smallest true mean difference that n paired seeds detect with this power in a two-sided paired t-test
    at level alpha, when the per-seed differences have standard deviation sd: (t_{1-alpha/2} + t_power) sd / sqrt(n)
    with n - 1 degrees of freedom (the normal quantiles' 2.80 for many seeds, more for few). nan for n < 2."""
    from scipy.stats import t

    if n < 2 or not np.isfinite(sd):
        return float("nan")
    return float((t.ppf(1 - alpha / 2, n - 1) + t.ppf(power, n - 1)) * sd / math.sqrt(n))


def seeds_for_power(sd: float, effect: float, power: float = POWER, alpha: float = ALPHA, most: int = 10_000) -> int:
    """The fewest paired seeds whose minimal detectable effect is at most `effect` (at least 2)."""
    if not (sd >= 0 and effect > 0):
        raise ValueError(f"seeds_for_power needs sd >= 0 and effect > 0 (got sd={sd}, effect={effect})")
    n = 2
    while minimal_detectable_effect(sd, n, power, alpha) > effect:
        n += 1
        if n > most:
            raise ValueError(f"more than {most} seeds needed for effect {effect} at sd {sd}")
    return n


class PairedDifference(NamedTuple):
    """x - y over the seeds both ran: the mean, its percentile-bootstrap CI (resampling seeds), the per-seed
    differences' standard deviation and the minimal detectable effect at POWER."""

    mean: float
    lo: float
    hi: float
    sd: float
    n: int
    mde: float


def paired_difference(x, y, reps: int = MEAN_REPS, seed: int = 0, confidence: float = CONFIDENCE):
    """PairedDifference of x - y, where x[i] and y[i] are the scores of the same seed."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_difference needs two score vectors of one shape (got {x.shape} and {y.shape})")
    d = x - y
    if len(d) < 2:
        return PairedDifference(float(d.mean()) if len(d) else float("nan"), *[float("nan")] * 3, len(d), float("nan"))
    lo, hi = bootstrap_ci(d, reps, seed, confidence)
    sd = float(d.std(ddof=1))
    return PairedDifference(float(d.mean()), lo, hi, sd, len(d), minimal_detectable_effect(sd, len(d)))


def cluster_bootstrap_winrate(
    wins, reps: int = REPS, seed: int = 0, confidence: float = CONFIDENCE, same_runs: bool = False
):
    """Mean predator win-rate with a cluster-bootstrap percentile interval.

    wins: [pred_seeds, prey_seeds, start_states] of 0/1, the game of predator
    seed i against prey seed j from start state k (the same start states for
    every seed pair).  Each bootstrap replicate resamples the predator seeds,
    the prey seeds and the start states, each with replacement and
    independently, and takes the mean over the games of the drawn combinations.
    same_runs: the predators and prey of seed i come from the same run (one
    algorithm's self-play): one draw of seeds is used for both axes.

    Resampling all three crossed factors carries the correlation within each
    seed and each start state.  It errs on the safe side: the resampling
    weights multiply, so the part of the variance that belongs to single games
    is counted up to 2^3 - 1 = 7 times.  With independent games (no cluster
    effect at all) the interval is about sqrt(7) = 2.6 times as wide as the
    games-as-independent one (iid_winrate_interval); the more of the variation
    comes from seeds and start states, the closer it is to exact.
    Returns (point, (lo, hi))."""
    w = _check_wins(wins, 3, "[pred_seeds, prey_seeds, start_states]")
    if same_runs and w.shape[0] != w.shape[1]:
        raise ValueError("same_runs needs as many predator as prey seeds")
    w5 = w[None, None]
    rng = np.random.default_rng(seed)
    prey_groups = ["pred"] if same_runs else ["prey"]
    samples = np.concatenate(
        [
            (num / den)[:, 0, 0]
            for num, den in _cluster_replicates(w5, np.ones_like(w5, dtype=bool), ["pred"], prey_groups, reps, rng)
        ]
    )
    lo, hi = _interval(samples, confidence)
    return float(w.mean()), (float(lo), float(hi))


def iid_winrate_interval(wins, reps: int = REPS, seed: int = 0, confidence: float = CONFIDENCE):
    """The games-as-independent interval, for comparison with
    cluster_bootstrap_winrate: a bootstrap that resamples the n games
    themselves (the mean of n draws from the observed 0/1 outcomes, i.e.
    Binomial(n, p)/n).  It is too narrow when games are correlated.
    Returns (point, (lo, hi))."""
    w = np.asarray(wins, dtype=float).ravel()
    _check_wins(w, 1, "any shape of 0/1")
    p = float(w.mean())
    samples = np.random.default_rng(seed).binomial(w.size, p, size=reps) / w.size
    lo, hi = _interval(samples, confidence)
    return p, (float(lo), float(hi))


def _parse_anchor(anchor, T: int, U: int):
    """(index into [predators..., prey...] of the anchored team, or None for the mean)."""
    if anchor is None:
        return None
    side, k = anchor
    if side not in ("predator", "prey") or not 0 <= k < (T if side == "predator" else U):
        raise ValueError(f"anchor must be None, ('predator', 0..{T - 1}) or ('prey', 0..{U - 1}); got {anchor!r}")
    return k if side == "predator" else T + k


def _components(games: np.ndarray) -> int:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    T, U = games.shape
    adj = np.zeros((T + U, T + U))
    adj[:T, T:] = games > 0
    return connected_components(csr_matrix(adj), directed=False)[0]


def _fit_bt(wins: np.ndarray, games: np.ndarray, ref: int, max_gap: float, x0=None) -> np.ndarray:
    """Maximum-likelihood ratings (Elo units) with team `ref` fixed at 0 and
    every other team within [-max_gap, max_gap]; [T + U] array."""
    from scipy.optimize import minimize

    T, U = wins.shape
    free = np.array([i for i in range(T + U) if i != ref])

    def nll(z):
        x = np.zeros(T + U)
        x[free] = z
        d = (x[:T, None] - x[None, T:]) / ELO_SCALE  # predator minus prey
        # -[w log s(d) + (g - w) log s(-d)] with log s(d) = -log(1 + e^-d)
        loss = np.sum(wins * np.logaddexp(0.0, -d) + (games - wins) * np.logaddexp(0.0, d))
        resid = (wins - games / (1.0 + np.exp(-d))) / ELO_SCALE  # d loss / d d, negated and scaled
        grad = np.concatenate([-resid.sum(1), resid.sum(0)])
        return loss, grad[free]

    start = np.zeros(len(free)) if x0 is None else np.clip(x0[free] - x0[ref], -max_gap, max_gap)
    res = minimize(
        nll,
        start,
        jac=True,
        method="TNC",  # L-BFGS-B is ~10x slower here: its BLAS calls spin threads on these tiny problems
        bounds=[(-max_gap, max_gap)] * len(free),
        options={"maxfun": 2000, "ftol": 1e-12, "xtol": 1e-6, "gtol": 1e-9},
    )
    x = np.zeros(T + U)
    x[free] = res.x
    return x


def _anchored(x: np.ndarray, anchor_index, anchor_rating: float) -> np.ndarray:
    shift = x.mean() if anchor_index is None else x[anchor_index]
    return x - shift + anchor_rating


def bradley_terry(wins, games, anchor=None, anchor_rating: float = ELO_ANCHOR, max_gap: float = MAX_RATING_GAP):
    """Bradley-Terry (Elo-scale) ratings of predator and prey teams from a
    predators-by-prey matrix, by maximum likelihood.

    wins, games: [pred_teams, prey_teams] predator wins and games played per
    pairing (games 0 = not played; counts may be fractional).  Model: predator
    team t beats prey team u with probability 1 / (1 + 10^((s_u - r_t) / 400)),
    the Elo expected score (competitive.elo_expected).

    Anchor: only rating differences are identified.  anchor=None puts the mean
    of all predator and prey ratings at `anchor_rating` (1000);
    ('prey', k) or ('predator', k) puts that team at 1000 instead, e.g. the
    random team, as in the training runs' Elo where random is anchored at 1000.

    A team that won (or lost) every one of its games has no finite maximum
    likelihood rating; the fit is maximum likelihood within +-max_gap (2000)
    Elo of a reference team, so such a team ends at that bound (at a 2000
    gap the expected score is 1e-5).  Returns (predator ratings [T], prey
    ratings [U]).  The pairings played must connect all teams."""
    w, g = np.asarray(wins, dtype=float), np.asarray(games, dtype=float)
    if w.ndim != 2 or w.shape != g.shape:
        raise ValueError(
            f"wins and games must be [pred_teams, prey_teams] matrices of one shape, got {w.shape}, {g.shape}"
        )
    if (g < 0).any() or (w < 0).any() or (w > g + 1e-9).any():
        raise ValueError("need 0 <= wins <= games")
    T, U = w.shape
    idx = _parse_anchor(anchor, T, U)
    if _components(g) != 1:
        raise ValueError(
            "the pairings played do not connect every team: ratings of unconnected teams are not comparable"
        )
    x = _fit_bt(w, g, idx if idx is not None else 0, max_gap)
    x = _anchored(x, idx, anchor_rating)
    return x[:T], x[T:]


def bradley_terry_bootstrap(
    wins,
    pred_groups: Sequence[Hashable] | None = None,
    prey_groups: Sequence[Hashable] | None = None,
    anchor=None,
    anchor_rating: float = ELO_ANCHOR,
    reps: int = REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    max_gap: float = MAX_RATING_GAP,
) -> dict:
    """Bradley-Terry ratings (see bradley_terry) with cluster-bootstrap intervals.

    wins: [pred_teams, prey_teams, pred_seeds, prey_seeds, start_states] of
    0/1 (NaN for a pairing of teams that was not played, the whole pairing),
    or [pred_teams, prey_teams, start_states] when each team is one run.  A
    "team" is e.g. one algorithm's predators; its seeds are the runs.  Every
    replicate resamples each team's seeds and the start states as in
    cluster_bootstrap_winrate and refits the ratings.

    pred_groups, prey_groups: a label per team; teams with the same label come
    from the same runs and are resampled together (pass the algorithm names on
    both sides when an algorithm's predators and prey are the two teams of one
    self-play run).  Default: every team is its own group.

    Returns {"predator": {"rating": [T], "ci": [T, 2]}, "prey": {...},
    "anchor": description, "at_bound": teams whose point rating hit max_gap}.
    """
    w, played = _check_team_wins(wins)
    T, U = w.shape[:2]
    pred_groups, prey_groups = _groups(pred_groups, "predator", T), _groups(prey_groups, "prey", U)
    if len(pred_groups) != T or len(prey_groups) != U:
        raise ValueError(f"need {T} predator and {U} prey group labels")
    idx = _parse_anchor(anchor, T, U)
    ref = idx if idx is not None else 0
    w0 = np.where(played, w, 0.0).sum(axis=(2, 3, 4))
    g0 = played.sum(axis=(2, 3, 4)).astype(float)
    pred, prey = bradley_terry(w0, g0, anchor, anchor_rating, max_gap)
    x_point = np.concatenate([pred, prey])
    raw_point = _fit_bt(w0, g0, ref, max_gap)
    rng = np.random.default_rng(seed)
    samples = []
    for num, den in _cluster_replicates(w, played, pred_groups, prey_groups, reps, rng):
        for wr, gr in zip(num, den):
            samples.append(_anchored(_fit_bt(wr, gr, ref, max_gap, x0=raw_point), idx, anchor_rating))
    lo, hi = _interval(np.array(samples), confidence)
    ci = np.stack([lo, hi], axis=1)
    return {
        "predator": {"rating": x_point[:T], "ci": ci[:T]},
        "prey": {"rating": x_point[T:], "ci": ci[T:]},
        "anchor": (
            f"mean of all teams = {anchor_rating:g}"
            if anchor is None
            else f"{anchor[0]} team {anchor[1]} = {anchor_rating:g}"
        ),
        "at_bound": _at_bound(raw_point, ref, max_gap, T),
        "reps": reps,
        "confidence": confidence,
    }


def _check_team_wins(wins) -> tuple:
    """(wins as [pred_teams, prey_teams, pred_seeds, prey_seeds, start_states], played mask) of
    bradley_terry_bootstrap's input; ValueError on a pairing only partly NaN."""
    w = np.asarray(wins, dtype=float)
    if w.ndim == 3:
        w = w[:, :, None, None, :]
    w = _check_wins(w, 5, "[pred_teams, prey_teams, pred_seeds, prey_seeds, start_states]", allow_nan=True)
    played = ~np.isnan(w)
    partial = played.any(axis=(2, 3, 4)) & ~played.all(axis=(2, 3, 4))
    if partial.any():
        t, u = np.argwhere(partial)[0]
        raise ValueError(
            f"pairing (predator team {t}, prey team {u}) is partly NaN: NaN marks whole pairings not played"
        )
    return w, played


def _groups(labels, side: str, n: int) -> list:
    """The group label of each of a side's n teams: as given, or every team its own group."""
    return [(side, k) for k in range(n)] if labels is None else list(labels)


def _at_bound(raw: np.ndarray, ref: int, max_gap: float, T: int) -> dict:
    """The teams whose fitted rating hit the +-max_gap bound (they won or lost every game)."""
    hit = np.abs(raw - raw[ref]) >= max_gap - 1e-6
    return {"predator": [int(t) for t in np.flatnonzero(hit[:T])], "prey": [int(u) for u in np.flatnonzero(hit[T:])]}
