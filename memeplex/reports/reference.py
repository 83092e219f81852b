"""simple_reference (docs/reference.md): the references with the hand-coded protocol, and the first look at
IPPO and Method I at their defaults on tuning seeds.

The first-look runs are ordinary run directories under results/reference/first_look/ (written with
--results-dir results/reference/first_look), <algo>/<run name>_s<seed>/, one run name per budget.

`report(results)` returns {file name: text or Figure} ({} without first-look runs):
  references.md     the references and the hand-coded protocol on the test seeds
  first_look.md     per algorithm and run name (a budget and settings): the test normalised score, the
                    communication gap closed, signalling and listening (mean, per seed below)
  first_look.png    the gap closed, signalling and listening on the validation seeds over training, per
                    run name of the longest budget
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memeplex import stats
from memeplex.plots import pyplot
from memeplex.reports.stability import flags
from memeplex.reports.tables import curve_matrix, finished, fmt_seeds, fmt_steps, row, rule, run_args

FIRST_LOOK = Path("reference") / "first_look"  # under results/: the --results-dir of the first-look runs
ALGOS = (("ppo", "IPPO"), ("method_i", "Method I"))
METRICS = (  # (summary key, column)
    ("test_normalised", "test normalised score"),
    ("test_comm_gap", "communication gap closed"),
    ("test_signalling", "signalling (chance 0.33)"),
    ("test_listening", "listening"),
)
PANELS = (  # (metrics.csv column, y label)
    ("eval_comm_gap", "communication gap closed"),
    ("eval_signalling", "signalling accuracy"),
    ("eval_listening", "listening"),
)


def report(results: Path, log=lambda name: None) -> dict:
    root = Path(results) / FIRST_LOOK
    names = sorted({p.name.rsplit("_s", 1)[0] for p in root.glob("reference/*/*_s*") if p.is_dir()})
    groups = [
        (label, name, runs)
        for name in names
        for algo, label in ALGOS
        if (runs := finished(root, algo, name, "reference"))
    ]
    if not groups:
        return {}
    log("reference")
    return {
        "references.md": references_table(groups),
        "first_look.md": first_look_table(groups),
        "first_look.png": figure(groups),
    }


def _cell(values, fmt="{:.3f}", ci: bool = False) -> str:
    """The mean in bold (with its 95% bootstrap CI if asked and there are 2+ values), each value below."""
    head = f"**{fmt.format(np.mean(values))}**"
    if ci and len(values) > 1:
        lo, hi = stats.bootstrap_ci(values)
        head += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
    return head + "<br>(" + " / ".join(fmt.format(v) for v in values) + ")"


def references_table(groups) -> str:
    """The references of the runs' test episodes, and the hand-coded protocol on the same seeds."""
    from memeplex import communication, protocol

    summaries = [s for _, _, runs in groups for _, s, _ in runs]
    refs, n = summaries[0]["test_references"], summaries[0]["test_episodes"]
    assert all(s["test_references"] == refs and s["test_episodes"] == n for s in summaries), "runs of other seeds"
    seeds = protocol.eval_seeds("test", n)
    lines = [
        f"The references on the {n} held-out test episodes of every run (score: the sum over both agents and "
        "25 steps of the rewards, i.e. minus the agents' distances to their own targets), and the hand-coded "
        "protocol (`communication.OneHotSpeaker`: say the partner's target one-hot, go where the partner's "
        "message points) on the same seeds, with its signalling (chance 0.33) and listening.\n",
        row("policy", "score", "normalised score", "communication gap closed", "signalling", "listening"),
        rule(6),
    ]
    policies = [
        ("random", refs["random"], protocol.RandomPolicy("reference")),
        ("no communication (to the landmarks' Fermat point)", refs["no_comm"], communication.NoCommPolicy()),
        ("oracle (privileged: to its own target)", refs["oracle"], protocol.OraclePolicy("reference")),
        ("hand-coded protocol", None, communication.OneHotSpeaker()),
    ]
    for name, score, policy in policies:
        if score is None:
            score = float(protocol.run_episodes("reference", policy, seeds)["scores"].mean())
        talk = communication.diagnose("reference", policy, seeds)
        norm, gap = protocol.normalised(score, refs), protocol.comm_gap_closed(score, refs)
        cells = [f"{score:.2f}", f"{norm:.3f}", f"{gap:.3f}", f"{talk['signalling']:.2f}", f"{talk['listening']:.3f}"]
        lines.append(row(name, *cells))
    return "\n".join(lines) + "\n"


def first_look_table(groups) -> str:
    """One row per algorithm and budget."""
    steps = {
        name: fmt_steps(run_args(runs[0][2]).get("max_steps", runs[0][1]["env_steps"])) for _, name, runs in groups
    }
    base = {}  # per algorithm: the arguments of its runs closest to the defaults
    for label, _, runs in sorted(groups, key=lambda g: len(flags(run_args(g[2][0][2]), {}))):
        base.setdefault(label, run_args(runs[0][2]))
    lines = [
        "IPPO and Method I on simple_reference at their default settings, or with the flags shown, tuning seeds "
        "only, evaluated on the held-out test seeds at the end of training (mean, each seed's value below); env "
        "steps: the budget (--max-steps). Communication gap closed: "
        "(score - no communication) / (oracle - no communication), above 0 when the agents use messages, with "
        "the 95% bootstrap CI of the mean over seeds. "
        "Signalling: held-out accuracy of a decoder that reads the partner's target from an agent's messages "
        "(chance 0.33). Listening: the agents' mean distance to their own targets when they hear another "
        "episode's messages, minus with their own (0: the messages do not change what they do). Flags: the "
        "settings in which the runs differ from the defaults.\n",
        row("algorithm", "env steps", "flags", "seeds", *(label for _, label in METRICS)),
        rule(4 + len(METRICS)),
    ]
    for label, name, runs in groups:
        cells = [_cell([s[key] for _, s, _ in runs], ci=key == "test_comm_gap") for key, _ in METRICS]
        args = run_args(runs[0][2])
        diff = flags(args, {**base[label], "max_steps": args.get("max_steps")})
        lines.append(row(label, steps[name], f"`{diff}`", fmt_seeds([seed for seed, _, _ in runs]), *cells))
    return "\n".join(lines) + "\n"


def figure(groups):
    """The diagnostics over training of the longest budget's runs (one colour per algorithm and run name):
    each seed thin, the mean thick."""
    plt = pyplot()
    budget = lambda runs: run_args(runs[0][2]).get("max_steps", runs[0][1]["env_steps"])
    longest = max(budget(runs) for _, _, runs in groups)
    shown = [g for g in groups if budget(g[2]) == longest]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5.5 * len(PANELS), 4))
    for (key, ylabel), ax in zip(PANELS, axes):
        for k, (label, name, runs) in enumerate(shown):
            x, m = curve_matrix([d for _, _, d in runs], key)
            colour = f"C{k}"
            for curve in m:
                ax.plot(x, curve, color=colour, lw=0.6, alpha=0.4)
            seeds = fmt_seeds([s for s, _, _ in runs])
            ax.plot(x, m.mean(0), color=colour, lw=2, label=f"{label}, {name} (seeds {seeds})")
        if key == "eval_signalling":
            ax.axhline(1 / 3, color="gray", ls=":", label="chance")
        ax.axhline(0.0, color="gray", lw=0.5)
        ax.set_xlabel("env steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("simple_reference: do the agents talk? (validation seeds, during training)")
    fig.tight_layout()
    return fig
