"""Long-training stability of the PPO learners: every candidate setting, run to 2M env steps on tuning seeds.

A candidate is one directory results/spread/stability/<candidate>/ holding ordinary run directories
(<candidate>/spread/<algo>/<candidate>_s<seed>/, written by train_ppo.py or train_method_i.py with
--results-dir results/spread/stability/<candidate>); the candidate named "baseline" runs today's defaults,
and every other candidate's flags are the arguments in which its runs differ from the baseline's.

`report(results)` returns {file name: text or Figure}:
  stability.md          per candidate and algorithm: flags, seeds, the normalised validation score at
                        200k / 0.5M / 1M / 2M env steps (mean, per seed below), the peak of the mean curve,
                        how many runs ended below their own 0.5M score, and the diagnostics at the end
                        (mean log std, value loss relative to its 0.5M value)
  stability_curves.png  score, log std, value loss and approx KL over env steps, mean over seeds
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from memeplex.files import read_metrics
from memeplex.plots import pyplot
from memeplex.reports.tables import curve_matrix, fmt_seeds, fmt_steps, row, rule, run_args

SUITES = ("stability", "screen600k")  # results/spread/<suite>/<candidate>/: 2M runs, and shorter screens
BASELINE = "baseline"  # the candidate that runs today's defaults
SHORT, SHORT_BASELINE = "short", "defaults"  # results/spread/short/<candidate>/: the 200k screens, and their baseline
STEPS = (200_000, 500_000, 1_000_000, 2_000_000)  # where the table reads each run's score
REFERENCE = 500_000  # a run "ended below" if its last score is under its score here
WINDOW = 50_000  # env steps of updates.csv averaged into one diagnostic value
NOT_FLAGS = {  # arguments that differ between runs of one candidate, or only say where and how fast it ran
    "seed", "run_name", "results_dir", "checkpoint_dir", "resume", "progress", "torch_threads", "backend",
}  # fmt: skip
PANELS = (  # (column, y label, log scale) of the figure; the first is metrics.csv's, the rest updates.csv's
    ("eval_normalised", "normalised eval score (validation seeds)", False),
    ("log_std", "mean log std", False),
    ("value_loss", "value loss", True),
    ("approx_kl", "approx KL", True),
)


def candidates(results: Path, suites: tuple = SUITES, baseline: str = BASELINE, env: str = "spread") -> list:
    """[(candidate, algo, [(seed, run_dir)])] of the finished, uninterrupted runs of every suite under
    results/<env>/<suite>/<candidate>/<env>/<algo>/; baseline first (a candidate of a suite other than the first
    is named <suite>/<candidate>)."""
    out = []
    cands = [(suite, p) for suite in suites for p in sorted((Path(results) / env / suite).glob("*")) if p.is_dir()]
    for suite, cand in cands:
        for algo_dir in sorted(p for p in (cand / env).glob("*") if p.is_dir()):
            runs = []
            for summary in sorted(algo_dir.glob(f"{cand.name}_s*/summary.json")):
                if not json.loads(summary.read_text()).get("interrupted"):
                    runs.append((int(summary.parent.name.rsplit("_s", 1)[1]), summary.parent))
            if runs:
                name = cand.name if suite == suites[0] else f"{suite}/{cand.name}"
                out.append((name, algo_dir.name, sorted(runs)))
    return sorted(out, key=lambda c: (c[0] != baseline, c[0], c[1]))


def flags(args: dict, base: dict) -> str:
    """The command-line flags in which args differ from the baseline's args ("defaults" if none)."""
    import method_i  # the fields added after the baseline runs were made: their defaults (a script's, lazily)

    defaults = {f.name: f.default for f in dataclasses.fields(method_i.Config)}
    diff = []
    for key in sorted(set(args) | set(base)):
        value = args.get(key)
        if key in NOT_FLAGS or value is None or value == base.get(key, defaults.get(key)):
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            diff.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            diff.append(f"{flag} {' '.join(map(str, value)) if isinstance(value, list) else value}")
    return " ".join(diff) or "defaults"


def score_at(curve: list, step: float) -> float:
    """The normalised score of the evaluation nearest `step` (NaN for an empty curve, or one that ends more
    than WINDOW env steps before `step`)."""
    if not curve or float(curve[-1]["step"]) < step - WINDOW:
        return float("nan")
    return float(min(curve, key=lambda r: abs(float(r["step"]) - step))["eval_normalised"])


def diagnostic(updates: list, key: str, step: float) -> float:
    """Mean of an updates.csv column over the WINDOW env steps up to `step`."""
    vals = [float(r[key]) for r in updates if step - WINDOW < float(r["step"]) <= step]
    return float(np.mean(vals)) if vals else float("nan")


def run_facts(run_dir: Path) -> dict:
    """One run's scores at STEPS, its last score, whether that is below its REFERENCE score, and its end
    diagnostics (log std; value loss divided by its value at REFERENCE)."""
    curve = read_metrics(run_dir / "metrics.csv")
    path = run_dir / "updates.csv"
    updates = read_metrics(path) if path.exists() else []
    last = float(curve[-1]["eval_normalised"])
    end = float(updates[-1]["step"]) if updates else float("nan")
    return {
        "at": [score_at(curve, s) for s in STEPS],
        "last": last,
        "below": last < score_at(curve, REFERENCE),
        "log_std": diagnostic(updates, "log_std", end),
        "value_ratio": diagnostic(updates, "value_loss", end) / diagnostic(updates, "value_loss", REFERENCE),
    }


def _mean_cell(values, fmt: str = "{:.3f}") -> str:
    """Mean in bold, the per-seed values below ("-" where the runs did not get that far)."""
    if all(np.isnan(values)):
        return "-"
    return f"**{fmt.format(np.mean(values))}**<br>(" + " / ".join(fmt.format(v) for v in values) + ")"


def table(cands: list) -> str:
    """The stability table: one row per candidate and algorithm."""
    base = {algo: run_args(runs[0][1]) for name, algo, runs in cands if name == BASELINE}
    base = {algo: base.get(algo, base.get("ppo", {})) for _, algo, _ in cands}  # no baseline of its own: IPPO's
    head = ["candidate", "flags", "seeds", *(fmt_steps(s) for s in STEPS), "peak of the mean curve"]
    head += [f"ended below own {fmt_steps(REFERENCE)}", "log std at end", f"value loss end / {fmt_steps(REFERENCE)}"]
    lines = [row(*head), rule(len(head))]
    for name, algo, runs in cands:
        facts = [run_facts(d) for _, d in runs]
        steps, y = curve_matrix([d for _, d in runs], "eval_normalised")
        mean = np.nanmean(y, 0)
        k = int(np.nanargmax(mean))
        below = [f"s{seed}" for (seed, _), f in zip(runs, facts) if f["below"]]
        lines.append(
            row(
                f"{name} ({algo})",
                f"`{flags(run_args(runs[0][1]), base.get(algo, {}))}`",
                fmt_seeds([s for s, _ in runs]),
                *(_mean_cell([f["at"][j] for f in facts]) for j in range(len(STEPS))),
                f"{mean[k]:.3f} at {fmt_steps(steps[k])}",
                f"{len(below)} of {len(runs)}" + (f" ({', '.join(below)})" if below else ""),
                _mean_cell([f["log_std"] for f in facts], "{:.2f}"),
                _mean_cell([f["value_ratio"] for f in facts], "{:.1f}"),
            )
        )
    return "\n".join(lines) + "\n"


def caption(cands: list) -> str:
    """What the table shows, with the facts read from the runs."""
    args = [run_args(d) for _, _, runs in cands for _, d in runs]
    seeds = fmt_seeds([s for _, _, runs in cands for s, _ in runs])
    budgets = " / ".join(fmt_steps(b) for b in sorted({a.get("max_steps") for a in args} - {None})) or "?"
    episodes = " / ".join(str(e) for e in sorted({a.get("eval_episodes") for a in args} - {None})) or "?"
    return (
        f"Long training ({budgets} env steps), tuning seeds {seeds}: normalised score (0 = random, 1 = oracle) "
        f"of the evaluation nearest each step ({episodes} validation episodes), mean in bold, per seed below. "
        f"Flags: the arguments in which a candidate's runs differ from the {BASELINE} runs (today's defaults; "
        "IPPO's for an algorithm without baseline runs). "
        f"A run ended below its own {fmt_steps(REFERENCE)} score if its last evaluation scores under its "
        f"evaluation nearest {fmt_steps(REFERENCE)}. Log std and value loss: mean over the last "
        f"{fmt_steps(WINDOW)} env steps of updates (value loss divided by its mean over the "
        f"{fmt_steps(WINDOW)} steps up to {fmt_steps(REFERENCE)}).\n\n"
    )


def binned(run_dir: Path, key: str) -> tuple:
    """(bin end steps, mean of an updates.csv column per WINDOW-step bin)."""
    rows = read_metrics(run_dir / "updates.csv")
    steps = np.array([float(r["step"]) for r in rows])
    vals = np.array([float(r[key]) for r in rows])
    bins = np.ceil(steps / WINDOW).astype(int)
    ends = np.unique(bins)
    return ends * WINDOW, np.array([vals[bins == b].mean() for b in ends])


def figure(cands: list):
    """Score, log std, value loss and approx KL over env steps: mean over each candidate's seeds."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    colours = plt.get_cmap("tab10")
    for k, (name, algo, runs) in enumerate(cands):
        colour, label = colours(k % colours.N), f"{name} ({algo}, seeds {fmt_seeds([s for s, _ in runs])})"
        for (key, ylabel, log), ax in zip(PANELS, axes.flat):
            if key == "eval_normalised":
                steps, y = curve_matrix([d for _, d in runs], key)
            else:
                curves = [binned(d, key) for _, d in runs]
                n = min(len(s) for s, _ in curves)
                steps, y = curves[0][0][:n], np.array([v[:n] for _, v in curves])
            ax.plot(steps, np.nanmean(y, 0), color=colour, label=label)
            ax.set_ylabel(ylabel)
            ax.set_yscale("log" if log else "linear")
            ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("env steps")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("spread: long-training stability candidates (mean over tuning seeds)")
    fig.tight_layout()
    return fig


def short_table(cands: list) -> str:
    """The 200k screens: per candidate and algorithm, its flags (against the SHORT_BASELINE runs of the same
    algorithm), the evaluation at the end and the mean of the last 5 evaluations (the tuning score)."""
    base = {algo: run_args(runs[0][1]) for name, algo, runs in cands if name == SHORT_BASELINE}
    steps = " / ".join(sorted({fmt_steps(run_args(d).get("max_steps")) for _, _, runs in cands for _, d in runs}))
    head = ["candidate", "flags", "seeds", "score at the end", "mean of the last 5 evaluations"]
    lines = [
        f"Short budget ({steps} env steps), tuning seeds {fmt_seeds([s for _, _, r in cands for s, _ in r])}: "
        "normalised score (validation episodes) of each run's last evaluation, and the mean of its last 5 "
        f"evaluations; mean in bold, per seed below. Flags: the arguments in which a candidate's runs differ from "
        f"the {SHORT_BASELINE} runs (today's defaults) of the same algorithm.\n",
        row(*head),
        rule(len(head)),
    ]
    for name, algo, runs in cands:
        curves = [read_metrics(d / "metrics.csv") for _, d in runs]
        last = [float(c[-1]["eval_normalised"]) for c in curves]
        last5 = [float(np.mean([float(r["eval_normalised"]) for r in c[-5:]])) for c in curves]
        flag = flags(run_args(runs[0][1]), base.get(algo, base.get("ppo", {})))
        lines.append(row(f"{name} ({algo})", f"`{flag}`", fmt_seeds([s for s, _ in runs]), _mean_cell(last),
                         _mean_cell(last5)))  # fmt: skip
    return "\n".join(lines) + "\n"


def report(results: Path, log=lambda name: None) -> dict:
    """stability.md and stability_curves.png, if any stability run exists; stability_short.md, if any
    200k screen does."""
    log("stability")
    out = {}
    if cands := candidates(results):
        out |= {"stability.md": caption(cands) + table(cands), "stability_curves.png": figure(cands)}
    if short := candidates(results, (SHORT,), SHORT_BASELINE):
        out["stability_short.md"] = short_table(short)
    return out
