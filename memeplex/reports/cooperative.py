"""The cooperative tasks' result suites (run_experiments.py: tune, choose, main, dose, controls, scaling, cpu) on
spread and reference, as tables and a figure: `report(results, env)` returns {file name: text or Figure} for
every suite whose runs exist (results/<env>/report/):

  tuning.md             per budget and algorithm: the candidates, the chosen one and its tuning score
  headline.md           per budget: Method I against IPPO (paired difference, what the seeds could detect,
                        P(improvement)) and the best algorithm
  compare_<budget>.md   per algorithm: IQM and mean of the normalised test score with stratified-bootstrap 95% CIs
   / .json              (rliable; on reference also the communication gap closed); then Method I against each
                        other algorithm: the paired per-seed difference with its bootstrap CI and the minimal
                        detectable effect (80% power, two-sided 5%) of that many pairs, and P(Method I > X)
  dose_response.md/.png 2M: IPPO (no distillation), Method I's dose ladder, IPPO with shared parameters (one
                        encoder: perfect alignment); the achieved test CKA against the score
  controls.md           2M: the ladder's top dose toward the true peer, a shuffled peer and a frozen random encoder
  team_size.md          spread, 2M: Method I against IPPO with 3 agents (main) and with 6
  cpu_matched.md        spread: every algorithm for MADDPG's (single member) median CPU time

Every number is recomputed from the runs' summary.json with fixed bootstrap seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memeplex import stats, suites
from memeplex.plots import pyplot
from memeplex.reports.dose import steps_made
from memeplex.reports.tables import finished, fmt_seeds, interval, row, rule, run_args

SCORE = "test_normalised"  # held-out test episodes: 0 = random, 1 = oracle
GAP = "test_comm_gap"  # reference: the communication gap closed (docs/reference.md)
X = "method_i"  # the question's algorithm: Method I against every other


def runs(results: Path, env: str, key: str, name: str) -> dict:
    """{seed: summary} of an algorithm's finished runs <name><suffix>_s<seed>."""
    a = suites.ALGORITHMS[key]
    return {seed: s for seed, s, _ in finished(results, a.algo_dir, name + a.suffix, env)}


def run_dirs(results: Path, env: str, key: str, name: str) -> list:
    a = suites.ALGORITHMS[key]
    return [d for _, _, d in finished(results, a.algo_dir, name + a.suffix, env)]


def metrics_of(env: str) -> tuple:
    """(summary key, column) of the scores a task reports."""
    out = ((SCORE, "normalised test score"),)
    return out + (((GAP, "communication gap closed"),) if env == "reference" else ())


def mean_ci(values) -> str:
    """mean [bootstrap 95% CI]."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return f"{v.mean():.3f}" if len(v) else "-"
    return interval(float(v.mean()), *stats.bootstrap_ci(v))


def paired(x: dict, y: dict, key: str = SCORE) -> stats.PairedDifference | None:
    """x - y over the seeds both have (None with fewer than 2)."""
    seeds = sorted(set(x) & set(y))
    if len(seeds) < 2:
        return None
    return stats.paired_difference([x[s][key] for s in seeds], [y[s][key] for s in seeds])


def difference_cell(d: stats.PairedDifference | None) -> str:
    return "-" if d is None else f"{d.mean:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}]"


def verdict(d: stats.PairedDifference) -> str:
    """What a paired difference says, with the smallest effect its seeds could see."""
    if d.lo > 0:
        return "higher"
    if d.hi < 0:
        return "lower"
    return f"no difference detected (detectable: {d.mde:.3f})"


# ----------------------------------------------------------------------------
# tuning
# ----------------------------------------------------------------------------


def tuning(results: Path, env: str) -> dict:
    """tuning.md: per budget and algorithm, the candidates and the chosen one; on reference also the chosen one's
    communication gap closed on the validation episodes (`last5_eval_comm_gap`, the mean of the last 5)."""
    gap = env == "reference"
    head = ["algorithm", "candidates", "chosen", "its tuning score", *(["its gap closed"] if gap else []),
            "the candidates' scores, best to worst"]  # fmt: skip
    lines = []
    for budget in suites.BUDGETS:
        path = suites.chosen_file(results, env, budget)
        if not path.exists():
            continue
        chosen = json.loads(path.read_text())
        lines += [
            f"**{budget}** ({chosen['tuning_steps']:,} env steps, seeds {fmt_seeds(chosen['tuning_seeds'])}, score "
            f"`{chosen['metric']}`: the mean of the last 5 validation evaluations; every candidate's flags and "
            f"scores in `results/{env}/tuning/chosen-{budget}.md`):\n",
            row(*head),
            rule(len(head)),
        ]
        for a in chosen["algorithms"].values():
            means = ", ".join(f"{c['mean']:.3f}" for c in a["candidates"])
            cells = [a["label"], len(a["candidates"]), f"`{a['run_name']}`", f"{a['mean']:.3f}"]
            if gap:
                done = [s["last5_eval_comm_gap"] for _, s, _ in finished(results, a["algo_dir"], a["run_name"], env)]
                cells.append(f"{np.mean(done):.3f}" if done else "-")
            lines.append(row(*cells, means))
        lines.append("")
    return {"tuning.md": "\n".join(lines)} if lines else {}


# ----------------------------------------------------------------------------
# compare: the main suite
# ----------------------------------------------------------------------------


def compare(results: Path, env: str, budget: str) -> dict:
    found = {k: r for k in suites.BUDGET_ALGOS[budget] if (r := runs(results, env, k, suites.main_run(budget)))}
    if not found:
        return {}
    labels = {k: suites.ALGORITHMS[k].label for k in found}
    data = {"env": env, "budget": budget, "algorithms": {}, "method_i_vs": {}}
    agg = {key: stats.aggregate({k: np.array([s[key] for s in r.values()]) for k, r in found.items()})
           for key, _ in metrics_of(env)}  # fmt: skip
    head = ["algorithm", "seeds"] + [f"{col}: {m}" for _, col in metrics_of(env) for m in ("IQM", "mean")]
    lines = [
        f"**{env}, {budget} env steps**: each algorithm with its flags chosen at this budget on tuning seeds "
        "(tuning.md), on reporting seeds; the held-out test episodes' score (0 = random, 1 = oracle), IQM and mean "
        "with rliable's stratified-bootstrap 95% CIs.\n",
        row(*head),
        rule(len(head)),
    ]
    for k, r in found.items():
        cells = [interval(*agg[key][k][m]) for key, _ in metrics_of(env) for m in ("iqm", "mean")]
        lines.append(row(labels[k], fmt_seeds(r), *cells))
        data["algorithms"][k] = {"label": labels[k], "seeds": sorted(r)}
        for key, _ in metrics_of(env):
            data["algorithms"][k][key] = {m: agg[key][k][m]._asdict() for m in ("iqm", "mean")}
    if env == "reference":
        lines += ["", talk(found, labels)]
    if X in found:
        head = ["Method I against", "paired seeds", "mean difference [95% CI]", "sd of the differences",
                "detectable with these seeds", "verdict", "P(Method I > it) [95% CI]"]  # fmt: skip
        lines += [
            "",
            "Method I against each other algorithm, by reporting seed (the same seed: the same environments, and "
            "where the networks match, as IPPO's do, the same initial weights): the mean per-seed difference of the "
            "test score with "
            "its percentile-bootstrap 95% CI, the smallest true difference a paired t-test on these seeds detects "
            "with 80% power (two-sided 5%), and the probability that a run of Method I scores above a run of the "
            "other (rliable).\n",
            row(*head),
            rule(len(head)),
        ]
        for k in found:
            if k == X or (d := paired(found[X], found[k])) is None:
                continue
            p, (lo, hi) = stats.probability_of_improvement(
                np.array([s[SCORE] for s in found[X].values()]), np.array([s[SCORE] for s in found[k].values()])
            )
            lines.append(row(labels[k], d.n, difference_cell(d), f"{d.sd:.3f}", f"{d.mde:.3f}", verdict(d),
                             interval(p, lo, hi)))  # fmt: skip
            data["method_i_vs"][k] = {"difference": d._asdict(), "p_improvement": {"value": p, "lo": lo, "hi": hi}}
    return {
        f"compare_{budget}.md": "\n".join(lines) + "\n",
        f"compare_{budget}.json": json.dumps(data, indent=2) + "\n",
    }


def talk(found: dict, labels: dict) -> str:
    """reference: do the agents talk? Signalling and listening of each run (docs/reference.md)."""
    head = ["algorithm", "signalling (chance 0.33)", "listening", "runs that listen (listening > 0)"]
    lines = [
        "Do the agents talk (docs/reference.md)? Signalling: the held-out accuracy of a decoder that reads the "
        "partner's target from an agent's messages; listening: how much farther the agents end from their targets "
        "when they hear another episode's messages (0: the messages change nothing). Mean [bootstrap 95% CI].\n",
        row(*head),
        rule(len(head)),
    ]
    for k, r in found.items():
        listening = [s["test_listening"] for s in r.values()]
        lines.append(row(labels[k], mean_ci([s["test_signalling"] for s in r.values()]), mean_ci(listening),
                         f"{sum(v > 0 for v in listening)} of {len(listening)}"))  # fmt: skip
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# dose-response and controls (2M)
# ----------------------------------------------------------------------------


def ladder() -> list:
    """[(row label, algorithm, run name)] from no distillation to one shared encoder."""
    main = suites.main_run("2M")
    return [("IPPO (none)", "ppo", main), *((d, X, suites.dose_run(d)) for d in suites.DOSE_LADDER),
            ("IPPO, shared parameters", "ppo_shared", main)]  # fmt: skip


def dose_response(results: Path, env: str) -> dict:
    rows = [(label, k, name, r) for label, k, name in ladder() if (r := runs(results, env, k, name))]
    if not any(k == X for _, k, _, _ in rows):
        return {}
    ippo = runs(results, env, "ppo", suites.main_run("2M"))
    head = ["dose", "seeds", "distillation steps per student", "test CKA", "test relative distance"]
    head += [m for _, m in metrics_of(env)] + ["score minus IPPO's, paired [95% CI]", "verdict"]
    lines = [
        f"**{env}, 2M env steps**: the distillation dose from none (IPPO) to one shared encoder (IPPO with shared "
        "parameters), reporting seeds; Method I's doses on IPPO's settings chosen at 2M (ring topology, a step "
        "after every PPO update through PPO's Adam without a clip: the weight, then the steps per update, raised). "
        "Test CKA and relative distance: the agents' encoders on the held-out test episodes' observations (linear "
        "CKA, 1 = the same up to rotation and scale; mean ||f_i(o) - f_j(o)|| / mean ||f_j(o)||); with shared "
        "parameters there is one encoder (CKA 1, distance 0). Each cell: mean [bootstrap 95% CI].\n",
        row(*head),
        rule(len(head)),
    ]
    points = []
    for label, k, name, r in rows:
        shared = k == "ppo_shared"
        cka = [1.0] * len(r) if shared else [s["test_cka"] for s in r.values()]
        dist = [0.0] * len(r) if shared else [s["test_rel_distance"] for s in r.values()]
        made = [steps_made(s, run_args(d)) if k == X else 0
                for s, d in zip(r.values(), run_dirs(results, env, k, name))]  # fmt: skip
        d = paired(r, ippo) if k != "ppo" else None
        lines.append(row(label, fmt_seeds(r), f"{np.mean(made):,.0f}", mean_ci(cka), mean_ci(dist),
                         *(mean_ci([s[key] for s in r.values()]) for key, _ in metrics_of(env)),
                         difference_cell(d), verdict(d) if d else "-"))  # fmt: skip
        values = {key: np.array([s[key] for s in r.values()]) for key, _ in metrics_of(env)}
        points.append((label, np.mean(cka), values))
    return {"dose_response.md": "\n".join(lines) + "\n", "dose_response.png": dose_figure(env, points)}


def dose_figure(env: str, points: list):
    """Each dose's mean score (and, on reference, gap closed) with its bootstrap 95% CI against its test CKA."""
    plt = pyplot()
    panels = metrics_of(env)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (key, column) in zip(axes[0], panels):
        for label, cka, values in points:
            v = values[key]
            lo, hi = stats.bootstrap_ci(v) if len(v) > 1 else (v.mean(), v.mean())
            ax.errorbar(cka, v.mean(), yerr=[[v.mean() - lo], [hi - v.mean()]], fmt="o", capsize=3)
            ax.annotate(label, (cka, v.mean()), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel("achieved alignment: test CKA between agents' encoders")
        ax.set_ylabel(f"{column} (mean, 95% CI)")
        ax.set_title(f"{env}, 2M env steps: distillation dose")
    fig.tight_layout()
    return fig


def controls(results: Path, env: str) -> dict:
    peer = runs(results, env, X, suites.dose_run(suites.CONTROL_DOSE))
    found = [(t, r) for t in suites.CONTROL_TARGETS if (r := runs(results, env, X, suites.control_run(t)))]
    if not found or not peer:
        return {}
    ippo = runs(results, env, "ppo", suites.main_run("2M"))
    head = ["distillation target", "seeds", "test CKA", *(m for _, m in metrics_of(env)),
            "minus the true peer's score, paired [95% CI]", "minus IPPO's, paired [95% CI]"]  # fmt: skip
    lines = [
        f"**{env}, 2M env steps**: the dose `{suites.CONTROL_DOSE}` (where distillation moved the alignment most on "
        "the tuning seeds) toward the true peer (Method I), toward a random teacher's latent of a different "
        "observation (shuffled), and toward a frozen randomly initialised encoder; reporting seeds.\n",
        row(*head),
        rule(len(head)),
    ]
    for label, r in [("peer (Method I)", peer), *found]:
        lines.append(row(label, fmt_seeds(r), mean_ci([s["test_cka"] for s in r.values()]),
                         *(mean_ci([s[key] for s in r.values()]) for key, _ in metrics_of(env)),
                         "-" if r is peer else difference_cell(paired(r, peer)),
                         difference_cell(paired(r, ippo))))  # fmt: skip
    return {"controls.md": "\n".join(lines) + "\n"}


# ----------------------------------------------------------------------------
# team size, CPU-time matched (spread)
# ----------------------------------------------------------------------------


def team_size(results: Path, env: str) -> dict:
    six = {k: runs(results, env, k, suites.SCALE_RUN) for k in (X, "ppo")}
    if env != "spread" or not all(six.values()):
        return {}
    main = suites.main_run(suites.SCALE_BUDGET)
    three = {k: {s: v for s, v in runs(results, env, k, main).items() if s in suites.SCALE_SEEDS} for k in (X, "ppo")}
    head = ["agents", "seeds", "Method I", "IPPO", "Method I - IPPO, paired [95% CI]", "verdict"]
    lines = [
        f"**spread, {suites.SCALE_BUDGET} env steps**: Method I and IPPO with their flags chosen at this budget, "
        "with 3 agents (the main suite's runs of the same seeds) and with 6; normalised test score, mean [bootstrap "
        "95% CI].\n",
        row(*head),
        rule(len(head)),
    ]
    for n, r in ((3, three), (suites.SCALE_AGENTS, six)):
        if not all(r.values()):
            continue
        d = paired(r[X], r["ppo"])
        lines.append(row(n, fmt_seeds(r[X]), *(mean_ci([s[SCORE] for s in r[k].values()]) for k in (X, "ppo")),
                         difference_cell(d), verdict(d) if d else "-"))  # fmt: skip
    return {"team_size.md": "\n".join(lines) + "\n"}


def cpu_matched(results: Path, env: str) -> dict:
    found = {k: r for k in suites.BUDGET_ALGOS["200k"] if (r := runs(results, env, k, suites.CPU_MATCHED_RUN))}
    if env != "spread" or not found:
        return {}
    budgets = {
        run_args(d).get("max_cpu_time") for k in found for d in run_dirs(results, env, k, suites.CPU_MATCHED_RUN)
    }
    head = ["algorithm", "seeds", "CPU time per run, s", "env steps reached", "normalised test score"]
    lines = [
        f"**spread**: every algorithm with its flags chosen at 200k, for the same CPU time of its own process "
        f"(`--max-cpu-time {' / '.join(f'{b:g}' for b in sorted(budgets - {None}))}`, the median of MADDPG's "
        "single member's main runs), which other processes on the machine cannot shorten; mean [bootstrap 95% CI].\n",
        row(*head),
        rule(len(head)),
    ]
    for k, r in found.items():
        lines.append(row(suites.ALGORITHMS[k].label, fmt_seeds(r), mean_ci([s["cpu_time"] for s in r.values()]),
                         f"{np.mean([s['env_steps'] for s in r.values()]):,.0f}",
                         mean_ci([s[SCORE] for s in r.values()])))  # fmt: skip
    return {"cpu_matched.md": "\n".join(lines) + "\n"}


def headline(results: Path, env: str) -> dict:
    """headline.md: per budget, the question's answer on this task: Method I against IPPO, paired by seed, with what
    the seeds could detect; and the best algorithm of the main suite."""
    head = ["budget", "seeds", "Method I", "IPPO", "Method I - IPPO, paired [95% CI]", "detectable", "verdict",
            "P(Method I > IPPO) [95% CI]", "best algorithm (mean)"]  # fmt: skip
    lines = []
    for budget in suites.BUDGETS:
        found = {k: r for k in suites.BUDGET_ALGOS[budget] if (r := runs(results, env, k, suites.main_run(budget)))}
        if X not in found or "ppo" not in found or (d := paired(found[X], found["ppo"])) is None:
            continue
        x, y = (np.array([s[SCORE] for s in found[k].values()]) for k in (X, "ppo"))
        p, (lo, hi) = stats.probability_of_improvement(x, y)
        means = {k: float(np.mean([s[SCORE] for s in r.values()])) for k, r in found.items()}
        top = max(means, key=means.get)
        lines.append(row(budget, d.n, mean_ci(x), mean_ci(y), difference_cell(d), f"{d.mde:.3f}", verdict(d),
                         interval(p, lo, hi), f"{suites.ALGORITHMS[top].label} ({means[top]:.3f})"))  # fmt: skip
    if not lines:
        return {}
    caption = (
        f"**{env}**: does distilling latents help? Method I against IPPO on the reporting seeds, each with its flags "
        "chosen at that budget on tuning seeds; the normalised test score, mean [bootstrap 95% CI]; the paired "
        "per-seed difference with its bootstrap 95% CI; detectable: the smallest true difference a paired t-test on "
        "these seeds finds with 80% power (two-sided 5%); P(Method I > IPPO): rliable's probability of improvement.\n"
    )
    return {"headline.md": caption + "\n".join([row(*head), rule(len(head)), *lines]) + "\n"}


def report(results: Path, env: str, log=lambda name: None) -> dict:
    results = Path(results)
    out = {}
    for name, make in (("tuning", tuning), ("headline", headline), ("dose-response", dose_response),
                       ("controls", controls), ("team size", team_size), ("cpu-matched", cpu_matched)):  # fmt: skip
        log(name)
        out.update(make(results, env))
    for budget in suites.BUDGETS:
        log(f"compare {budget}")
        out.update(compare(results, env, budget))
    return out
