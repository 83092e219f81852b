"""Choosing hyperparameters from tuning runs (run_experiments.py --suite tune, then --suite choose): grids
drawn or swept one knob at a time, each candidate's mean score over the tuning seeds, the best candidate,
and the choice as chosen.json and chosen.md. The grids and the candidates themselves are defined in
run_experiments.py."""

from __future__ import annotations

import itertools
import random
import shlex
import statistics

from memeplex.errors import UsageError
from memeplex.experiments import read_summary


def draw(grid: dict, k: int, seed: int) -> list:
    """k distinct configurations drawn uniformly from the grid's product with a fixed seed."""
    combos = list(itertools.product(*grid.values()))
    return [dict(zip(grid, combos[i])) for i in random.Random(seed).sample(range(len(combos)), k)]


def one_at_a_time(centre: dict, grid: dict) -> list:
    """The centre, then every value of each knob with the others at the centre."""
    out = [dict(centre)]
    for knob, values in grid.items():
        out += [{**centre, knob: v} for v in values if v != centre[knob]]
    return out


def scores(ctx, candidates: list, metric: str) -> list:
    """[(candidate, {seed: score}, mean)] of candidates (each with .runs()) by their summary.json's
    `metric`; UsageError naming the first unfinished run."""
    missing = [r for c in candidates for r in c.runs() if read_summary(r.result_dir(ctx)) is None]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(
            f"tuning run {ctx.rel(missing[0].result_dir(ctx))} has not finished{more}; "
            "run `python run_experiments.py --suite tune` first"
        )
    out = []
    for c in candidates:
        s = {r.seed: read_summary(r.result_dir(ctx)).get(metric, float("nan")) for r in c.runs()}
        vals = [float(v) if v is not None else float("nan") for v in s.values()]
        out.append((c, s, statistics.fmean(vals)))
    return out


def best(scored: list, metric: str):
    """The first candidate with the highest mean (NaN never wins)."""
    ok = [x for x in scored if x[2] == x[2]]
    if not ok:
        raise UsageError(f"no tuning run of {scored[0][0].algorithm} has a {metric}")
    return max(ok, key=lambda x: x[2])  # max keeps the first of equal values


def choice(ctx, candidates: dict, metric: str, algorithms: dict) -> dict:
    """{algorithm: its chosen candidate and every candidate ranked by mean}, for chosen.json's "algorithms".
    candidates: {algorithm: [candidate]}; algorithms: {algorithm: suites.Algorithm}."""
    out = {}
    for key, cands in candidates.items():
        scored = scores(ctx, cands, metric)
        winner = best(scored, metric)
        ranked = sorted(scored, key=lambda x: -x[2] if x[2] == x[2] else float("inf"))
        out[key] = {
            "label": algorithms[key].label,
            "script": algorithms[key].script,
            "algo_dir": algorithms[key].algo_dir,
            "run_name": winner[0].name,
            "flags": list(winner[0].flags),
            "mean": winner[2],
            "candidates": [
                {"run_name": c.name, "flags": list(c.flags), "scores": {str(k): v for k, v in s.items()}, "mean": m}
                for c, s, m in ranked
            ],
        }
    return out


def shared_prefix(flag_lists: list) -> list:
    """The leading flags (whole options with their values) that every list starts with."""
    out = []
    for i, flag in enumerate(flag_lists[0]):
        if any(len(f) <= i or f[i] != flag for f in flag_lists):
            break
        out.append(flag)
    while out and any(len(f) > len(out) and not f[len(out)].startswith("--") for f in flag_lists):
        out.pop()  # back to where every list starts a new option: an option stays whole with its values
    return out


def choice_markdown(chosen: dict, algorithms: dict) -> str:
    """chosen.md: per algorithm, its candidates ranked by mean score, the chosen one in bold."""
    seeds = chosen["tuning_seeds"]
    lines = [
        f"# Tuning on simple_{chosen['env']}_v3: the chosen configurations\n",
        f"Score: `{chosen['metric']}` of each run's summary.json (the mean of its last 5 periodic "
        "evaluations on the validation seeds; 0 = random policy, 1 = oracle), averaged over the tuning seeds "
        f"{', '.join(map(str, seeds))}. {chosen['tuning_steps']:,} env steps per run; tuning runs never "
        "evaluate the test seeds (`--final-eval-episodes 0`). The chosen configuration is the best mean "
        "(in bold); `python run_experiments.py --suite main` trains it on the reporting seeds.\n",
    ]
    for a in chosen["algorithms"].values():
        common = shared_prefix([c["flags"] for c in a["candidates"]]) if len(a["candidates"]) > 1 else []
        lines += [
            f"## {a['label']}: {len(a['candidates'])} candidates\n",
            f"`python {a['script']} {shlex.join(a['flags'])}`\n" if a["flags"] else "",
            f"Every candidate: `{shlex.join(common)}`, then its own flags:\n" if common else "",
            "| rank | run name | flags | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
            "|---" * (4 + len(seeds)) + "|",
        ]
        for i, c in enumerate(a["candidates"], 1):
            b = "**" if c["run_name"] == a["run_name"] else ""
            knobs = shlex.join(c["flags"][len(common) :])
            cells = " | ".join(f"{c['scores'][str(s)]:.3f}" for s in seeds)
            lines.append(f"| {b}{i}{b} | {b}{c['run_name']}{b} | `{knobs}` | {cells} | {b}{c['mean']:.3f}{b} |")
        lines.append("")
    return "\n".join(lines)
