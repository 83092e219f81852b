"""The measurements of benchmarks/ as tables: the throughput benchmark (throughput.py, both env backends)
and the best-response recipe's check (best_response.py: does the recipe find a frozen stationary prey's
exploit on every tuning seed and kernel level)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memeplex.reports.tables import row, rule

BENCHMARK_LABELS = {
    "env": "env stepping",
    "train": "Method I training",
    "eval": "evaluation",
    "maddpg": "MADDPG training",
}


def report(results: Path, log=lambda name: None) -> dict:
    """benchmarks/throughput.py's JSON files as tables: <stem>.md per results/benchmarks/<stem>.json."""
    log("throughput")
    out = {}
    for path in sorted((Path(results) / "benchmarks").glob("*.json")):
        data = json.loads(path.read_text())
        if "results" not in data or "units" not in data:
            continue
        a = data["args"]
        lines = [row("", "mpe2", "batched", "ratio (per round)"), rule(4)]
        for key, r in data["results"].items():
            env, measure = key.split("/")
            lo, hi = min(r["round_ratios"]), max(r["round_ratios"])
            lines.append(row(f"{env}: {BENCHMARK_LABELS.get(measure, measure)}, {data['units'][measure]}",
                             f"{r['median']['mpe2']:,.0f}", f"{r['median']['batched']:,.0f}",
                             f"**{r['ratio']:.2f}x** ({lo:.2f}-{hi:.2f})"))  # fmt: skip
        load = data.get("load_average_1min")
        load_text = f" 1-minute load average {load['start']} at the start, {load['end']} at the end." if load else ""
        out[f"{path.stem}.md"] = (
            f"`python benchmarks/throughput.py`: medians of {a['rounds']} rounds, each running both backends one "
            f"after the other in one process; {a['num_envs']} envs, 1 torch thread, default hyperparameters; "
            f"{data['machine']['cpu_model']} ({data['machine']['torch_cpu_capability']}).{load_text}\n\n"
            + "\n".join(lines)
            + "\n"
        )
    return out


def best_response_recipe_report(results: Path) -> dict:
    """benchmarks/best_response.py's measurements (tag/best_response_recipe/): best_response_recipe.md, per tuning
    seed and kernel level, the chosen recipe's (recipe.json) test win-rate against a frozen stationary prey,
    random predators' on the same episodes, their margin and whether it clears the required one;
    best_response_before.md, the same for the recipe it replaced (before.json); best_response_candidates.md, one
    row per recipe and kernel level measured while choosing (candidates/*.json too)."""
    root = Path(results) / "tag" / "best_response_recipe"
    measured = [root / "before.json", *sorted((root / "candidates").glob("*.json")), root / "recipe.json"]
    measured = {p: json.loads(p.read_text()) for p in measured if p.exists()}
    out = {f"best_response_{p.stem}.md": _recipe_seeds(data) for p, data in measured.items() if p.parent == root}
    lines = [row("recipe", "file", "kernels", "seeds", "pass", "median margin", "lowest margin", "median wall time, s"),
             rule(8)]  # fmt: skip
    for path, data in measured.items():
        for k, level in data["levels"].items():
            margins = _margins(level)
            seeds, wall = [r["seed"] for r in level["runs"]], np.median([r["wall_time"] for r in level["runs"]])
            lines.append(row(f"`{' '.join(data['recipe'])}`", path.relative_to(root), k, f"{min(seeds)}-{max(seeds)}",
                             f"{int((margins >= data['margin']).sum())} of {len(margins)}",
                             f"{np.median(margins):+.2f}", f"{margins.min():+.2f}", f"{wall:.0f}"))  # fmt: skip
    if measured:
        out["best_response_candidates.md"] = "\n".join(lines) + "\n"
    return out


def _margins(level: dict) -> np.ndarray:
    """Each run's test win-rate minus random predators' on the same episodes, at one kernel level."""
    return np.array([r["win_rate"] for r in level["runs"]]) - level["random_win_rate"]


def _recipe_seeds(data: dict) -> str:
    """One best_response.py measurement per tuning seed: the responder's and random's win-rates at each kernel level."""
    levels = data["levels"]
    seeds = sorted({r["seed"] for level in levels.values() for r in level["runs"]})
    lines = [row("seed", *(f"{k}: responder | random | margin | pass" for k in levels)), rule(1 + 4 * len(levels))]
    for seed in seeds:
        cells = []
        for level in levels.values():
            won, rnd = next((r["win_rate"] for r in level["runs"] if r["seed"] == seed), None), level["random_win_rate"]
            if won is None:
                cells += ["n/a"] * 4
            else:
                ok = won - rnd >= data["margin"]
                cells += [f"{won:.2f}", f"{rnd:.2f}", f"{won - rnd:+.2f}", "yes" if ok else "NO"]
        lines.append(row(seed, *cells))
    notes = []
    for k, level in levels.items():
        margins = _margins(level)
        m = level["machine"]
        env = "".join(f", {name}={value}" for name, value in m["environment"].items())
        notes.append(f"{k}: {int((margins >= data['margin']).sum())} of {len(margins)} seeds pass "
                     f"({m['cpu']}, torch {m['torch']}, numpy {m['numpy']}{env})")  # fmt: skip
    caption = (
        f"`{' '.join(data['recipe'])}`: IPPO predators trained against a frozen stationary prey, tuning seeds "
        f"{seeds[0]}-{seeds[-1]}, one run per seed and kernel level; win-rates on {data['test_episodes']} held-out "
        f"test episodes; margin = responder - random predators on the same episodes; pass = margin >= "
        f"{data['margin']}. " + "; ".join(notes) + "."
    )
    return caption + "\n\n" + "\n".join(lines) + "\n"
