"""Compare runs: read run directories, write the markdown tables and plots the README and docs show.

    python compare_results.py --report                 # every suite's tables and figures -> results/*/report/,
                                                       # and the README/docs blocks <!-- report:NAME -->
    python compare_results.py --check                  # regenerate them; exit 1 if a committed table or block
                                                       # differs, or a block names a table that is not made

    python compare_results.py                          # every run under results/spread/
    python compare_results.py --run-name main          # only runs named main_s<seed>
    python compare_results.py --env spread --out-dir results/spread
    python compare_results.py --env tag --run-name main   # self-play: Elo, exploitability, win-rates
    python compare_results.py --results-dir results/sweeps --by-run   # one row per run (a sweep)

Reads results/<env>/<algo>/<run-name>_s<seed>/{summary.json,metrics.csv} and
nothing else.  For every algorithm it reports each metric's per-seed values,
their mean and a bootstrap 95% CI of the mean, and writes
<out-dir>/comparison.md, comparison.json and comparison_plot.png (mean eval
score over env steps with the per-seed range, and the reference lines).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from memeplex import cli, competitive, errors, files, stats
from memeplex.envs import spec
from memeplex.plots import pyplot
from memeplex.reports import (
    benchmarks,
    cooperative,
    dose,
    maddpg_sweep,
    maddpg_tag_form,
    power,
    reference,
    speed,
    spread,
    stability,
    sweeps,
    tag,
)
from memeplex.reports.tables import curve_matrix, find_runs, interval, per_seed, row, rule
from memeplex.suites import ALGO_LABELS

RUN_METRICS = [  # (summary key, label, format) of every run, the last rows of both tables
    ("env_steps", "Env steps", "{:,.0f}"),
    ("wall_time", "Wall time (s)", "{:.0f}"),
    ("throughput_with_eval", "Throughput with eval (env steps/s)", "{:,.0f}"),
    ("throughput_without_eval", "Throughput without eval (env steps/s)", "{:,.0f}"),
    ("throughput_per_member", "Throughput per population member (env steps/s)", "{:,.0f}"),
]
METRICS = [  # (summary key, label, format)
    ("test_normalised", "Normalised test score (held-out episodes)", "{:.3f}"),
    ("test_episodes", "Held-out test episodes", "{:,.0f}"),
    ("test_score", "Test score", "{:.2f}"),
    ("last5_eval_mean", "Last-5 eval mean", "{:.2f}"),
    ("final_eval_score", "Final eval score", "{:.2f}"),
    ("best_mean_score", "Best mean score", "{:.2f}"),
    ("best_single_eval_fitness", "Best single eval fitness", "{:.2f}"),
    ("train_mean_score", "Train mean score (last 100 episodes)", "{:.2f}"),
    *RUN_METRICS,
]
TAG_METRICS = [  # self-play on tag: the final evaluation's Elo vs the rolling pool, then the held-out test games
    ("predator_elo", "Predator Elo (final, rolling pool)", "{:.1f}"),
    ("prey_elo", "Prey Elo (final, rolling pool)", "{:.1f}"),
    ("predator_exploitability", "Predator exploitability (final)", "{:.2f}"),
    ("prey_exploitability", "Prey exploitability (final)", "{:.2f}"),
    ("test_predator_win_vs_random", "Predator win-rate vs random prey (test)", "{:.2f}"),
    ("test_prey_win_vs_random", "Prey win-rate vs random predators (test)", "{:.2f}"),
    ("test_predator_exploitability", "Predator exploitability vs final pool (test)", "{:.2f}"),
    ("test_prey_exploitability", "Prey exploitability vs final pool (test)", "{:.2f}"),
    ("test_contacts_self_play", "Contacts per episode, self-play (test)", "{:.2f}"),
    ("pool_size", "Rolling pool size (snapshots)", "{:.0f}"),
    ("elo_episodes", "Elo episodes per pairing (training)", "{:.0f}"),
    ("test_elo_episodes", "Test episodes per pairing", "{:.0f}"),
    *RUN_METRICS,
]


def metrics_for(env: str) -> list:
    """The (summary key, label, format) rows of an env's comparison table."""
    return TAG_METRICS if env == "tag" else METRICS


def column_label(key) -> str:
    """An experiment's column: "<algorithm label> [<run name>]"."""
    algo, name = key
    return f"{ALGO_LABELS.get(algo, algo)} [{name}]"


def aggregate(experiments: dict, env: str) -> dict:
    """{experiment: its seeds, run directories, and per metric the values, mean and bootstrap 95% CI}."""
    table = {}
    for algo, entries in experiments.items():
        summaries = [json.loads((d / "summary.json").read_text()) for _, d in sorted(entries)]
        table[algo] = {"seeds": [s for s, _ in sorted(entries)], "runs": [str(d) for _, d in sorted(entries)]}
        for key, _, _ in metrics_for(env):
            vals = [s[key] for s in summaries if key in s]
            if vals:
                lo, hi = stats.bootstrap_ci(vals)
                table[algo][key] = {"values": vals, "mean": float(np.mean(vals)), "ci95": [lo, hi]}
    return table


def markdown(table: dict, env: str) -> str:
    """The comparison table: one column per experiment, one row per metric, and its note."""
    algos = sorted(table, key=lambda k: (k[1], list(ALGO_LABELS).index(k[0]) if k[0] in ALGO_LABELS else 99))
    seeds = [f"{column_label(a)}, seeds {', '.join(map(str, table[a]['seeds']))}" for a in algos]
    lines = [row("Metric", *seeds), rule(len(algos) + 1)]
    for key, label, fmt in metrics_for(env):
        cells = []
        for a in algos:
            m = table[a].get(key)
            if m is None:
                cells.append("n/a")
                continue
            if len(m["values"]) > 1:
                cells.append(interval(m["mean"], *m["ci95"], fmt, bold=True) + per_seed(m["values"], fmt))
            else:
                cells.append(f"**{fmt.format(m['mean'])}**")
        lines.append(row(label, *cells))
    note = "\nMean over seeds in bold, bootstrap 95% CI of the mean in brackets, per-seed values below. " + (
        f"Elo: K={competitive.ELO_K:.0f}, random anchored at {competitive.ELO_ANCHOR:.0f}, games against the random "
        "team and "
        "the rolling pool of the run's last snapshots (pool size and episodes per pairing in the table); test rates: "
        "held-out episodes; a predator win = at "
        "least one predator-prey contact; exploitability = max(0, 0.5 - lowest win-rate against a pool snapshot)."
        if env == "tag"
        else "Normalised score: 0 = uniform random policy, 1 = hand-coded oracle, on the same seeds."
    )
    return f"### {env}\n\n" + "\n".join(lines) + "\n" + note + "\n"


def plot_tag(experiments: dict, path: Path) -> None:
    """Predator (solid) and prey (dashed) Elo over env steps, mean over seeds."""
    fig, ax = pyplot().subplots(figsize=(8, 6.5))
    for k, (algo, entries) in enumerate(sorted(experiments.items())):
        for team, style in (("predator", "-"), ("prey", "--")):
            steps, elo = curve_matrix([d for _, d in entries], f"{team}_elo")
            label = f"{column_label(algo)} {team} ({len(entries)} seeds)"
            ax.plot(steps, elo.mean(0), style, color=f"C{k}", label=label)
    ax.axhline(competitive.ELO_ANCHOR, color="gray", ls=":", label="random (1000)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("Elo vs the run's rolling pool")
    ax.set_title("tag: self-play Elo during training (solid: predators, dashed: prey)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    fig.tight_layout()
    files.save_figure(fig, path)


def plot(experiments: dict, env: str, path: Path) -> None:
    """Mean eval score over env steps per experiment, with the min-max band over seeds and the references
    (tag: plot_tag)."""
    if env == "tag":
        return plot_tag(experiments, path)
    fig, ax = pyplot().subplots(figsize=(7.5, 4.5))
    refs = None
    for k, (algo, entries) in enumerate(sorted(experiments.items())):
        steps, scores = curve_matrix([d for _, d in entries], "eval_score")
        ax.plot(steps, scores.mean(0), color=f"C{k}", label=f"{column_label(algo)} (mean of {len(entries)} seeds)")
        ax.fill_between(steps, scores.min(0), scores.max(0), color=f"C{k}", alpha=0.2)
        refs = refs or json.loads((entries[0][1] / "summary.json").read_text()).get("validation_references")
    for key, style in (("oracle", "--"), ("random", ":")):
        if refs and key in refs:
            ax.axhline(refs[key], color="gray", ls=style, label=f"{key} ({refs[key]:.1f})")
    episodes = {
        json.loads((d / "summary.json").read_text()).get("eval_episodes") for es in experiments.values() for _, d in es
    }
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"eval score ({' / '.join(str(e) for e in sorted(episodes - {None})) or '?'} validation episodes)")
    ax.set_title(f"{env}: deterministic evaluation during training (band: min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    files.save_figure(fig, path)


REPORT_BLOCK = re.compile(r"(<!-- report:(?P<name>[\w./-]+) -->\n)(?P<body>.*?)(<!-- /report -->)", re.S)


def write_report(results: Path, out_dir: Path) -> dict:
    """Every table and figure of the result suites (and the throughput benchmarks) into
    out_dir/<env or benchmarks>/report/; returns {"<env>/<name>": text}. Says on stderr which
    suite it is computing, as it starts."""
    if not any(results.glob("**/summary.json")) and not any(results.glob("*/*.json")):
        raise errors.UsageError(f"nothing to report: no run, tag table or benchmark under {results}")
    start = time.perf_counter()
    log = lambda name: print(f"[{time.perf_counter() - start:3.0f} s] {name}", file=sys.stderr, flush=True)
    texts = {}
    for env, make in (
        ("spread", functools.partial(cooperative.report, env="spread")),
        ("reference", functools.partial(cooperative.report, env="reference")),
        ("spread", spread.report),
        ("spread", dose.report),
        ("spread", stability.report),
        ("spread", maddpg_sweep.report),
        ("spread", power.report),
        ("tag", tag.report),
        ("tag", maddpg_tag_form.report),
        ("reference", reference.report),
        ("benchmarks", benchmarks.report),
        ("benchmarks", speed.report),
        ("sweeps", sweeps.report),
    ):
        for name, item in make(results, log=lambda suite: log(f"{env}: {suite}")).items():
            path = out_dir / env / "report" / name
            if isinstance(item, str):
                files.atomic_write(path, item)
                texts[f"{env}/{name}"] = item
            else:
                files.save_figure(item, path)
    if not texts:
        raise errors.UsageError(f"nothing to report: no result suite, tag table or benchmark under {results}")
    return texts


def fill_blocks(text: str, tables: dict) -> tuple[str, list]:
    """Replace every `<!-- report:NAME -->...<!-- /report -->` block's body with the table NAME.
    Returns (the text, problems): a block whose table was not generated keeps its old body and is a
    problem, as is a block marker without its closing marker."""
    problems = []

    def fill(m):
        if m.group("name") in tables:
            return m.group(1) + tables[m.group("name")] + m.group(4)
        problems.append(f"block report:{m.group('name')} has no table in the generated report")
        return m.group(0)

    filled = REPORT_BLOCK.sub(fill, text)
    if text.count("<!-- report:") != len(REPORT_BLOCK.findall(text)):
        problems.append("a <!-- report:NAME --> marker without its <!-- /report -->")
    return filled, problems


def documents(root: Path) -> list:
    """The README and docs/*.md: the documents whose report blocks are filled."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def report(results: Path, check: bool, root: Path = files.ROOT) -> int:
    """Write the report and fill the README/docs blocks (or, with check, regenerate the report elsewhere
    and compare every committed table and every README/docs block with it). Returns the exit code:
    1 if something differs or a block names no generated table."""
    import tempfile

    differ = []
    if check:
        with tempfile.TemporaryDirectory() as tmp:
            tables = write_report(results, Path(tmp))
        committed = {f"{p.parent.parent.name}/{p.name}": p.read_text() for p in results.glob("*/report/*.md")}
        committed.update({f"{p.parent.parent.name}/{p.name}": p.read_text() for p in results.glob("*/report/*.json")})
        differ = sorted(name for name in set(tables) | set(committed) if tables.get(name) != committed.get(name))
    else:
        tables = write_report(results, results)
    errors = []
    for doc in documents(root):
        filled, problems = fill_blocks(doc.read_text(), tables)
        errors += [f"{doc}: {problem}" for problem in problems]
        if filled != doc.read_text() and check:
            differ.append(str(doc))
        elif filled != doc.read_text():
            files.atomic_write(doc, filled)
            print(f"updated {doc}")
    for name in differ:
        print(f"differs from the regenerated report: {name}", file=sys.stderr)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if check:
        verdict = "mismatch" if differ or errors else "all match"
        print(f"checked {len(tables)} tables and the README/docs blocks: {verdict}")
    else:
        print(f"wrote {len(tables)} tables under {results}/*/report/")
    return 1 if differ or errors else 0


def main(argv=None) -> int:
    """--report / --check, or one comparison (or --by-run table) of the runs under --results-dir."""
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--report",
        action="store_true",
        help="every suite's tables and figures (results/*/report/) and the README/docs blocks",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="regenerate the report elsewhere; exit 1 if a committed table or README/docs block differs",
    )
    p.add_argument("--env", default="spread", choices=sorted(spec.ENVS))
    p.add_argument("--results-dir", default="results", help="root of the run directories")
    p.add_argument("--run-name", default=None, help="only runs named <run-name>_s<seed> (default: all)")
    p.add_argument("--out-dir", default=None, help="where to write the comparison (default: <results-dir>/<env>)")
    p.add_argument("--by-run", action="store_true", help="one row per run (for sweeps) instead of per algorithm")
    args = p.parse_args(argv)
    results = Path(args.results_dir)
    if args.report or args.check:
        return report(results, args.check)
    experiments = find_runs(results, args.env, args.run_name)
    if not experiments:
        raise errors.UsageError(
            f"no finished runs under {results / args.env}"
            + (f" named {args.run_name}_s<seed>" if args.run_name else "")
        )
    out = Path(args.out_dir) if args.out_dir else results / args.env
    if args.by_run:
        md = sweeps.by_run_markdown(experiments, args.env)
        files.atomic_write(out / "runs.md", md)
        print(md)
        print(f"wrote {out / 'runs.md'}")
        return 0
    table = aggregate(experiments, args.env)
    if args.env == "tag":
        pools = tag.fixed_pool(results).get("fixed_pool.md")
    md = markdown(table, args.env) + (f"\n### Fixed pools\n\n{pools}" if args.env == "tag" and pools else "")
    files.atomic_write(out / "comparison.md", md)
    files.write_json(out / "comparison.json", {column_label(k): v for k, v in table.items()})
    plot(experiments, args.env, out / "comparison_plot.png")
    print(md)
    print(f"wrote {out / 'comparison.md'}, {out / 'comparison.json'}, {out / 'comparison_plot.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
