"""MADDPG's form on tag (docs/maddpg.md, "On tag: which form"): one candidate setting per directory
results/tag/<SUITE>/<candidate>/ holding ordinary run directories (<candidate>/tag/maddpg/<candidate>_s<seed>/,
written by train_maddpg.py --env tag with --results-dir results/tag/<SUITE>/<candidate>), tuning seeds only,
--final-eval-episodes 0. Per seed, evaluate_fixed_pool.py rated every candidate's final teams against one common
pool (the random team and each candidate's last snapshots) on the validation seeds, into
results/tag/<SUITE>/<POOL>/tag/fixed_pool_run-<candidates joined by +>_validation_s<seed>.json.

The tuning score is a candidate's win-rate against that common pool, the mean of its predators' and its prey's
(each team against every pool member's other team), mean over the tuning seeds. A candidate's own training run
measures it against its own rolling pool only, which a weak form fills with weak opponents.

`report(results)` returns {file name: text} ({} without candidate runs):
  maddpg_tag_form.md   per candidate: its flags, the tuning score, each team's win-rate against the pool and
                       against random, and each candidate's win-rate against every other candidate's snapshots
                       (head to head); wall time and throughput of its runs
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memeplex.reports.stability import _mean_cell, candidates
from memeplex.reports.tables import fmt_seeds, fmt_steps, row, rule, run_args

SUITE = "maddpg_form"  # results/tag/<SUITE>/<candidate>/
POOL = "pool"  # results/tag/<SUITE>/<POOL>/tag/: the common-pool evaluations
ALGO = "maddpg"  # a candidate's contestant name in the evaluation is <ALGO>-<candidate>
TEAMS = ("predator", "prey")


def evaluations(results: Path) -> dict:
    """{seed: the common-pool evaluation of that seed} (the one of the most candidates, if there are several)."""
    out = {}
    for path in sorted((Path(results) / "tag" / SUITE / POOL / "tag").glob("fixed_pool_run-*_validation_s*.json")):
        data = json.loads(path.read_text())
        if len(data["results"]) > len(out.get(data["seed"], {}).get("results", {})):
            out[data["seed"]] = data
    return out


def form(args: dict) -> str:
    """A candidate's form: its population and whether its agents share networks."""
    n = args.get("population_size", 1)
    members = "one member" if n == 1 else f"population of {n}"
    return f"{members}, {'shared' if args.get('shared_networks') else 'per-agent'} networks"


def opponent(label: str) -> str:
    """The candidate a pool member belongs to ("maddpg-pop4-shared@199992" -> "pop4-shared"; "random")."""
    return label.split("@", 1)[0].removeprefix(f"{ALGO}-")


def report(results: Path, log=lambda name: None) -> dict:
    log("maddpg form")
    cands = {name: runs for name, algo, runs in candidates(results, (SUITE,), baseline="", env="tag") if algo == ALGO}
    if not cands:
        return {}
    return {"maddpg_tag_form.md": table(cands, evaluations(results))}


def table(cands: dict, evals: dict) -> str:
    seeds = sorted(evals)
    budgets = " / ".join(sorted({fmt_steps(run_args(d)["max_steps"]) for r in cands.values() for _, d in r}))
    some = next(iter(evals.values()), {"pool": [], "results": {}})
    last = (len(some["pool"]) - 1) // max(1, len(some["results"]))  # snapshots per candidate (random aside)
    lines = [
        f"MADDPG on tag ({budgets} env steps), tuning seeds "
        f"{fmt_seeds([s for r in cands.values() for s, _ in r])}: which form. Common pool per seed: the random "
        f"team and each candidate's last {last if evals else '-'} snapshots; each candidate's final predators "
        "play every pool member's prey, and its prey every pool member's predators, "
        f"{some.get('episodes_per_pairing', '-')} validation episodes per pairing. Tuning "
        "score: the mean of the two teams' win-rates against the pool. Mean in bold, per seed "
        f"({fmt_seeds(seeds) if seeds else 'no evaluation yet'}) below. Wall time and env steps/s (fitness "
        "episodes included, evaluations not) per run, two runs at a time on this repository's 2-core machine.\n",
    ]
    head = ["candidate", "form", "tuning score", "predators vs pool", "prey vs pool", "predators vs random",
            "prey vs random", "wall time, min", "env steps/s"]  # fmt: skip
    lines += [row(*head), rule(len(head))]
    order = sorted(cands, key=lambda c: -np.mean([score(evals[s], c) for s in seeds]) if seeds else 0)
    for cand in order:
        res = [evals[s]["results"].get(f"{ALGO}-{cand}") for s in seeds]
        team = {t: [r[t]["win_rate_vs_pool"] if r else np.nan for r in res] for t in TEAMS}
        rnd = {t: [r[t]["win_rates"]["random"] if r else np.nan for r in res] for t in TEAMS}
        summaries = [json.loads((d / "summary.json").read_text()) for _, d in cands[cand]]
        lines.append(row(cand, form(run_args(cands[cand][0][1])), _mean_cell([score(evals[s], cand) for s in seeds]),
                         _mean_cell(team["predator"]), _mean_cell(team["prey"]), _mean_cell(rnd["predator"]),
                         _mean_cell(rnd["prey"]), _mean_cell([s["wall_time"] / 60 for s in summaries], "{:.1f}"),
                         _mean_cell([s["throughput_without_eval"] for s in summaries], "{:.0f}")))  # fmt: skip
    if seeds:
        lines += ["", head_to_head(order, evals)]
    return "\n".join(lines) + "\n"


def score(evaluation: dict, cand: str) -> float:
    """The tuning score: the mean of the candidate's predators' and prey's win-rates against the pool."""
    res = evaluation["results"].get(f"{ALGO}-{cand}")
    return float(np.mean([res[t]["win_rate_vs_pool"] for t in TEAMS])) if res else np.nan


def head_to_head(order: list, evals: dict) -> str:
    """Each candidate's win-rate against each other candidate's snapshots, per team, mean over seeds."""
    head = ["row's team vs column's snapshots (predators / prey)", *order]
    lines = [
        "Head to head, from the same games: the row candidate's final predators' win-rate against the column "
        "candidate's snapshots' prey / its final prey's against their predators, mean over the pool's snapshots "
        "and the seeds.\n",
        row(*head),
        rule(len(head)),
    ]
    for cand in order:
        cells = []
        for other in order:
            rates = {t: [] for t in TEAMS}
            for ev in evals.values():
                res = ev["results"].get(f"{ALGO}-{cand}")
                for t in TEAMS:
                    rates[t] += [v for k, v in (res[t]["win_rates"] if res else {}).items() if opponent(k) == other]
            cells.append(" / ".join(f"{np.mean(rates[t]):.2f}" if rates[t] else "-" for t in TEAMS))
        lines.append(row(cand, *cells))
    return "\n".join(lines) + "\n"
