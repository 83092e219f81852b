"""Cross-seed play on tag (cross_seed_play.py's cross_seed_<run>.json): the predator win-rate matrix with
cluster-bootstrap intervals, Bradley-Terry ratings, and intransitivity (3-cycles of side scores, Nash
averaging), among the algorithms and among the algorithm-seed teams."""

from __future__ import annotations

import numpy as np

from memeplex import stats
from memeplex.plots import matrix
from memeplex.reports.tables import interval, row, rule
from memeplex.suites import TAG_LABELS


def wins_array(out: dict) -> np.ndarray:
    """The games of a cross_seed_*.json as [pred_algo, prey_algo, pred_seed, prey_seed, start_state] of 0/1."""
    a, s = len(out["algos"]), len(out["seeds"])
    flat = np.array([[[int(c) for c in cell] for cell in line] for line in out["wins"]], dtype=float)
    return flat.reshape(a, s, a, s, -1).transpose(0, 2, 1, 3, 4)


def side_scores(w5: np.ndarray) -> np.ndarray:
    """M[a, b]: how often algorithm a's side wins against algorithm b's, averaged over its predators
    against b's prey and its prey against b's predators (0.5 = even)."""
    pred = np.nanmean(w5, axis=(2, 3, 4))  # [pred algo, prey algo]: predator win-rate
    return 0.5 * pred + 0.5 * (1.0 - pred.T)


def cycles(m: np.ndarray) -> list:
    """Every 3-cycle a > b > c > a of a win matrix (a > b: m[a, b] > 0.5), with its weakest margin."""
    n, out = len(m), []
    for a in range(n):
        for b in range(n):
            for c in range(n):
                if a < b and a < c and b != c and m[a, b] > 0.5 and m[b, c] > 0.5 and m[c, a] > 0.5:
                    out.append(((a, b, c), float(min(m[a, b], m[b, c], m[c, a]) - 0.5)))
    return out


def nash_average(m: np.ndarray) -> tuple:
    """Nash averaging (Balduzzi et al. 2018) of the zero-sum game with payoff m - 0.5: the equilibrium
    mixture over players (scipy linprog) and each player's payoff against it."""
    from scipy.optimize import linprog

    a = np.asarray(m, dtype=float) - 0.5
    n = len(a)
    # maximise v subject to (p^T A)_j >= v for every column j, p >= 0, sum p = 1; variables (p, v)
    res = linprog(c=[0.0] * n + [-1.0], A_ub=np.hstack([-a.T, np.ones((n, 1))]), b_ub=np.zeros(n),
                  A_eq=[[1.0] * n + [0.0]], b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)])  # fmt: skip
    p = res.x[:n]
    return p, a @ p


def cross_seed(data: dict, stem: str) -> tuple:
    """({file: table or figure}, Bradley-Terry ratings) of one cross_seed_play.py output."""
    w5 = wins_array(data)
    algos, labels = data["algos"], [TAG_LABELS.get(a, a) for a in data["algos"]]
    lines = [f"Cross-seed play (`{data['run_name']}` runs, seeds {', '.join(map(str, data['seeds']))}): every "
             f"algorithm-seed's final predators against every algorithm-seed's final prey, {data['episodes']} "
             "held-out test start states per pairing. Predator win-rate, 95% cluster-bootstrap interval over seeds "
             "and start states.", "", row("predators \\ prey", *labels), rule(len(labels) + 1)]  # fmt: skip
    for i, label in enumerate(labels):
        cells = []
        for j in range(len(labels)):
            p, (lo, hi) = stats.cluster_bootstrap_winrate(w5[i, j], same_runs=i == j)
            cells.append(interval(p, lo, hi))
        lines.append(row(label, *cells))
    bt = stats.bradley_terry_bootstrap(w5, pred_groups=algos, prey_groups=algos)
    lines += ["", f"Bradley-Terry (Elo scale; {bt['anchor']}), 95% cluster-bootstrap intervals:", "",
              row("algorithm", "predator rating", "prey rating"), rule(3)]  # fmt: skip
    for k, label in enumerate(labels):
        ratings = [interval(bt[team]["rating"][k], *bt[team]["ci"][k], fmt="{:.0f}") for team in ("predator", "prey")]
        lines.append(row(label, *ratings))
    lines += _intransitivity(side_scores(w5), labels)
    rates = np.nanmean(w5, axis=4).transpose(0, 2, 1, 3).reshape(len(data["teams"]), len(data["teams"]))
    lines.append(_team_cycles(rates, data["teams"], algos, labels))
    title = f"cross-seed play, grouped by algorithm ({data['episodes']} games per cell)"
    fig = matrix(data["teams"], data["teams"], rates, title)
    return {f"{stem}.md": "\n".join(lines) + "\n", f"{stem}.png": fig}, bt


def _intransitivity(m: np.ndarray, labels: list) -> list:
    """The side scores of every pair of algorithms, and their 3-cycles with Nash averaging (or that there
    is none), as caption lines."""
    found = cycles(m)
    pairs = [(a, b) for a in range(len(m)) for b in range(a + 1, len(m))]
    lines = ["", "Side scores (how often the first algorithm's teams beat the second's, both roles averaged): "
             + "; ".join(f"{labels[a]} vs {labels[b]} {m[a, b]:.3f}" for a, b in pairs)]  # fmt: skip
    if found:
        p, skill = nash_average(m)
        loops = "; ".join(" > ".join(labels[k] for k in (*c, c[0])) + f" (weakest margin {margin:.3f})"
                          for c, margin in found)  # fmt: skip
        nash = ", ".join(f"{labels[k]} mass {p[k]:.2f}, skill {skill[k]:+.3f}" for k in range(len(m)))
        lines.append(f"Intransitive: {loops}. A single rating can mislead; Nash averaging: {nash}.")
    else:
        lines.append("No cycle among the algorithms (a > b > c > a): the ratings order them consistently.")
    return lines


def _team_cycles(rates: np.ndarray, teams: list, algos: list, labels: list) -> str:
    """Intransitivity among the algorithm-seed teams: 3-cycles of their side scores (both roles averaged)
    and the Nash-averaging mass per algorithm. rates[i, j]: team i's predators against team j's prey."""
    side = 0.5 * rates + 0.5 * (1.0 - rates.T)
    found = cycles(side)
    mass, _ = nash_average(side)
    by_algo = ", ".join(f"{label} {mass[[t.split('@')[0] == a for t in teams]].sum():.2f}"
                        for a, label in zip(algos, labels))  # fmt: skip
    strongest = max((m for _, m in found), default=0.0)
    return (f"Among the {len(teams)} algorithm-seed teams (side scores): {len(found)} cycles a > b > c > a"
            + (f", the strongest with every margin at least {strongest:.3f}" if found else "")
            + f"; Nash averaging over the teams puts mass {by_algo}.")  # fmt: skip
