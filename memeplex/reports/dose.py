"""The distillation dose sweeps (docs/distillation_dose.md) as tables, one per ladder (a sub-directory
of results/spread/dose/), one row per dose (a run name): its distillation settings, the distillation
gradient steps it made, and what it achieved: the encoders' linear CKA and relative latent distance on
the held-out test episodes' observations, and the test score."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from memeplex.reports.tables import budget, finished, fmt_seeds, row, rule, run_args

DOSE_DIR = Path("spread") / "dose"  # under results/: one sub-directory (--results-dir) per ladder
LADDERS = {  # sub-directory: what its doses vary (rows in run-name order, from no distillation up)
    "shared": "distillation steps through PPO's Adam (`--distill-optimizer shared`, the default), a step after "
    "every update without a clip, first the weight raised, then the steps per event",
    "own": "distillation steps through their own Adam (`--distill-optimizer own`), without a clip, first the "
    "interval lowered, then the steps per event raised",
    "default": "today's default dose (ring, weight 0.1, every 10 updates, PPO's clip and Adam) beside none",
}
COLUMNS = ("dose", "topology", "interval", "weight", "steps per event", "clip", "Adam", "distillation steps made",
           "test CKA", "test relative distance", "test normalised score")  # fmt: skip


def report(results: Path, log=lambda name: None) -> dict:
    """{"dose.md": one table per ladder of the runs under results/spread/dose/<ladder>/ ({} without any)."""
    log("dose")
    tables = [t for ladder in LADDERS if (t := ladder_table(Path(results) / DOSE_DIR, ladder))]
    if not tables:
        return {}
    caption = (
        "Distillation dose sweeps on spread, tuning seeds only (a cell with several seeds: their mean, each "
        "seed's value below). Distillation steps made: gradient steps per student over the run (events x steps "
        "per event). Test CKA and relative distance: the agents' encoders over the topology's pairs (every pair "
        "without distillation) on the observations of the held-out test episodes (linear CKA, 1 = the same up to "
        "rotation and scale; mean ||f_i(o) - f_j(o)|| / mean ||f_j(o)||, 0 = identical).\n\n"
    )
    return {"dose.md": caption + "\n".join(tables)}


def ladder_table(root: Path, ladder: str) -> str:
    """One ladder's caption and table ("" without finished runs)."""
    names = sorted(
        {p.parent.name.rsplit("_s", 1)[0] for p in (root / ladder).glob("spread/method_i/*_s*/summary.json")}
    )
    label_rows = [(name, rows) for name in names if (rows := finished(root / ladder, "method_i", name))]
    if not label_rows:
        return ""
    lines = [row(*COLUMNS), rule(len(COLUMNS))]
    cka = []
    for name, rows in label_rows:
        args = run_args(rows[0][2])
        cka.append(float(np.mean([s["test_cka"] for _, s, _ in rows])))
        lines.append(row(name, *settings(args), cell([steps_made(s, run_args(d)) for _, s, d in rows], "{:,.0f}"),
                         cell([s["test_cka"] for _, s, _ in rows], "{:.3f}"),
                         cell([s["test_rel_distance"] for _, s, _ in rows], "{:.3f}"),
                         cell([s["test_normalised"] for _, s, _ in rows], "{:.3f}")))  # fmt: skip
    seeds = fmt_seeds([seed for _, rows in label_rows for seed, _, _ in rows])
    rising = all(b > a for a, b in zip(cka, cka[1:]))
    caption = (
        f"**{ladder}**: {LADDERS[ladder]}; {budget(label_rows)} env steps, seeds {seeds}. Test CKA rises "
        f"monotonically with the dose (rows in order): {'yes' if rising else 'no'}; from {cka[0]:.3f} to "
        f"{cka[-1]:.3f}.\n\n"
    )
    return caption + "\n".join(lines) + "\n"


def settings(args: dict) -> tuple:
    """A run's distillation settings as table cells: topology, interval, weight, steps per event, clip, Adam."""
    if args["topology"] == "none":
        return "none", "-", "-", "-", "-", "-"
    if args["distill_weight"] == 0:
        return args["topology"], "-", "0", "-", "-", "-"
    own = args.get("distill_max_grad_norm", -1.0)
    clip = f"{args['max_grad_norm']:g} (PPO's)" if own < 0 else "none" if own in (0, math.inf) else f"{own:g}"
    steps = args.get("distill_steps", 1)
    adam = "own" if args.get("distill_optimizer") == "own" else "PPO's"
    return args["topology"], args["distill_interval"], f"{args['distill_weight']:g}", steps, clip, adam


def steps_made(summary: dict, args: dict) -> int:
    """Distillation gradient steps of each student over the run: one event every distill_interval
    updates (none without distillation), distill_steps steps per event."""
    if args["topology"] == "none" or args["distill_weight"] == 0:
        return 0
    return summary["updates"] // args["distill_interval"] * args.get("distill_steps", 1)


def cell(values, fmt: str) -> str:
    """One seed's value, or the mean of several with each seed's below."""
    if len(values) == 1:
        return fmt.format(values[0])
    return fmt.format(float(np.mean(values))) + "<br>(" + " / ".join(fmt.format(v) for v in values) + ")"
