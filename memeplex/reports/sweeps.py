"""Exploratory sweeps as by-run tables (compare_results.py --by-run, and results/sweeps/report/ with
--report): one table per algorithm, one row per run, the options in which its runs differ and their
validation-seed scores, best first."""

from __future__ import annotations

import json
from pathlib import Path

from memeplex import options
from memeplex.envs import spec
from memeplex.reports.tables import find_runs
from memeplex.suites import ALGO_LABELS

IGNORED_ARGS = {  # options that never make runs differ in what they learn
    "run_name",
    "results_dir",
    "checkpoint_dir",
    "progress",
    "resume",
    "torch_threads",
    "final_eval_episodes",
}


def by_run_markdown(experiments: dict, env: str) -> str:
    """One table per algorithm, one row per run: the options in which its runs
    differ, and the validation-seed scores (a sweep is judged on these, never
    on test)."""
    return "\n".join(by_run_tables(experiments, env).values())


def by_run_tables(experiments: dict, env: str) -> dict:
    """{algorithm: its by-run table}."""
    return {
        algo: _by_run_table({k: v for k, v in experiments.items() if k[0] == algo}, env, algo)
        for algo in sorted({k[0] for k in experiments})
    }


def report(results: Path, log=lambda name: None) -> dict:
    """The exploratory sweeps under <results>/sweeps as by-run tables: {"<env>_<algo>.md": table}."""
    log("by-run tables")
    return {
        f"{env}_{algo}.md": table
        for env in sorted(spec.ENVS)
        for algo, table in by_run_tables(find_runs(results / "sweeps", env, None), env).items()
    }


def _by_run_table(experiments: dict, env: str, algo: str) -> str:
    entries = [(seed, d) for es in experiments.values() for seed, d in es]
    configs = [json.loads((d / "config.json").read_text()) for _, d in entries]
    values = [{**c.get("method_config", {}), **c["args"]} for c in configs]
    ignored = IGNORED_ARGS | (set() if env == "tag" else set(options.SELF_PLAY_OPTIONS))  # tag-only options
    keys = sorted({k for v in values for k in v} - ignored)
    varying = [k for k in keys if k != "seed" and len({json.dumps(v.get(k)) for v in values}) > 1]
    dumped = {k: [json.dumps(v.get(k)) for v in values] for k in varying}
    mode = {k: max(dumped[k], key=dumped[k].count) for k in varying}
    rows = []
    for (seed, d), v in zip(entries, values):
        s = json.loads((d / "summary.json").read_text())
        diff = (
            ", ".join(f"{k}={v.get(k)}" for k in varying if json.dumps(v.get(k)) != mode[k]) or "(the common setting)"
        )
        rows.append(
            (
                s["last5_eval_normalised"],
                f"| {d.name} | {seed} | {diff} | {s['final_eval_normalised']:.3f} | "
                f"{s['last5_eval_normalised']:.3f} | {s['env_steps']:,} |",
            )
        )
    common = ", ".join(f"{k}={json.loads(m)}" for k, m in mode.items())
    head = (
        "| run | seed | options that differ from the common setting | final eval normalised | "
        "last-5 eval normalised | env steps |\n|---|---|---|---|---|---|"
    )
    body = "\n".join(r for _, r in sorted(rows, key=lambda r: -r[0]))
    return (
        f"### {env}, {ALGO_LABELS.get(algo, algo)}: one row per run, best last-5 first\n\n{head}\n{body}\n\n"
        f"Common setting of the options that vary: {common or '(none vary)'}.  "
        f"Scores are on the validation seeds of the periodic evaluations "
        f"({' / '.join(str(e) for e in sorted({v.get('eval_episodes') for v in values}, key=str))} episodes each); "
        "normalised: 0 = random, 1 = oracle.\n"
    )
