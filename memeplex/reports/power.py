"""How many reporting seeds a comparison needs (run_experiments.py --suite power): Method I and IPPO trained with
the same tuning seed share initial weights and environments, so the spread that matters is that of their per-seed
differences. From it, the number of paired seeds whose paired t-test detects POWER_EFFECTS[budget] with 80% power,
and what today's 10 reporting seeds can detect.

The score is each run's last validation evaluation (summary.json `final_eval_normalised`, --eval-episodes
episodes on the validation seeds; the suite never plays the test seeds), the counterpart of the reported final
test score.

`report(results)` returns {file name: text} ({} without power runs):
  power.md    per budget: each algorithm's mean and between-seed sd, the paired difference with its bootstrap CI,
              the differences' sd and the two algorithms' correlation, the minimal detectable effect of 10 seeds,
              and the seeds needed, paired and (for algorithms that share no initial weights) unpaired
  power.json  the same numbers, for the suites
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from memeplex import stats
from memeplex.reports.tables import finished, fmt_seeds, fmt_steps, row, rule
from memeplex.suites import POWER_EFFECTS, POWER_RUNS, POWER_SEEDS

SCORE = "final_eval_normalised"  # the last validation evaluation
TODAY = 10  # the reporting seeds of the published results
PAIR = ("method_i", "ppo")  # the question's comparison: x - y


def measure(results: Path, steps: int) -> dict | None:
    """The power numbers of one budget, or None with fewer than 3 seeds on which both algorithms finished."""
    name = POWER_RUNS[steps]
    by_algo = [{seed: s[SCORE] for seed, s, _ in finished(Path(results), algo, name)} for algo in PAIR]
    seeds = sorted(set(by_algo[0]) & set(by_algo[1]))
    if len(seeds) < 3:
        return None
    x, y = (np.array([a[s] for s in seeds]) for a in by_algo)
    d = stats.paired_difference(x, y)
    effect = POWER_EFFECTS[steps]
    unpaired_sd = math.sqrt(x.var(ddof=1) + y.var(ddof=1))  # the sd of a difference of independent runs
    return {
        "run_name": name,
        "steps": steps,
        "seeds": seeds,
        "effect": effect,
        "mean": {PAIR[0]: float(x.mean()), PAIR[1]: float(y.mean())},
        "sd": {PAIR[0]: float(x.std(ddof=1)), PAIR[1]: float(y.std(ddof=1))},
        "correlation": float(np.corrcoef(x, y)[0, 1]),
        "difference": d._asdict(),
        "mde_today": stats.minimal_detectable_effect(d.sd, TODAY),
        "seeds_needed": stats.seeds_for_power(d.sd, effect),
        "seeds_needed_unpaired": stats.seeds_for_power(unpaired_sd, effect),
    }


def report(results: Path, log=lambda name: None) -> dict:
    log("power")
    found = [m for m in (measure(results, steps) for steps in POWER_SEEDS) if m]
    if not found:
        return {}
    return {"power.md": table(found), "power.json": json.dumps(found, indent=2) + "\n"}


def table(found: list) -> str:
    head = ["budget", "tuning seeds", "Method I: mean (sd)", "IPPO: mean (sd)", "Method I - IPPO, paired [95% CI]",
            "sd of the differences", "correlation", f"detectable with {TODAY} seeds", "effect to detect",
            "seeds needed, paired", "seeds needed, unpaired"]  # fmt: skip
    lines = [
        "How many reporting seeds: Method I and IPPO with the same tuning seed (same initial weights and "
        "environments), the last validation evaluation's normalised score "
        f"(`{SCORE}`), paired by seed. Detectable: the smallest true difference a paired t-test on that many seeds "
        "finds with 80% power (two-sided 5%), given the sd of the differences. Seeds needed: the fewest paired "
        "seeds that detect the effect; unpaired: the same for two algorithms whose runs share no initial weights "
        "(the sum of the two variances).\n",
        row(*head),
        rule(len(head)),
    ]
    for m in found:
        d = m["difference"]
        lines.append(row(fmt_steps(m["steps"]), fmt_seeds(m["seeds"]),
                         *(f"{m['mean'][a]:.3f} ({m['sd'][a]:.3f})" for a in PAIR),
                         f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]", f"{d['sd']:.3f}",
                         f"{m['correlation']:+.2f}", f"{m['mde_today']:.3f}", f"{m['effect']:.2f}",
                         f"**{m['seeds_needed']}**", f"{m['seeds_needed_unpaired']}"))  # fmt: skip
    return "\n".join(lines) + "\n"
