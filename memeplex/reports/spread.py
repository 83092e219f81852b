"""The spread suites' tables and figures (run_experiments.py: main, long, wallclock, ablation, scaling).

`report(results)` returns {file name: text or Figure} for every suite whose runs exist:
  main.md / main.json       normalised test score per algorithm: IQM and mean with stratified-bootstrap
                            95% CIs (rliable), P(Method I > IPPO), per-seed values; profile.png
  main_over_training.md     Method I vs IPPO over training: mean validation score over the periodic
                            evaluations (area under the learning curve); main_curves.png
  long.md, long_curves.png  Method I and IPPO to 2M env steps, P(Method I > IPPO); validation curves
                            (mean over seeds, band from the lowest to the highest seed)
  wallclock.md              every algorithm given MADDPG's median 200k wall time
  ablation.md, ablation.png distillation weight / interval / topology and the two controls
  cka.md, cka.png           linear CKA between agents' latents over training, per ablation configuration
  scaling.md, scaling.png   Method I vs IPPO with 3 and 6 agents
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from memeplex import stats, suites
from memeplex.files import read_metrics
from memeplex.plots import pyplot
from memeplex.reports.tables import (
    all_seeds,
    budget,
    curve_matrix,
    fact,
    finished,
    fmt_seeds,
    fmt_steps,
    improvement,
    run_args,
    score_table,
    scores,
)

MAIN = [(a.label, a.algo_dir, suites.MAIN_RUN + a.suffix)  # (label, dir, run)
        for a in map(suites.ALGORITHMS.get, suites.V1_ALGORITHMS)]  # fmt: skip
METHOD_I, IPPO = MAIN[0][0], MAIN[1][0]
VALIDATION = "normalised eval score (validation seeds)"  # the learning curves' y axis


def main_suite(results: Path) -> dict:
    """main.md/.json: every algorithm's test score; the curves over training; profile.png."""
    rows = [(label, finished(results, algo, name)) for label, algo, name in MAIN]
    if not any(r for _, r in rows):
        return {}
    table, data = score_table(rows)
    text = (
        f"Normalised test score at {budget(rows)} env steps (held-out test episodes, "
        f"{fact(rows, lambda s, a: s.get('test_episodes'))} per run; 0 = random, 1 = hand-coded oracle), "
        f"reporting seeds {all_seeds(rows)}{_tuning(results)}.\n\n" + table
    )
    by = {label: r for label, r in rows}
    if by[METHOD_I] and by[IPPO]:
        line, data["p_method_i_over_ippo"] = improvement(by[METHOD_I], by[IPPO], "Method I", "IPPO")
        text += "\n" + line
    out = {"main.md": text, "main.json": json.dumps(data, indent=2) + "\n"}
    ppo_rows = rows[:2]  # Method I and IPPO: the same evaluation schedule, so their curves compare step by step
    if all(r for _, r in ppo_rows):
        out.update(_over_training(ppo_rows))
    present = {label: scores(r) for label, r in rows if r}
    taus = np.linspace(-0.25, 1.25, 61)
    taus, profiles, cis = stats.performance_profile(present, taus)
    title = f"spread, {budget(rows)} env steps"
    out["profile.png"] = stats.performance_profile_figure(taus, profiles, cis, title=title)
    return out


def _tuning(results: Path) -> str:
    """How the main suite's hyperparameters were chosen, from results/spread/tuning/chosen.json."""
    path = suites.chosen_path(results)
    if not path.exists():
        return ""
    chosen = json.loads(path.read_text())
    candidates = "; ".join(f"{a['label']}: {len(a['candidates'])}" for a in chosen["algorithms"].values())
    return (
        f"; hyperparameters chosen on tuning seeds {fmt_seeds(chosen['tuning_seeds'])} at "
        f"{fmt_steps(chosen['tuning_steps'])} env steps (candidates per algorithm: {candidates})"
    )


def _over_training(rows: list) -> dict:
    """How fast each method learns, from the periodic evaluations on the validation seeds: every run's
    mean normalised score over its evaluations (the area under its learning curve per step, so early
    progress counts), with IQM and P(Method I > IPPO); and the curves."""

    def area(run_dir: Path) -> float:
        return float(np.mean([float(m["eval_normalised"]) for m in read_metrics(run_dir / "metrics.csv")]))

    auc_rows = [(label, [(seed, {"auc": area(d)}, d) for seed, _, d in runs]) for label, runs in rows]
    table, _ = score_table(auc_rows, key="auc")
    line, _ = improvement(auc_rows[0][1], auc_rows[1][1], "Method I", "IPPO", key="auc")
    text = (
        "Over training: each run's mean normalised score over its periodic evaluations "
        f"({fact(rows, lambda s, a: a.get('eval_episodes'))} validation episodes every "
        f"{fact(rows, lambda s, a: a.get('eval_interval'), fmt_steps)} env steps), i.e. the area under its learning "
        "curve: a measure of how fast it learns, not only where it ends.\n\n" + table + "\n" + line
    )
    fig = _curves(rows, "eval_normalised", VALIDATION, f"spread: learning curves to {budget(rows)}")
    return {"main_over_training.md": text, "main_curves.png": fig}


def long_suite(results: Path) -> dict:
    """long.md: Method I and IPPO to 2M env steps; long_curves.png."""
    rows = [(label, finished(results, algo, suites.LONG_RUN)) for label, algo, _ in MAIN[:2]]
    if not any(r for _, r in rows):
        return {}
    table, _ = score_table(rows)
    text = f"Normalised test score after {budget(rows)} env steps, reporting seeds {all_seeds(rows)}.\n\n" + table
    if all(r for _, r in rows):
        text += "\n" + improvement(rows[0][1], rows[1][1], "Method I", "IPPO")[0]
    text += "\n" + _peaks(rows)
    fig = _curves(rows, "eval_normalised", VALIDATION, f"spread: learning curves to {budget(rows)}")
    return {"long.md": text, "long_curves.png": fig}


def _peaks(label_rows) -> str:
    """Where each label's mean validation curve peaks, and where it ends."""
    parts = []
    for label, rows in label_rows:
        if rows:
            steps, y = curve_matrix([d for _, _, d in rows], "eval_normalised")
            y = np.nanmean(y, 0)
            k = int(np.nanargmax(y))
            parts.append(f"{label}: peak {y[k]:.3f} at {fmt_steps(steps[k])}, {y[-1]:.3f} at {fmt_steps(steps[-1])}")
    return f"Mean validation curve over seeds (normalised): {'; '.join(parts)}.\n"


def wallclock_suite(results: Path) -> dict:
    """wallclock.md: every algorithm given MADDPG (population 4)'s median wall time."""
    rows = [(label, finished(results, algo, name.replace(suites.MAIN_RUN, suites.WALLCLOCK_RUN)))
            for label, algo, name in MAIN]  # fmt: skip
    if not any(r for _, r in rows):
        return {}
    limits = sorted({run_args(d)["max_time"] for _, r in rows for _, _, d in r})
    table, _ = score_table(rows)
    steps = ", ".join(f"{label}: {np.median([s['env_steps'] for _, s, _ in r]):,.0f}" for label, r in rows if r)
    walls = "; ".join(
        f"{label}: {min(scores(r, 'wall_time')):.0f}-{max(scores(r, 'wall_time')):.0f} s" for label, r in rows if r
    )
    below = "; ".join(f"{label}: {int((scores(r) < 0).sum())} of {len(r)}" for label, r in rows if r)
    main = [(label, finished(results, algo, name)) for label, algo, name in MAIN[2:3]]
    return {
        "wallclock.md": (
            f"Normalised test score, reporting seeds {all_seeds(rows)}, with every algorithm given MADDPG "
            f"(population 4)'s median {budget(main)}-step wall time ({', '.join(f'{b:g} s' for b in limits)}). "
            f"Median env steps: {steps}. Wall time, lowest-highest seed: {walls}. Seeds below random "
            f"(normalised test score < 0): {below}.\n\n" + table
        )
    }


def ablation_configs(results: Path) -> list:
    """[(setting, finished rows)] of every Method I ablation run name abl-<setting>."""
    prefix = suites.ABLATION_PREFIX
    paths = (results / "spread" / "method_i").glob(f"{prefix}*/summary.json")
    names = sorted({p.parent.name.rsplit("_s", 1)[0] for p in paths})
    return [(name.removeprefix(prefix), finished(results, "method_i", name)) for name in names]


def ablation_suite(results: Path) -> dict:
    """ablation.md/.png: Method I with one distillation setting changed, and the controls; cka.md/.png."""
    rows = [(label, r) for label, r in ablation_configs(results) if r]
    if not rows:
        return {}
    table, data = score_table(rows)
    fig = _interval_figure(data, "Method I ablations and controls: normalised test score (IQM, 95% CI)")
    cka = _curves(rows, "latent_cka", "linear CKA between agents' latents", "alignment over training (probe batch)")
    final_cka = {
        label: [float(read_metrics(d / "metrics.csv")[-1].get("latent_cka", "nan")) for _, _, d in r]
        for label, r in rows
    }
    return {
        "cka.md": (
            "Linear CKA between the agents' latents on the probe batch at the last evaluation (1 = the same up to "
            "rotation and scale), mean over seeds [lowest, highest seed]: "
            + "; ".join(f"{label} {np.mean(v):.2f} [{min(v):.2f}, {max(v):.2f}]" for label, v in final_cka.items())
            + ".\n"
        ),
        "ablation.md": (
            f"Method I at {budget(rows)} env steps, reporting seeds {all_seeds(rows)}, with one distillation "
            "setting changed (topology-none = IPPO with Method I's PPO settings), and the two controls "
            "(target-shuffled: a random teacher's latent of another observation; target-random-encoder: a frozen "
            "random encoder), same weight and schedule.\n\n" + table
        ),
        "ablation.png": fig,
        "cka.png": cka,
    }


def scaling_suite(results: Path) -> dict:
    """scaling.md/.png: Method I and IPPO with N agents, per N."""
    prefix = suites.SCALING_PREFIX
    names = [re.fullmatch(re.escape(prefix) + r"(\d+)_s\d+", p.name) for p in (results / "spread").glob(f"*/{prefix}*")]
    sizes = sorted({int(m.group(1)) for m in names if m})
    rows = [(f"{label}, N={n}", finished(results, algo, f"{prefix}{n}")) for n in sizes for label, algo, _ in MAIN[:2]]
    if not any(r for _, r in rows):
        return {}
    table, data = score_table(rows)
    text = (
        f"Normalised test score at {budget(rows)} env steps with N agents, reporting seeds {all_seeds(rows)} "
        "(references computed per N).\n\n" + table
    )
    for n in sizes:
        x, y = dict(rows)[f"{METHOD_I}, N={n}"], dict(rows)[f"{IPPO}, N={n}"]
        if x and y:
            text += "\n" + improvement(x, y, f"Method I, N={n}", f"IPPO, N={n}")[0]
    return {"scaling.md": text, "scaling.png": _interval_figure(data, "Method I vs IPPO by team size (IQM, 95% CI)")}


def report(results: Path, log=lambda name: None) -> dict:
    """Every spread suite's tables and figures; log(name) is called as each suite starts."""
    out = {}
    for suite in (main_suite, long_suite, wallclock_suite, ablation_suite, scaling_suite):
        log(suite.__name__)
        out.update(suite(Path(results)))
    return out


# ----------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------


def _curves(label_rows, key: str, ylabel: str, title: str):
    """Mean over seeds of a metrics.csv column over env steps, with the min-max band across seeds."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.get_cmap("tab20" if len(label_rows) > 10 else "tab10")
    for k, (label, rows) in enumerate(label_rows):
        if not rows:
            continue
        steps, y = curve_matrix([d for _, _, d in rows], key)
        ax.plot(steps, np.nanmean(y, 0), color=colours(k % colours.N), label=f"{label} ({len(rows)} seeds)")
        ax.fill_between(steps, np.nanmin(y, 0), np.nanmax(y, 0), color=colours(k % colours.N), alpha=0.1)
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _interval_figure(data: dict, title: str):
    """Each label's IQM with its 95% CI, and its seeds as dots (score_table's JSON)."""
    labels = list(data)
    fig, ax = pyplot().subplots(figsize=(7.5, 0.9 + 0.35 * len(labels)))
    for k, label in enumerate(labels):
        iqm = data[label]["iqm"]
        ax.errorbar(iqm["value"], k, xerr=[[iqm["value"] - iqm["lo"]], [iqm["hi"] - iqm["value"]]], fmt="o", color="C0")
        ax.scatter(data[label]["values"], [k] * len(data[label]["values"]), s=8, color="gray", alpha=0.6)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("normalised test score (0 = random, 1 = oracle); dots: seeds")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
