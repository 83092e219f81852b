"""The distillation dose sweep (docs/distillation_dose.md) as a table: one row per dose (a run name
under results/spread/dose/), its distillation settings, the distillation gradient steps it made, and
what it achieved: the encoders' linear CKA and relative latent distance on the held-out test episodes'
observations, and the test score."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from memeplex.reports.tables import budget, finished, fmt_seeds, row, rule, run_args

DOSE_DIR = Path("spread") / "dose"  # the sweep's --results-dir, under results/
COLUMNS = ("dose", "topology", "interval", "weight", "steps per event", "clip", "distillation steps made",
           "test CKA", "test relative distance", "test normalised score")  # fmt: skip


def report(results: Path, log=lambda name: None) -> dict:
    """{"dose.md": the dose table} of the runs under results/spread/dose/ ({} without any)."""
    log("dose")
    root = Path(results) / DOSE_DIR
    names = sorted({p.parent.name.rsplit("_s", 1)[0] for p in root.glob("spread/method_i/*_s*/summary.json")})
    label_rows = [(name, finished(root, "method_i", name)) for name in names]
    label_rows = [(name, rows) for name, rows in label_rows if rows]
    if not label_rows:
        return {}
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
        f"Distillation dose sweep on spread, {budget(label_rows)} env steps, tuning seed(s) {seeds} (a cell with "
        "several seeds: their mean, each seed's value below). Distillation steps made: gradient steps per "
        "student over the run (events x steps per event). Test CKA and relative distance: the agents' encoders "
        "over the topology's pairs (every pair without distillation) on the observations of the held-out test "
        "episodes (linear CKA, 1 = the same up to rotation and scale; mean ||f_i(o) - f_j(o)|| / mean "
        "||f_j(o)||, 0 = identical). Test CKA rises monotonically with the dose (rows in order): "
        f"{'yes' if rising else 'no'}; from {cka[0]:.3f} to {cka[-1]:.3f}.\n\n"
    )
    return {"dose.md": caption + "\n".join(lines) + "\n"}


def settings(args: dict) -> tuple:
    """A run's distillation settings as table cells: topology, interval, weight, steps per event, clip."""
    if args["topology"] == "none":
        return "none", "-", "-", "-", "-"
    if args["distill_weight"] == 0:
        return args["topology"], "-", "0", "-", "-"
    own = args.get("distill_max_grad_norm", -1.0)
    clip = f"{args['max_grad_norm']:g} (PPO's)" if own < 0 else "none" if own in (0, math.inf) else f"{own:g}"
    steps = args.get("distill_steps", 1)
    return args["topology"], args["distill_interval"], f"{args['distill_weight']:g}", steps, clip


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
