"""The MADDPG sweep on spread (docs/maddpg.md, "What holds MADDPG back"): one candidate setting per directory
results/spread/maddpg_sweep/<candidate>/ holding ordinary run directories (<candidate>/spread/maddpg/
<candidate>_s<seed>/, written by train_maddpg.py with --results-dir results/spread/maddpg_sweep/<candidate>),
tuning seeds only, --final-eval-episodes 0. A candidate is named <group>-<what it changes>; each group has a
<group>-base candidate (pop1-base: a single member with shared networks and the tuning suite's settings), and a
candidate's flags are the arguments in which its runs differ from its group's base. A base candidate also
takes the spread tuning suite's runs of the same configuration (TUNED) on the seeds it has not run itself: they
are the tuned defaults, made by the same script with the same flags.

`report(results)` returns {file name: text or Figure} ({} without sweep runs):
  maddpg_sweep.md          per candidate: flags, seeds, the validation score at the end and the mean of the
                           last 5 evaluations (the tuning score), wall time and throughput
  maddpg_sweep_curves.png  per group, the validation score over env steps of the candidates run on the most
                           seeds, mean over seeds
  maddpg_throughput.md     the defaults' training throughput against the settings before the sweep, side by side
                           (results/benchmarks/maddpg_defaults_throughput.json)
  maddpg_evolution.md      per population candidate: how evolution spends the budget (generations, the
                           fitness episodes' share, the env steps any member's line of descent trained, and
                           what the fittest member of each generation had last had done to it)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memeplex.files import read_metrics
from memeplex.plots import pyplot
from memeplex.reports.stability import _mean_cell, candidates, flags
from memeplex.reports.tables import curve_matrix, fmt_seeds, fmt_steps, row, rule, run_args

THROUGHPUT = "maddpg_defaults_throughput.json"  # results/benchmarks/: the defaults against the settings before
SUITE = "maddpg_sweep"  # results/spread/<SUITE>/<candidate>/
BASE = "base"  # <group>-base: the candidate the group's flags are read against
TUNED = {  # a base candidate -> the tuning suite's run name (results/spread/maddpg/<name>_s<seed>) of its flags
    "pop1-base": "tune-lr0.001-b128-ls16-shared-pop1",
    "pop4-base": "tune-lr0.001-b128-ls16-shared-pop4",
}


def group(name: str) -> str:
    return name.split("-", 1)[0]


def report(results: Path, log=lambda name: None) -> dict:
    log("maddpg sweep")
    cands = candidates(results, (SUITE,), baseline="")
    if not cands:
        return {}
    names = {name for name, _, _ in cands}
    cands += [(base, "maddpg", []) for base in TUNED if base not in names and group(base) in map(group, names)]
    cands = [(name, algo, with_tuned(results, name, runs)) for name, algo, runs in cands]
    cands = [c for c in cands if c[2]]
    cands = sorted(cands, key=lambda c: (group(c[0]), c[0] != f"{group(c[0])}-{BASE}", c[0]))
    out = {"maddpg_sweep.md": table(cands), "maddpg_sweep_curves.png": figure(cands)}
    bench = Path(results) / "benchmarks" / THROUGHPUT
    if bench.exists():
        out["maddpg_throughput.md"] = throughput(json.loads(bench.read_text()))
    populations = [c for c in cands if maddpg_args(c[2][0][1]).get("population_size", 1) > 1]
    if populations:
        out["maddpg_evolution.md"] = evolution(populations)
    return out


def with_tuned(results: Path, name: str, runs: list) -> list:
    """A base candidate's runs plus the tuning suite's runs of its configuration on the other seeds."""
    if name not in TUNED:
        return runs
    seeds = {s for s, _ in runs}
    for summary in sorted((Path(results) / "spread" / "maddpg").glob(f"{TUNED[name]}_s*/summary.json")):
        seed = int(summary.parent.name.rsplit("_s", 1)[1])
        if seed not in seeds and not json.loads(summary.read_text()).get("interrupted"):
            runs.append((seed, summary.parent))
    return sorted(runs)


BEFORE = {  # options added after some of the runs were made: what those runs did (the options' "off")
    "expl_noise_final": -1.0,
    "actor_reg": 0.0,
    "grad_clip": 0.0,
}


def maddpg_args(run_dir: Path) -> dict:
    """A run's arguments, with BEFORE for the options added after it was made; a single member plays no
    tournament, so its --tournament-size is dropped."""
    args = BEFORE | run_args(run_dir)
    if args.get("population_size") == 1:
        args.pop("tournament_size", None)
    return args


def table(cands: list) -> str:
    base = {group(name): maddpg_args(runs[0][1]) for name, _, runs in cands if name == f"{group(name)}-{BASE}"}
    budgets = " / ".join(sorted({fmt_steps(run_args(d).get("max_steps")) for _, _, r in cands for _, d in r}))
    head = ["candidate", "flags", "seeds", "score at the end", "mean of the last 5 evaluations", "wall time, min",
            "env steps/s"]  # fmt: skip
    lines = [
        f"MADDPG on spread ({budgets} env steps), tuning seeds {fmt_seeds([s for _, _, r in cands for s, _ in r])}: "
        "normalised score (validation episodes) of each run's last evaluation and the mean of its last 5 "
        "evaluations (the tuning score); mean in bold, per seed below. Flags: the arguments in which a "
        f"candidate's runs differ from its group's `{BASE}` runs. Wall time and env steps/s (fitness episodes "
        "included, evaluations not) per run, on this repository's 2-core machine, two runs at a time.\n",
        row(*head),
        rule(len(head)),
    ]
    for name, _, runs in cands:
        curves = [read_metrics(d / "metrics.csv") for _, d in runs]
        last = [float(c[-1]["eval_normalised"]) for c in curves]
        last5 = [float(np.mean([float(r["eval_normalised"]) for r in c[-5:]])) for c in curves]
        summaries = [json.loads((d / "summary.json").read_text()) for _, d in runs]
        flag = flags(maddpg_args(runs[0][1]), base.get(group(name), {}))
        lines.append(row(name, f"`{flag}`", fmt_seeds([s for s, _ in runs]), _mean_cell(last), _mean_cell(last5),
                         _mean_cell([s["wall_time"] / 60 for s in summaries], "{:.1f}"),
                         _mean_cell([s["throughput_without_eval"] for s in summaries], "{:.0f}")))  # fmt: skip
    return "\n".join(lines) + "\n"


def figure(cands: list):
    """One panel per group (single member, population): the validation curves, mean over seeds, of the
    candidates run on the most seeds in their group (the one-seed screens are in the table only)."""
    plt = pyplot()
    groups = sorted({group(name) for name, _, _ in cands})
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 5.5), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, g in zip(axes[0], groups):
        members = [c for c in cands if group(c[0]) == g]
        most = max(len(runs) for _, _, runs in members)
        for k, (name, _, runs) in enumerate(c for c in members if len(c[2]) == most):
            steps, y = curve_matrix([d for _, d in runs], "eval_normalised")
            ax.plot(steps, np.nanmean(y, 0), color=colours(k % colours.N), label=name)
        ax.set_xlabel("env steps")
        ax.set_ylabel("normalised score (validation episodes)")
        ax.set_ylim(bottom=-0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"spread: MADDPG sweep, {g} (mean over {most} tuning seeds)")
    fig.tight_layout()
    return fig


KINDS = ("unchanged elite", "clone", "parameter noise", "architecture", "hyperparameter")


def mutation_kind(label: str, elite: bool) -> str:
    """What AgileRL's mutation label (updates.csv: None, param, lr_actor, batch_size, head_net.add_node,
    remove_latent_node, ...) did to a member."""
    if label == "None":
        return KINDS[0] if elite else KINDS[1]
    if label == "param":
        return KINDS[2]
    if label in ("lr_actor", "lr_critic", "batch_size", "learn_step"):
        return KINDS[4]
    return KINDS[3]


def winners(run_dir: Path) -> list:
    """For each generation after the first, what had been done to the member that came out fittest: the
    unchanged elite, an unmutated clone, or a mutation by kind (its label in the previous updates.csv row)."""
    if not (run_dir / "updates.csv").exists():  # no selection yet
        return []
    metrics, updates = read_metrics(run_dir / "metrics.csv"), read_metrics(run_dir / "updates.csv")
    done = {}  # generation -> {member index: kind}
    for u in updates:
        labels = [m.split(":", 1) for m in u["mutations"].split()]
        done[int(u["generation"]) + 1] = {int(k): mutation_kind(v, i == 0) for i, (k, v) in enumerate(labels)}
    return [done[int(m["generation"])][int(m["best_member"])] for m in metrics if int(m["generation"]) in done]


def evolution(cands: list) -> str:
    head = ["candidate", "seeds", "generations", "fitness episodes' share of the env steps",
            "env steps a line of descent trained on", *[f"fittest: {k}" for k in KINDS]]  # fmt: skip
    lines = [
        "How MADDPG's evolution spends its budget on spread, tuning seeds: generations per run, the fitness "
        "episodes' share of the env steps, and the env steps that any member's line of descent trained on (every "
        "member trains --evo-steps per generation, so along each line a population of N learns for 1/N of the "
        "training steps, from a replay buffer that holds every member's data). Then, over the generations after "
        "the first (all seeds), what had been done to the member that came out fittest: the unchanged elite, an "
        "unmutated clone, or a mutation (parameter noise, architecture, RL hyperparameter). Mean over seeds.\n",
        row(*head),
        rule(len(head)),
    ]
    for name, _, runs in cands:
        summaries = [json.loads((d / "summary.json").read_text()) for _, d in runs]
        args = [maddpg_args(d) for _, d in runs]
        gens = [s["generations"] for s in summaries]
        share = [s["fitness_env_steps"] / s["env_steps"] for s in summaries]
        lineage = [(s["env_steps"] - s["fitness_env_steps"]) / a["population_size"] for s, a in zip(summaries, args)]
        kinds = [k for _, d in runs for k in winners(d)]
        lines.append(row(name, fmt_seeds([s for s, _ in runs]), _mean_cell(gens, "{:.0f}"),
                         _mean_cell(share, "{:.1%}"), _mean_cell(lineage, "{:,.0f}"),
                         *[f"{kinds.count(k)} of {len(kinds)}" for k in KINDS]))  # fmt: skip
    return "\n".join(lines) + "\n"


def throughput(bench: dict) -> str:
    """The side-by-side throughput of the settings before the sweep and of its defaults."""
    med = {k: float(np.median(bench[k]["throughput_without_eval"])) for k in ("before", "after")}
    runs = ", ".join(f"{k}: " + " / ".join(f"{x:.0f}" for x in bench[k]["throughput_without_eval"]) for k in med)
    return (
        f"Single member on spread, side by side ({bench['what']}; torch kernels {bench['cpu']}). Median training "
        f"throughput: **{med['before']:.0f}** env steps/s with the settings before the sweep, **{med['after']:.0f}** "
        f"with its defaults: **{med['after'] / med['before']:.2f}x** (per run: {runs}). Median wall time of a whole "
        f"run: {bench['whole_process_wall_s_median']['before']:.0f} s before, "
        f"{bench['whole_process_wall_s_median']['after']:.0f} s after.\n\n"
        f"Before: `{bench['before']['command']}`\n\nAfter: `{bench['after']['command']}`\n"
    )
