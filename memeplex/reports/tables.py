"""What every report table is built from: the finished runs (of a suite, or every experiment), the
facts a caption states (budget, seeds, episodes: read from the runs, never written by hand), markdown
rows and interval cells, and the score table (IQM and mean with rliable's 95% CIs) with P(X > Y)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from memeplex import stats
from memeplex.files import read_metrics

METRIC = "test_normalised"  # the held-out test episodes' normalised score: 0 = random, 1 = oracle


def finished(results: Path, algo: str, run_name: str, env: str = "spread") -> list:
    """[(seed, summary, run_dir)] of the finished, uninterrupted runs <run_name>_s<seed>, by seed."""
    out = []
    for path in sorted((results / env / algo).glob(f"{run_name}_s*/summary.json")):
        m = re.fullmatch(re.escape(run_name) + r"_s(\d+)", path.parent.name)
        summary = json.loads(path.read_text())
        if m and not summary.get("interrupted"):
            out.append((int(m.group(1)), summary, path.parent))
    return sorted(out, key=lambda r: r[0])


def find_runs(results: Path, env: str, run_name: str | None) -> dict:
    """{(algo, run name): [(seed, run_dir)]} of finished runs (summary.json present,
    not interrupted); runs of one name and algorithm are the seeds of one experiment."""
    experiments = {}
    for summary in sorted((results / env).glob("*/*/summary.json")):
        run_dir = summary.parent
        m = re.fullmatch(r"(.+)_s(\d+)", run_dir.name)
        if not m or (run_name is not None and m.group(1) != run_name):
            continue
        if json.loads(summary.read_text()).get("interrupted"):
            print(f"skipping interrupted run {run_dir}", file=sys.stderr)
            continue
        experiments.setdefault((run_dir.parent.name, m.group(1)), []).append((int(m.group(2)), run_dir))
    return experiments


def scores(rows, key: str = METRIC) -> np.ndarray:
    """One summary value per run of `finished` rows."""
    return np.array([s[key] for _, s, _ in rows], dtype=float)


def run_args(run_dir: Path) -> dict:
    """A run's command-line arguments, from its config.json ({} without one)."""
    path = run_dir / "config.json"
    return json.loads(path.read_text())["args"] if path.exists() else {}


def curve_matrix(run_dirs, key: str) -> tuple:
    """(env steps, [run, evaluation] array of a metrics.csv column; NaN where a row lacks it) of the runs,
    up to the shortest run."""
    curves = [read_metrics(d / "metrics.csv") for d in run_dirs]
    n = min(len(c) for c in curves)
    steps = np.array([float(r["step"]) for r in curves[0][:n]])
    return steps, np.array([[float(r.get(key, np.nan)) for r in c[:n]] for c in curves])


# ----------------------------------------------------------------------------
# Caption facts
# ----------------------------------------------------------------------------


def fmt_steps(n) -> str:
    """An env-step count as the captions write it: 200k, 2M, 2.16M, 390k."""
    return f"{n / 1e6:.3g}M" if n >= 1e6 else f"{n / 1e3:.3g}k" if n >= 1e3 else f"{n:g}"


def fmt_seeds(seeds) -> str:
    """Seeds as the captions write them: 1-10 when consecutive, else 1, 3, 5."""
    n = sorted(set(seeds))
    return f"{n[0]}-{n[-1]}" if len(n) > 2 and n == list(range(n[0], n[-1] + 1)) else ", ".join(map(str, n))


def fact(label_rows, get, fmt=str) -> str:
    """What the runs of label_rows record for one fact (get(summary, args) -> value), as caption text:
    the values that occur, " / " between them; "?" when no run records it."""
    values = {get(s, run_args(d)) for _, rows in label_rows for _, s, d in rows}
    return " / ".join(fmt(v) for v in sorted(values - {None})) or "?"


def budget(label_rows) -> str:
    """The runs' env-step budget (--max-steps), as caption text."""
    return fact(label_rows, lambda s, a: a.get("max_steps"), fmt_steps)


def all_seeds(label_rows) -> str:
    """Every seed of the runs, as caption text."""
    return fmt_seeds([seed for _, rows in label_rows for seed, _, _ in rows])


# ----------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------


def row(*cells) -> str:
    """A markdown table row: | a | b |, an empty cell as | |."""
    return "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"


def rule(columns: int) -> str:
    """The line under a markdown table's header: |---|---|."""
    return "|---" * columns + "|"


def interval(value, lo, hi, fmt: str = "{:.3f}", bold: bool = False) -> str:
    """A point estimate and its interval: 0.412 [0.380, 0.450] (bold: **0.412** [0.380, 0.450])."""
    point = f"**{fmt.format(value)}**" if bold else fmt.format(value)
    return f"{point} [{fmt.format(lo)}, {fmt.format(hi)}]"


def per_seed(values, fmt: str) -> str:
    """The per-seed values under a mean: <br>(0.10 / 0.20)."""
    return "<br>(" + " / ".join(fmt.format(v) for v in values) + ")"


def mean_cell(values, fmt: str = "{:.2f}", with_seeds: bool = True) -> str:
    """Mean [stratified-bootstrap 95% CI] (rliable), with the per-seed values below."""
    e = stats.aggregate({"x": np.asarray(values, dtype=float)}, which=("mean",))["x"]["mean"]
    cell = interval(e.value, e.lo, e.hi, fmt)
    return cell + per_seed(values, fmt) if with_seeds else cell


def score_table(label_rows: list, key: str = METRIC) -> tuple[str, dict]:
    """A markdown table of IQM and mean (95% CIs) per label, with per-seed values; and its JSON."""
    values = {label: scores(rows, key) for label, rows in label_rows if rows}
    agg = stats.aggregate(values)
    lines = [row("", "runs", "IQM [95% CI]", "mean [95% CI]", "per seed"), rule(5)]
    data = {}
    for label, rows in label_rows:
        if not rows:
            continue
        a = agg[label]
        seeds = ", ".join(f"s{seed}: {s[key]:.3f}" for seed, s, _ in rows)
        lines.append(row(label, a["runs"], interval(*a["iqm"]), interval(*a["mean"]), seeds))
        data[label] = {
            "iqm": a["iqm"]._asdict(),
            "mean": a["mean"]._asdict(),
            "seeds": [seed for seed, _, _ in rows],
            "values": values[label].tolist(),
        }
    return "\n".join(lines) + "\n", data


def improvement(x_rows, y_rows, x: str, y: str, key: str = METRIC) -> tuple[str, dict]:
    """P(x > y) with its 95% CI as a caption line, and as JSON."""
    p, (lo, hi) = stats.probability_of_improvement(scores(x_rows, key), scores(y_rows, key))
    return (
        f"P({x} > {y}) = {interval(p, lo, hi)} (probability that a run of the first scores above "
        f"a run of the second; rliable, stratified bootstrap 95% CI)\n"
    ), {"value": p, "lo": lo, "hi": hi}
