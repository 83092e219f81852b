"""The tag suites' tables (run_experiments.py --suite tag): the self-play runs' final teams, fixed pools,
cross-seed play (memeplex.reports.cross_seed), best-response exploitability and the headline that joins
the ratings with it; and the best-response recipe's check (memeplex.reports.benchmarks)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memeplex import suites
from memeplex.reports.benchmarks import best_response_recipe_report
from memeplex.reports.cross_seed import cross_seed
from memeplex.reports.tables import fact, finished, interval, mean_cell, row, rule, scores
from memeplex.suites import TAG_LABELS


@dataclass(frozen=True)
class ResultSet:
    """One set of tag results: its self-play runs, its fixed-pool sets, and the suffix of its tables' names."""

    suffix: str  # the tables: selfplay<suffix>.md, fixed_pool<suffix>.md, exploitability<suffix>.md, headline...
    selfplay: tuple  # (label, algorithm directory, run name) of the self-play runs, in table order
    run: str  # the 200k-step self-play run name: cross-seed play's, and the best responders' frozen teams'
    pool_sets: dict  # evaluate_fixed_pool.py's pool sets of these runs: what each holds
    matched: str  # what the matched runs of the headline caption and pools were given


V1 = ResultSet(  # the first result set (run_experiments.py at 04edd0b)
    "",
    (*((TAG_LABELS[a], a, suites.SELFPLAY_RUN) for a in suites.SCRIPTS),
     *((f"{TAG_LABELS[a]}, MADDPG's wall time", a, suites.SELFPLAY_WALLCLOCK_RUN) for a in ("method_i", "ppo"))),
    suites.SELFPLAY_RUN,
    {"step": "the 200k-step runs", "wallclock": "Method I and IPPO trained for MADDPG's median wall time, with "
     "MADDPG's 200k-step runs"},
    "wall time",
)  # fmt: skip
V2 = ResultSet(  # results v2 (run_experiments.py --suite tag): MAPPO joins, MADDPG is a single member
    "_v2",
    (*((TAG_LABELS[suites.ALGORITHMS[k].algo_dir], suites.ALGORITHMS[k].algo_dir, suites.SELFPLAY_V2_RUN)
       for k in suites.TAG_V2_ALGOS),
     *((f"{TAG_LABELS[a]}, MADDPG's CPU time", a, suites.SELFPLAY_V2_CPU_RUN) for a in ("method_i", "ppo", "mappo"))),
    suites.SELFPLAY_V2_RUN,
    {"v2": "the 200k-step runs", "v2-cpu": "Method I, IPPO and MAPPO trained for MADDPG's median CPU time, with "
     "MADDPG's 200k-step runs"},
    "CPU time",
)  # fmt: skip
TAG_SELFPLAY_METRICS = [  # (summary key, column): the final teams' held-out test games
    ("test_predator_win_vs_random", "predators vs random prey"),
    ("test_prey_win_vs_random", "prey vs random predators"),
    ("test_self_play_predator_win", "predator win-rate in self-play"),
    ("test_predator_exploitability", "predator pool proxy"),
    ("test_prey_exploitability", "prey pool proxy"),
]


def report(results: Path, log=lambda name: None) -> dict:
    """The tag suites: selfplay.md (final teams against random and their own pool), fixed_pool.md
    (evaluate_fixed_pool.py per seed), cross_seed_<run>.md/.png (cross_seed_play.py) and
    exploitability.md (best responders) and best_response_*.md (the best-response recipe's check); log(name) is
    called as each starts."""
    results = Path(results)
    out, ratings = {}, {}
    for path in sorted((results / "tag").glob("cross_seed_*.json")):
        log(path.stem)
        data = json.loads(path.read_text())
        files, bt = cross_seed(data, path.stem)
        out.update(files)
        ratings[data["run_name"]] = (data["algos"], bt)
    for rs in (V1, V2):  # the tables of each result set: <table><suffix>.md
        log(f"self-play, fixed pools and exploitability{rs.suffix}")
        out.update({**selfplay(results, rs), **fixed_pool(results, rs)})
        files, responders = exploitability(results, rs)
        out.update(files)
        if rs.run in ratings and responders:
            out[f"headline{rs.suffix}.md"] = headline(*ratings[rs.run], responders, rs)
    log("best-response recipe")
    out.update(best_response_recipe_report(results))
    return out


def headline(algos: list, bt: dict, responders: list, rs: ResultSet = V1) -> str:
    """Per algorithm: its Bradley-Terry ratings from cross-seed play and how far a best responder beats
    its final predators and prey (exploitability, the maximum over its best responders; mean over seeds)."""
    lines = [row("algorithm", "predator rating", "prey rating", "best responder vs its predators",
                 "best responder vs its prey"), rule(5)]  # fmt: skip
    for k, algo in enumerate(algos):
        label = TAG_LABELS.get(algo, algo)
        cells = [interval(bt[team]["rating"][k], *bt[team]["ci"][k], fmt="{:.0f}") for team in ("predator", "prey")]
        for team in ("predator", "prey"):
            sel = [r for r in responders if (r[0], r[2]) == (label, team)]
            cell = mean_cell([r[3] for r in sel], "{:.3f}", with_seeds=False) if len(sel) > 1 else None
            cells.append(f"{cell} ({len(sel)} teams, best of {_responder_counts(sel)})" if cell else "n/a")
        lines.append(row(label, *cells))
    return (
        "Tag, reporting seeds 1-5, 200k env steps of self-play. Ratings: Bradley-Terry on the Elo scale from "
        f"cross-seed play ({bt['anchor']}), 95% cluster-bootstrap intervals over seeds and start states; higher is "
        "stronger. Best responder: the frozen team's exploitability, the highest test win-rate of the IPPO learners "
        "trained against it (docs/best_response.md), mean over seeds [95% CI]; higher is more exploitable.\n\n"
        + "\n".join(lines)
        + "\n"
    )


def selfplay(results: Path, rs: ResultSet = V1) -> dict:
    """selfplay<suffix>.md: each self-play run's final teams on held-out test episodes, mean over seeds."""
    rows = [(label, finished(results, algo, name, "tag")) for label, algo, name in rs.selfplay]
    rows = [(label, r) for label, r in rows if r]
    if not rows:
        return {}
    columns = [column for _, column in TAG_SELFPLAY_METRICS]
    lines = [row("", "seeds", "env steps (median)", "wall time, s (median)", *columns),
             rule(4 + len(columns))]  # fmt: skip
    for label, r in rows:
        cells = [mean_cell(scores(r, key)) for key, _ in TAG_SELFPLAY_METRICS]
        lines.append(row(label, ", ".join(str(seed) for seed, _, _ in r), f"{np.median(scores(r, 'env_steps')):,.0f}",
                         f"{np.median(scores(r, 'wall_time')):.0f}", *cells))  # fmt: skip
    return {
        f"selfplay{rs.suffix}.md": "Self-play on tag: each run's final teams on held-out test episodes "
        f"({fact(rows, lambda s, a: s.get('test_elo_episodes'))} per pairing). "
        "Mean over seeds [stratified-bootstrap 95% CI], per-seed values below. A predator win is at least one "
        "predator-prey contact; the pool proxy is max(0, 0.5 - the team's lowest win-rate against its own "
        "run's last pool snapshots).\n\n" + "\n".join(lines) + "\n"
    }


def fixed_pool(results: Path, rs: ResultSet = V1) -> dict:
    """evaluate_fixed_pool.py's fixed_pool_<set>_s<seed>.json: each algorithm's final teams against that
    seed's shared pool; one row per pool set and seed, then the mean over seeds."""
    outs = [json.loads(p.read_text()) for p in sorted((results / "tag").glob("fixed_pool_*_s*.json"))]
    # the result set's pool sets, not a --run-name of your own
    outs = [o for o in outs if o.get("run_name") is None and o["pool_set"] in rs.pool_sets]
    if not outs:
        return {}
    algos = [a for a in TAG_LABELS if any(a in o["results"] for o in outs)]
    cols = [(a, team) for team in ("predator", "prey") for a in algos]
    lines = [
        row("pool set", "seed", "pool size", *(f"{TAG_LABELS[a]} {team}" for a, team in cols)),
        rule(3 + len(cols)),
    ]
    rate = lambda o, a, team: o["results"][a][team]["win_rate_vs_pool"] if a in o["results"] else float("nan")
    for o in sorted(outs, key=lambda o: (o["pool_set"], o["seed"])):
        lines.append(row(o["pool_set"], o["seed"], len(o.get("pool", [])), *(f"{rate(o, a, t):.3f}" for a, t in cols)))
    for pool_set in sorted({o["pool_set"] for o in outs}):
        sel = [o for o in outs if o["pool_set"] == pool_set]
        if len(sel) < 2:
            continue
        cells = []
        for a, team in cols:
            v = np.array([rate(o, a, team) for o in sel])
            cells.append(mean_cell(v, "{:.3f}", with_seeds=False) if np.isfinite(v).all() else "n/a")
        lines.append(row(f"{pool_set}: mean [95% CI]", f"{len(sel)} seeds", "", *cells))
    episodes = " / ".join(sorted({str(o.get("episodes_per_pairing", "?")) for o in outs}))
    sets = "; ".join(f"{name}: {what}" for name, what in rs.pool_sets.items())
    return {
        f"fixed_pool{rs.suffix}.md": "Fixed pool (`evaluate_fixed_pool.py`): per seed, the random team plus the last "
        "snapshots of every algorithm's run with that seed; each algorithm's final predators and prey play every "
        f"member on {episodes} held-out test episodes. Win-rate against the pool; pools differ between seeds, so "
        f"compare within a row ({sets}).\n\n" + "\n".join(lines) + "\n"
    }


def _responders(results: Path, rs: ResultSet) -> dict:
    """{(label, run, frozen team): (its best responders' test win-rates, the team's pool proxy)} of the
    finished best-response runs (train_*.py --env tag --opponent CKPT)."""
    found = {}
    for path in sorted((results / "tag").glob("*/*/summary.json")):
        s = json.loads(path.read_text())
        if "test_best_response_win_rate" not in s or s.get("interrupted"):
            continue
        opponent = Path(s["opponent"])  # checkpoints/tag/<algo>/<run>_s<seed>/latest.pt
        if opponent.parent.name.rsplit("_s", 1)[0] != rs.run:  # a frozen team of another result set
            continue
        frozen = "prey" if s["team"] == "predator" else "predator"  # the team being exploited
        own = results / "tag" / opponent.parent.parent.name / opponent.parent.name / "summary.json"
        proxy = (
            json.loads(own.read_text()).get(f"test_{frozen}_exploitability", float("nan"))
            if own.exists()
            else float("nan")
        )
        key = (TAG_LABELS.get(opponent.parent.parent.name, opponent.parent.parent.name), opponent.parent.name, frozen)
        found.setdefault(key, ([], proxy))[0].append(s["test_best_response_win_rate"])
    return found


def exploitability(results: Path, rs: ResultSet = V1) -> tuple:
    """Best-response runs: each frozen team's exploitability, the highest final test win-rate among its best
    responders (a best response is a maximum), beside that team's pool proxy from its own self-play run.
    Returns ({"exploitability.md": text} or {}, rows); rows: (label, run, frozen team, exploitability, pool
    proxy, every responder's win-rate)."""
    rows = [(*key, max(brs), proxy, brs) for key, (brs, proxy) in _responders(results, rs).items()]
    if not rows:
        return {}, []
    lines = ["Best-response exploitability: fresh IPPO learners (best responders, docs/best_response.md) trained "
             "against each frozen final team; the team's exploitability is the highest of their win-rates on "
             "held-out test episodes (a best response is a maximum; higher = more exploitable), beside the pool "
             "proxy of the team's own run (max(0, 0.5 - lowest win-rate against its last pool snapshots)).", "",
             *_exploitability_summary(rows), "", "Every team:", "",
             row("frozen team", "run", "exploitability (max)", "responders' win-rates", "pool proxy"),
             rule(5)]  # fmt: skip
    lines += [row(f"{a} {team}", run, f"{br:.3f}", " / ".join(f"{b:.3f}" for b in brs), f"{proxy:.3f}")
              for a, run, team, br, proxy, brs in rows]  # fmt: skip
    br, proxy = np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    ok = ~np.isnan(proxy)
    if ok.sum() >= 3 and np.ptp(proxy[ok]) > 0 and np.ptp(br[ok]) > 0:
        from scipy.stats import spearmanr

        rho = spearmanr(proxy[ok], br[ok]).statistic
        lines += ["", f"Spearman rank correlation of the proxy with the best responder's win-rate over "
                  f"{int(ok.sum())} teams: {rho:.2f}."]  # fmt: skip
    return {f"exploitability{rs.suffix}.md": "\n".join(lines) + "\n"}, rows


def _exploitability_summary(rows: list) -> list:
    """The table of exploitability per algorithm and frozen team (mean over its seeds' teams)."""
    groups = sorted({(r[0], r[2]) for r in rows}, key=lambda k: (k[1], k[0]))
    lines = [row("frozen team", "teams", "responders per team", "exploitability, mean [95% CI]", "pool proxy, mean"),
             rule(5)]  # fmt: skip
    for a, team in groups:
        sel = [r for r in rows if (r[0], r[2]) == (a, team)]
        brs = np.array([r[3] for r in sel])
        cell = mean_cell(brs, "{:.3f}", with_seeds=False) if len(sel) > 1 else f"{brs[0]:.3f}"
        proxy = np.nanmean([r[4] for r in sel])
        lines.append(row(f"{a} {team}", len(sel), _responder_counts(sel), cell, f"{proxy:.3f}"))
    return lines


def _responder_counts(rows) -> str:
    """How many best responders each frozen team of these exploitability rows had: "3", or "2-3"."""
    counts = sorted({len(r[5]) for r in rows})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
