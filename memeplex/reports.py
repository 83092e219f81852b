"""The result suites (run_experiments.py) as tables and figures, from results/ only.

`spread_report(results)` returns {file name: text or Figure} for every suite whose runs exist:
  main.md / main.json       normalised test score per algorithm: IQM and mean with stratified-bootstrap
                            95% CIs (rliable), P(Method I > IPPO), per-seed values; profile.png
  main_over_training.md     Method I vs IPPO over training: mean validation score over the periodic
                            evaluations (area under the learning curve); main_curves.png
  long.md, long_curves.png  Method I and IPPO to 2M env steps, P(Method I > IPPO); validation curves
                            (mean over seeds, band from the lowest to the highest seed)
  wallclock.md              every algorithm given MADDPG's median 200k wall time
  ablation.md, ablation.png distillation weight / interval / topology and the two controls
  cka.png                   linear CKA between agents' latents over training, per ablation configuration
  scaling.md, scaling.png   Method I vs IPPO with 3 and 6 agents
`tag_report(results)` likewise: selfplay.md, fixed_pool.md, cross_seed_<run>.md/.png, exploitability.md.
Every number is recomputed from the runs' summary.json and metrics.csv with fixed bootstrap seeds, so the
same results/ give the same tables (compare_results.py --check).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from memeplex import stats
from memeplex.files import read_metrics

METRIC = "test_normalised"  # the held-out test episodes' normalised score: 0 = random, 1 = oracle
MAIN = [  # (label, algorithm directory, run name) of the main suite, in table order
    ("Method I (LA-IPPO)", "method_i", "main-tuned"),
    ("IPPO", "ppo", "main-tuned"),
    ("MADDPG, population 4", "maddpg", "main-tuned-pop4"),
    ("MADDPG, single member", "maddpg", "main-tuned-pop1"),
]


def finished(results: Path, algo: str, run_name: str, env: str = "spread") -> list:
    """[(seed, summary, run_dir)] of the finished, uninterrupted runs <run_name>_s<seed>, by seed."""
    out = []
    for path in sorted((results / env / algo).glob(f"{run_name}_s*/summary.json")):
        m = re.fullmatch(re.escape(run_name) + r"_s(\d+)", path.parent.name)
        summary = json.loads(path.read_text())
        if m and not summary.get("interrupted"):
            out.append((int(m.group(1)), summary, path.parent))
    return sorted(out, key=lambda r: r[0])


def _scores(rows, key: str = METRIC) -> np.ndarray:
    return np.array([s[key] for _, s, _ in rows], dtype=float)


def _fmt(e) -> str:
    return f"{e.value:.3f} [{e.lo:.3f}, {e.hi:.3f}]"


def _steps(n) -> str:
    """An env-step count as the captions write it: 200k, 2M, 2.16M, 390k."""
    return f"{n / 1e6:.3g}M" if n >= 1e6 else f"{n / 1e3:.3g}k" if n >= 1e3 else f"{n:g}"


def _seeds(seeds) -> str:
    """Seeds as the captions write them: 1-10 when consecutive, else 1, 3, 5."""
    n = sorted(set(seeds))
    return f"{n[0]}-{n[-1]}" if len(n) > 2 and n == list(range(n[0], n[-1] + 1)) else ", ".join(map(str, n))


def _args(run_dir: Path) -> dict:
    """A run's command-line arguments, from its config.json ({} without one)."""
    path = run_dir / "config.json"
    return json.loads(path.read_text())["args"] if path.exists() else {}


def _fact(label_rows, get, fmt=str) -> str:
    """What the runs of label_rows record for one fact (get(summary, args) -> value), as caption text:
    the values that occur, " / " between them; "?" when no run records it."""
    values = {get(s, _args(d)) for _, rows in label_rows for _, s, d in rows}
    return " / ".join(fmt(v) for v in sorted(values - {None})) or "?"


def _budget(label_rows) -> str:
    return _fact(label_rows, lambda s, a: a.get("max_steps"), _steps)


def _all_seeds(label_rows) -> str:
    return _seeds([seed for _, rows in label_rows for seed, _, _ in rows])


def _table(label_rows: list, key: str = METRIC) -> tuple[str, dict]:
    """A markdown table of IQM and mean (95% CIs) per label, with per-seed values; and its JSON."""
    scores = {label: _scores(rows, key) for label, rows in label_rows if rows}
    agg = stats.aggregate(scores)
    lines = ["| | runs | IQM [95% CI] | mean [95% CI] | per seed |", "|---|---|---|---|---|"]
    data = {}
    for label, rows in label_rows:
        if not rows:
            continue
        a = agg[label]
        per_seed = ", ".join(f"s{seed}: {s[key]:.3f}" for seed, s, _ in rows)
        lines.append(f"| {label} | {a['runs']} | {_fmt(a['iqm'])} | {_fmt(a['mean'])} | {per_seed} |")
        data[label] = {
            "iqm": a["iqm"]._asdict(),
            "mean": a["mean"]._asdict(),
            "seeds": [seed for seed, _, _ in rows],
            "values": scores[label].tolist(),
        }
    return "\n".join(lines) + "\n", data


def _improvement(x_rows, y_rows, x: str, y: str, key: str = METRIC) -> tuple[str, dict]:
    p, (lo, hi) = stats.probability_of_improvement(_scores(x_rows, key), _scores(y_rows, key))
    return (
        f"P({x} > {y}) = {p:.3f} [{lo:.3f}, {hi:.3f}] (probability that a run of the first scores above "
        f"a run of the second; rliable, stratified bootstrap 95% CI)\n"
    ), {"value": p, "lo": lo, "hi": hi}


def main_suite(results: Path) -> dict:
    rows = [(label, finished(results, algo, name)) for label, algo, name in MAIN]
    if not any(r for _, r in rows):
        return {}
    table, data = _table(rows)
    text = (
        f"Normalised test score at {_budget(rows)} env steps (held-out test episodes, "
        f"{_fact(rows, lambda s, a: s.get('test_episodes'))} per run; 0 = random, 1 = hand-coded oracle), "
        f"reporting seeds {_all_seeds(rows)}{_tuning(results)}.\n\n" + table
    )
    by = {label: r for label, r in rows}
    if by["Method I (LA-IPPO)"] and by["IPPO"]:
        line, data["p_method_i_over_ippo"] = _improvement(by["Method I (LA-IPPO)"], by["IPPO"], "Method I", "IPPO")
        text += "\n" + line
    out = {"main.md": text, "main.json": json.dumps(data, indent=2) + "\n"}
    ppo_rows = rows[:2]  # Method I and IPPO: the same evaluation schedule, so their curves compare step by step
    if all(r for _, r in ppo_rows):
        out.update(_over_training(ppo_rows))
    present = {label: _scores(r) for label, r in rows if r}
    taus = np.linspace(-0.25, 1.25, 61)
    taus, profiles, cis = stats.performance_profile(present, taus)
    out["profile.png"] = stats.performance_profile_figure(taus, profiles, cis, title="spread, 200k env steps")
    return out


def _tuning(results: Path) -> str:
    """How the main suite's hyperparameters were chosen, from results/spread/tuning/chosen.json."""
    path = results / "spread" / "tuning" / "chosen.json"
    if not path.exists():
        return ""
    chosen = json.loads(path.read_text())
    candidates = "; ".join(f"{a['label']}: {len(a['candidates'])}" for a in chosen["algorithms"].values())
    return (
        f"; hyperparameters chosen on tuning seeds {_seeds(chosen['tuning_seeds'])} at "
        f"{_steps(chosen['tuning_steps'])} env steps (candidates per algorithm: {candidates})"
    )


def _over_training(rows: list) -> dict:
    """How fast each method learns, from the periodic evaluations on the validation seeds: every run's
    mean normalised score over its evaluations (the area under its learning curve per step, so early
    progress counts), with IQM and P(Method I > IPPO); and the curves."""

    def area(run_dir: Path) -> float:
        return float(np.mean([float(m["eval_normalised"]) for m in read_metrics(run_dir / "metrics.csv")]))

    auc_rows = [(label, [(seed, {"auc": area(d)}, d) for seed, _, d in runs]) for label, runs in rows]
    table, _ = _table(auc_rows, key="auc")
    line, _ = _improvement(auc_rows[0][1], auc_rows[1][1], "Method I", "IPPO", key="auc")
    text = (
        "Over training: each run's mean normalised score over its periodic evaluations "
        f"({_fact(rows, lambda s, a: a.get('eval_episodes'))} validation episodes every "
        f"{_fact(rows, lambda s, a: a.get('eval_interval'), _steps)} env steps), i.e. the area under its learning "
        "curve: a measure of how fast it learns, not only where it ends.\n\n" + table + "\n" + line
    )
    title = f"spread: learning curves to {_budget(rows)}"
    fig = _curves(rows, "eval_normalised", "normalised eval score (validation seeds)", title)
    return {"main_over_training.md": text, "main_curves.png": fig}


def long_suite(results: Path) -> dict:
    rows = [(label, finished(results, algo, "long-tuned")) for label, algo, _ in MAIN[:2]]
    if not any(r for _, r in rows):
        return {}
    table, _ = _table(rows)
    text = f"Normalised test score after {_budget(rows)} env steps, reporting seeds {_all_seeds(rows)}.\n\n" + table
    if all(r for _, r in rows):
        text += "\n" + _improvement(rows[0][1], rows[1][1], "Method I", "IPPO")[0]
    text += "\n" + _peaks(rows)
    title = f"spread: learning curves to {_budget(rows)}"
    fig = _curves(rows, "eval_normalised", "normalised eval score (validation seeds)", title)
    return {"long.md": text, "long_curves.png": fig}


def _peaks(label_rows) -> str:
    """Where each label's mean validation curve peaks, and where it ends."""
    parts = []
    for label, rows in label_rows:
        if rows:
            steps, y = _curve_matrix(rows, "eval_normalised")
            y = np.nanmean(y, 0)
            k = int(np.nanargmax(y))
            parts.append(f"{label}: peak {y[k]:.3f} at {_steps(steps[k])}, {y[-1]:.3f} at {_steps(steps[-1])}")
    return f"Mean validation curve over seeds (normalised): {'; '.join(parts)}.\n"


def wallclock_suite(results: Path) -> dict:
    rows = [(label, finished(results, algo, name.replace("main", "wallclock"))) for label, algo, name in MAIN]
    if not any(r for _, r in rows):
        return {}
    budget = sorted({_args(d)["max_time"] for _, r in rows for _, _, d in r})
    table, _ = _table(rows)
    steps = ", ".join(f"{label}: {np.median([s['env_steps'] for _, s, _ in r]):,.0f}" for label, r in rows if r)
    walls = "; ".join(
        f"{label}: {min(_scores(r, 'wall_time')):.0f}-{max(_scores(r, 'wall_time')):.0f} s" for label, r in rows if r
    )
    below = "; ".join(f"{label}: {int((_scores(r) < 0).sum())} of {len(r)}" for label, r in rows if r)
    main = [(label, finished(results, algo, name)) for label, algo, name in MAIN[2:3]]
    return {
        "wallclock.md": (
            f"Normalised test score, reporting seeds {_all_seeds(rows)}, with every algorithm given MADDPG "
            f"(population 4)'s median {_budget(main)}-step wall time ({', '.join(f'{b:g} s' for b in budget)}). "
            f"Median env steps: {steps}. Wall time, lowest-highest seed: {walls}. Seeds below random "
            f"(normalised test score < 0): {below}.\n\n" + table
        )
    }


def ablation_configs(results: Path) -> list:
    names = sorted(
        {p.parent.name.rsplit("_s", 1)[0] for p in (results / "spread" / "method_i").glob("abl-*/summary.json")}
    )
    return [(name.removeprefix("abl-"), finished(results, "method_i", name)) for name in names]


def ablation_suite(results: Path) -> dict:
    rows = [(label, r) for label, r in ablation_configs(results) if r]
    if not rows:
        return {}
    table, data = _table(rows)
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
            f"Method I at {_budget(rows)} env steps, reporting seeds {_all_seeds(rows)}, with one distillation "
            "setting changed (topology-none = IPPO with Method I's PPO settings), and the two controls "
            "(target-shuffled: a random teacher's latent of another observation; target-random-encoder: a frozen "
            "random encoder), same weight and schedule.\n\n" + table
        ),
        "ablation.png": fig,
        "cka.png": cka,
    }


def scaling_suite(results: Path) -> dict:
    names = [re.fullmatch(r"scale-n(\d+)_s\d+", p.name) for p in (results / "spread").glob("*/scale-n*")]
    sizes = sorted({int(m.group(1)) for m in names if m})
    rows = [(f"{label}, N={n}", finished(results, algo, f"scale-n{n}")) for n in sizes for label, algo, _ in MAIN[:2]]
    if not any(r for _, r in rows):
        return {}
    table, data = _table(rows)
    text = (
        f"Normalised test score at {_budget(rows)} env steps with N agents, reporting seeds {_all_seeds(rows)} "
        "(references computed per N).\n\n" + table
    )
    for n in sizes:
        x, y = dict(rows)[f"Method I (LA-IPPO), N={n}"], dict(rows)[f"IPPO, N={n}"]
        if x and y:
            text += "\n" + _improvement(x, y, f"Method I, N={n}", f"IPPO, N={n}")[0]
    return {"scaling.md": text, "scaling.png": _interval_figure(data, "Method I vs IPPO by team size (IQM, 95% CI)")}


def spread_report(results: Path, log=lambda name: None) -> dict:
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
    from memeplex.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.get_cmap("tab20" if len(label_rows) > 10 else "tab10")
    for k, (label, rows) in enumerate(label_rows):
        if not rows:
            continue
        steps, y = _curve_matrix(rows, key)
        ax.plot(steps, np.nanmean(y, 0), color=colours(k % colours.N), label=f"{label} ({len(rows)} seeds)")
        ax.fill_between(steps, np.nanmin(y, 0), np.nanmax(y, 0), color=colours(k % colours.N), alpha=0.1)
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _curve_matrix(rows, key: str) -> tuple:
    """(env steps, [run, evaluation] array of a metrics.csv column) of the runs, up to the shortest run."""
    curves = [read_metrics(d / "metrics.csv") for _, _, d in rows]
    n = min(len(c) for c in curves)
    steps = np.array([float(r["step"]) for r in curves[0][:n]])
    return steps, np.array([[float(r.get(key, np.nan)) for r in c[:n]] for c in curves])


def _interval_figure(data: dict, title: str):
    from memeplex.plots import _pyplot

    labels = list(data)
    fig, ax = _pyplot().subplots(figsize=(7.5, 0.9 + 0.35 * len(labels)))
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


# ----------------------------------------------------------------------------
# Tag: cross-seed play, ratings, intransitivity, best-response exploitability
# ----------------------------------------------------------------------------

TAG_LABELS = {"method_i": "Method I", "ppo": "IPPO", "maddpg": "MADDPG"}


def wins_array(out: dict) -> np.ndarray:
    """The games of a cross_seed_*.json as [pred_algo, prey_algo, pred_seed, prey_seed, start_state] of 0/1."""
    a, s = len(out["algos"]), len(out["seeds"])
    flat = np.array([[[int(c) for c in cell] for cell in row] for row in out["wins"]], dtype=float)
    return flat.reshape(a, s, a, s, -1).transpose(0, 2, 1, 3, 4)


def side_scores(w5: np.ndarray) -> np.ndarray:
    """M[a, b]: how often algorithm a's side wins against algorithm b's, averaged over its predators
    against b's prey and its prey against b's predators (0.5 = even)."""
    pred = np.nanmean(w5, axis=(2, 3, 4))  # [pred algo, prey algo]: predator win-rate
    return 0.5 * pred + 0.5 * (1.0 - pred.T)


def cycles(m: np.ndarray) -> list:
    """Every 3-cycle a > b > c > a of a win matrix (a > b: m[a, b] > 0.5), with its weakest margin."""
    n, out = len(m), []
    for a in range(n):
        for b in range(n):
            for c in range(n):
                if a < b and a < c and b != c and m[a, b] > 0.5 and m[b, c] > 0.5 and m[c, a] > 0.5:
                    out.append(((a, b, c), float(min(m[a, b], m[b, c], m[c, a]) - 0.5)))
    return out


def nash_average(m: np.ndarray) -> tuple:
    """Nash averaging (Balduzzi et al. 2018) of the zero-sum game with payoff m - 0.5: the equilibrium
    mixture over players (scipy linprog) and each player's payoff against it."""
    from scipy.optimize import linprog

    a = np.asarray(m, dtype=float) - 0.5
    n = len(a)
    # maximise v subject to (p^T A)_j >= v for every column j, p >= 0, sum p = 1; variables (p, v)
    res = linprog(c=[0.0] * n + [-1.0], A_ub=np.hstack([-a.T, np.ones((n, 1))]), b_ub=np.zeros(n),
                  A_eq=[[1.0] * n + [0.0]], b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)])  # fmt: skip
    p = res.x[:n]
    return p, a @ p


TAG_SELFPLAY = [  # (label, algorithm directory, run name) of the tag self-play runs, in table order
    ("Method I", "method_i", "selfplay"),
    ("IPPO", "ppo", "selfplay"),
    ("MADDPG", "maddpg", "selfplay"),
    ("Method I, MADDPG's wall time", "method_i", "selfplay-wallclock"),
    ("IPPO, MADDPG's wall time", "ppo", "selfplay-wallclock"),
]
TAG_SELFPLAY_METRICS = [  # (summary key, column): the final teams' held-out test games
    ("test_predator_win_vs_random", "predators vs random prey"),
    ("test_prey_win_vs_random", "prey vs random predators"),
    ("test_self_play_predator_win", "predator win-rate in self-play"),
    ("test_predator_exploitability", "predator pool proxy"),
    ("test_prey_exploitability", "prey pool proxy"),
]


def tag_report(results: Path, log=lambda name: None) -> dict:
    """The tag suites: selfplay.md (final teams against random and their own pool), fixed_pool.md
    (evaluate_fixed_pool.py per seed), cross_seed_<run>.md/.png (cross_seed_play.py) and
    exploitability.md (best responders) and best_response_*.md (the best-response recipe's check); log(name) is
    called as each starts."""
    results = Path(results)
    log("self-play and fixed pools")
    out, ratings = {**_tag_selfplay(results), **fixed_pool_report(results)}, None
    for path in sorted((results / "tag").glob("cross_seed_*.json")):
        log(path.stem)
        data = json.loads(path.read_text())
        files, bt = _cross_seed(data, path.stem)
        out.update(files)
        if data["run_name"] == "selfplay":
            ratings = (data["algos"], bt)
    log("exploitability")
    files, responders = _exploitability(results)
    out.update(files)
    if ratings and responders:
        out["headline.md"] = _tag_headline(*ratings, responders)
    log("best-response recipe")
    out.update(best_response_recipe_report(results))
    return out


def _tag_headline(algos: list, bt: dict, responders: list) -> str:
    """Per algorithm: its Bradley-Terry ratings from cross-seed play and how far a best responder beats
    its final predators and prey (exploitability, the maximum over its best responders; mean over seeds)."""
    lines = ["| algorithm | predator rating | prey rating | best responder vs its predators | "
             "best responder vs its prey |", "|---|---|---|---|---|"]  # fmt: skip
    for k, algo in enumerate(algos):
        label = TAG_LABELS.get(algo, algo)
        cells = []
        for team in ("predator", "prey"):
            (lo, hi), r = bt[team]["ci"][k], bt[team]["rating"][k]
            cells.append(f"{r:.0f} [{lo:.0f}, {hi:.0f}]")
        for team in ("predator", "prey"):
            sel = [r for r in responders if (r[0], r[2]) == (label, team)]
            cell = _mean_cell([r[3] for r in sel], "{:.3f}", per_seed=False) if len(sel) > 1 else None
            cells.append(f"{cell} ({len(sel)} teams, best of {_responder_counts(sel)})" if cell else "n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return (
        "Tag, reporting seeds 1-5, 200k env steps of self-play. Ratings: Bradley-Terry on the Elo scale from "
        f"cross-seed play ({bt['anchor']}), 95% cluster-bootstrap intervals over seeds and start states; higher is "
        "stronger. Best responder: the frozen team's exploitability, the highest test win-rate of the IPPO learners "
        "trained against it (docs/best_response.md), mean over seeds [95% CI]; higher is more exploitable.\n\n"
        + "\n".join(lines)
        + "\n"
    )


def _mean_cell(values, fmt: str = "{:.2f}", per_seed: bool = True) -> str:
    """Mean [stratified-bootstrap 95% CI] (rliable), with the per-seed values below."""
    e = stats.aggregate({"x": np.asarray(values, dtype=float)}, which=("mean",))["x"]["mean"]
    cell = f"{fmt.format(e.value)} [{fmt.format(e.lo)}, {fmt.format(e.hi)}]"
    return cell + "<br>(" + " / ".join(fmt.format(v) for v in values) + ")" if per_seed else cell


def _tag_selfplay(results: Path) -> dict:
    rows = [(label, finished(results, algo, name, "tag")) for label, algo, name in TAG_SELFPLAY]
    rows = [(label, r) for label, r in rows if r]
    if not rows:
        return {}
    lines = ["| | seeds | env steps (median) | wall time, s (median) | "
             + " | ".join(column for _, column in TAG_SELFPLAY_METRICS) + " |",
             "|---" * (4 + len(TAG_SELFPLAY_METRICS)) + "|"]  # fmt: skip
    for label, r in rows:
        cells = [_mean_cell(_scores(r, key)) for key, _ in TAG_SELFPLAY_METRICS]
        lines.append(f"| {label} | {', '.join(str(seed) for seed, _, _ in r)} | "
                     f"{np.median(_scores(r, 'env_steps')):,.0f} | {np.median(_scores(r, 'wall_time')):.0f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return {
        "selfplay.md": "Self-play on tag: each run's final teams on held-out test episodes "
        f"({_fact(rows, lambda s, a: s.get('test_elo_episodes'))} per pairing). "
        "Mean over seeds [stratified-bootstrap 95% CI], per-seed values below. A predator win is at least one "
        "predator-prey contact; the pool proxy is max(0, 0.5 - the team's lowest win-rate against its own "
        "run's last pool snapshots).\n\n" + "\n".join(lines) + "\n"
    }


def fixed_pool_report(results: Path) -> dict:
    """evaluate_fixed_pool.py's fixed_pool_<set>_s<seed>.json: each algorithm's final teams against that
    seed's shared pool; one row per pool set and seed, then the mean over seeds."""
    outs = [json.loads(p.read_text()) for p in sorted((results / "tag").glob("fixed_pool_*_s*.json"))]
    outs = [o for o in outs if o.get("run_name") is None]  # the published pool sets, not a --run-name of your own
    if not outs:
        return {}
    algos = [a for a in TAG_LABELS if any(a in o["results"] for o in outs)]
    cols = [(a, team) for team in ("predator", "prey") for a in algos]
    lines = ["| pool set | seed | pool size | " + " | ".join(f"{TAG_LABELS[a]} {team}" for a, team in cols) + " |",
             "|---" * (3 + len(cols)) + "|"]  # fmt: skip
    rate = lambda o, a, team: o["results"][a][team]["win_rate_vs_pool"] if a in o["results"] else float("nan")
    for o in sorted(outs, key=lambda o: (o["pool_set"], o["seed"])):
        lines.append(f"| {o['pool_set']} | {o['seed']} | {len(o.get('pool', []))} | "
                     + " | ".join(f"{rate(o, a, team):.3f}" for a, team in cols) + " |")  # fmt: skip
    for pool_set in sorted({o["pool_set"] for o in outs}):
        sel = [o for o in outs if o["pool_set"] == pool_set]
        if len(sel) < 2:
            continue
        cells = []
        for a, team in cols:
            v = np.array([rate(o, a, team) for o in sel])
            cells.append(_mean_cell(v, "{:.3f}", per_seed=False) if np.isfinite(v).all() else "n/a")
        lines.append(f"| {pool_set}: mean [95% CI] | {len(sel)} seeds | | " + " | ".join(cells) + " |")
    episodes = " / ".join(sorted({str(o.get("episodes_per_pairing", "?")) for o in outs}))
    budget = _budget([(label, finished(results, algo, name, "tag")) for label, algo, name in TAG_SELFPLAY[:3]])
    return {
        "fixed_pool.md": "Fixed pool (`evaluate_fixed_pool.py`): per seed, the random team plus the last snapshots "
        "of every algorithm's run with that seed; each algorithm's final predators and prey play every member on "
        f"{episodes} held-out test episodes. Win-rate against the pool; pools differ between seeds, so compare "
        f"within a row (step: the {budget}-step runs; wallclock: Method I and IPPO trained for MADDPG's median wall "
        f"time, with MADDPG's {budget}-step runs).\n\n" + "\n".join(lines) + "\n"
    }


def _cross_seed(data: dict, stem: str) -> tuple:
    """({file: table or figure}, Bradley-Terry ratings) of one cross_seed_play.py output."""
    w5 = wins_array(data)
    algos, labels = data["algos"], [TAG_LABELS.get(a, a) for a in data["algos"]]
    lines = [f"Cross-seed play (`{data['run_name']}` runs, seeds {', '.join(map(str, data['seeds']))}): every "
             f"algorithm-seed's final predators against every algorithm-seed's final prey, {data['episodes']} "
             "held-out test start states per pairing. Predator win-rate, 95% cluster-bootstrap interval over seeds "
             "and start states.", "", "| predators \\ prey | " + " | ".join(labels) + " |",
             "|---" * (len(labels) + 1) + "|"]  # fmt: skip
    for i, label in enumerate(labels):
        cells = []
        for j in range(len(labels)):
            p, (lo, hi) = stats.cluster_bootstrap_winrate(w5[i, j], same_runs=i == j)
            cells.append(f"{p:.3f} [{lo:.3f}, {hi:.3f}]")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    bt = stats.bradley_terry_bootstrap(w5, pred_groups=algos, prey_groups=algos)
    lines += ["", f"Bradley-Terry (Elo scale; {bt['anchor']}), 95% cluster-bootstrap intervals:", "",
              "| algorithm | predator rating | prey rating |", "|---|---|---|"]  # fmt: skip
    for k, label in enumerate(labels):
        (plo, phi), (qlo, qhi) = bt["predator"]["ci"][k], bt["prey"]["ci"][k]
        lines.append(f"| {label} | {bt['predator']['rating'][k]:.0f} [{plo:.0f}, {phi:.0f}] | "
                     f"{bt['prey']['rating'][k]:.0f} [{qlo:.0f}, {qhi:.0f}] |")  # fmt: skip
    m = side_scores(w5)
    found = cycles(m)
    pairs = [(a, b) for a in range(len(m)) for b in range(a + 1, len(m))]
    lines += ["", "Side scores (how often the first algorithm's teams beat the second's, both roles averaged): "
              + "; ".join(f"{labels[a]} vs {labels[b]} {m[a, b]:.3f}" for a, b in pairs)]  # fmt: skip
    if found:
        p, skill = nash_average(m)
        loops = "; ".join(" > ".join(labels[k] for k in (*c, c[0])) + f" (weakest margin {margin:.3f})"
                          for c, margin in found)  # fmt: skip
        nash = ", ".join(f"{labels[k]} mass {p[k]:.2f}, skill {skill[k]:+.3f}" for k in range(len(m)))
        lines.append(f"Intransitive: {loops}. A single rating can mislead; Nash averaging: {nash}.")
    else:
        lines.append("No cycle among the algorithms (a > b > c > a): the ratings order them consistently.")
    rates = np.nanmean(w5, axis=4).transpose(0, 2, 1, 3).reshape(len(data["teams"]), len(data["teams"]))
    lines.append(_team_cycles(rates, data["teams"], algos, labels))
    from memeplex.plots import matrix

    fig = matrix(
        data["teams"],
        data["teams"],
        rates,
        f"cross-seed play, grouped by algorithm ({data['episodes']} games per cell)",
    )
    return {f"{stem}.md": "\n".join(lines) + "\n", f"{stem}.png": fig}, bt


def _team_cycles(rates: np.ndarray, teams: list, algos: list, labels: list) -> str:
    """Intransitivity among the algorithm-seed teams: 3-cycles of their side scores (both roles averaged)
    and the Nash-averaging mass per algorithm. rates[i, j]: team i's predators against team j's prey."""
    side = 0.5 * rates + 0.5 * (1.0 - rates.T)
    found = cycles(side)
    mass, _ = nash_average(side)
    by_algo = ", ".join(f"{label} {mass[[t.split('@')[0] == a for t in teams]].sum():.2f}"
                        for a, label in zip(algos, labels))  # fmt: skip
    strongest = max((m for _, m in found), default=0.0)
    return (f"Among the {len(teams)} algorithm-seed teams (side scores): {len(found)} cycles a > b > c > a"
            + (f", the strongest with every margin at least {strongest:.3f}" if found else "")
            + f"; Nash averaging over the teams puts mass {by_algo}.")  # fmt: skip


def _exploitability(results: Path) -> tuple:
    """Best-response runs (train_*.py --env tag --opponent CKPT): each frozen team's exploitability, the
    highest final test win-rate among its best responders (a best response is a maximum), beside that
    team's pool proxy from its own self-play run. Rows: (label, run, frozen team, exploitability, pool
    proxy, every responder's win-rate)."""
    found = {}  # (label, run, frozen team) -> (its responders' win-rates, pool proxy)
    for path in sorted((results / "tag").glob("*/*/summary.json")):
        s = json.loads(path.read_text())
        if "test_best_response_win_rate" not in s or s.get("interrupted"):
            continue
        opponent = Path(s["opponent"])  # checkpoints/tag/<algo>/<run>_s<seed>/latest.pt
        frozen = "prey" if s["team"] == "predator" else "predator"  # the team being exploited
        own = results / "tag" / opponent.parent.parent.name / opponent.parent.name / "summary.json"
        proxy = (
            json.loads(own.read_text()).get(f"test_{frozen}_exploitability", float("nan"))
            if own.exists()
            else float("nan")
        )
        key = (TAG_LABELS.get(opponent.parent.parent.name, opponent.parent.parent.name), opponent.parent.name, frozen)
        found.setdefault(key, ([], proxy))[0].append(s["test_best_response_win_rate"])
    rows = [(*key, max(brs), proxy, brs) for key, (brs, proxy) in found.items()]
    if not rows:
        return {}, []
    lines = ["Best-response exploitability: fresh IPPO learners (best responders, docs/best_response.md) trained "
             "against each frozen final team; the team's exploitability is the highest of their win-rates on "
             "held-out test episodes (a best response is a maximum; higher = more exploitable), beside the pool "
             "proxy of the team's own run (max(0, 0.5 - lowest win-rate against its last pool snapshots)).", "",
             "| frozen team | run | exploitability (max) | responders' win-rates | pool proxy |",
             "|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {a} {team} | {run} | {br:.3f} | {' / '.join(f'{b:.3f}' for b in brs)} | {proxy:.3f} |"
              for a, run, team, br, proxy, brs in rows]  # fmt: skip
    groups = sorted({(r[0], r[2]) for r in rows}, key=lambda k: (k[1], k[0]))
    summary = [
        "| frozen team | teams | responders per team | exploitability, mean [95% CI] | pool proxy, mean |",
        "|---|---|---|---|---|",
    ]
    for a, team in groups:
        sel = [r for r in rows if (r[0], r[2]) == (a, team)]
        brs = np.array([r[3] for r in sel])
        cell = _mean_cell(brs, "{:.3f}", per_seed=False) if len(sel) > 1 else f"{brs[0]:.3f}"
        proxy = np.nanmean([r[4] for r in sel])
        summary.append(f"| {a} {team} | {len(sel)} | {_responder_counts(sel)} | {cell} | {proxy:.3f} |")
    lines[2:2] = [*summary, "", "Every team:", ""]
    br, proxy = np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    ok = ~np.isnan(proxy)
    if ok.sum() >= 3 and np.ptp(proxy[ok]) > 0 and np.ptp(br[ok]) > 0:
        from scipy.stats import spearmanr

        rho = spearmanr(proxy[ok], br[ok]).statistic
        lines += ["", f"Spearman rank correlation of the proxy with the best responder's win-rate over "
                  f"{int(ok.sum())} teams: {rho:.2f}."]  # fmt: skip
    return {"exploitability.md": "\n".join(lines) + "\n"}, rows


def _responder_counts(rows) -> str:
    """How many best responders each frozen team of these _exploitability rows had: "3", or "2-3"."""
    counts = sorted({len(r[5]) for r in rows})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def best_response_recipe_report(results: Path) -> dict:
    """benchmarks/best_response.py's measurements (tag/best_response_recipe/): best_response_recipe.md, per tuning
    seed and kernel level, the chosen recipe's (recipe.json) test win-rate against a frozen stationary prey,
    random predators' on the same episodes, their margin and whether it clears the required one;
    best_response_before.md, the same for the recipe it replaced (before.json); best_response_candidates.md, one
    row per recipe and kernel level measured while choosing (candidates/*.json too)."""
    root = Path(results) / "tag" / "best_response_recipe"
    measured = [root / "before.json", *sorted((root / "candidates").glob("*.json")), root / "recipe.json"]
    measured = {p: json.loads(p.read_text()) for p in measured if p.exists()}
    out = {f"best_response_{p.stem}.md": _recipe_seeds(data) for p, data in measured.items() if p.parent == root}
    lines = ["| recipe | file | kernels | seeds | pass | median margin | lowest margin | median wall time, s |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for path, data in measured.items():
        for k, level in data["levels"].items():
            margins = np.array([r["win_rate"] for r in level["runs"]]) - level["random_win_rate"]
            seeds, wall = [r["seed"] for r in level["runs"]], np.median([r["wall_time"] for r in level["runs"]])
            lines.append(f"| `{' '.join(data['recipe'])}` | {path.relative_to(root)} | {k} | {min(seeds)}-{max(seeds)} "
                         f"| {int((margins >= data['margin']).sum())} of {len(margins)} | {np.median(margins):+.2f} "
                         f"| {margins.min():+.2f} | {wall:.0f} |")  # fmt: skip
    if measured:
        out["best_response_candidates.md"] = "\n".join(lines) + "\n"
    return out


def _recipe_seeds(data: dict) -> str:
    """One best_response.py measurement per tuning seed: the responder's and random's win-rates at each kernel level."""
    levels = data["levels"]
    seeds = sorted({r["seed"] for level in levels.values() for r in level["runs"]})
    lines = ["| seed | " + " | ".join(f"{k}: responder | random | margin | pass" for k in levels) + " |",
             "|" + "---|" * (1 + 4 * len(levels))]  # fmt: skip
    for seed in seeds:
        cells = []
        for level in levels.values():
            won, rnd = next((r["win_rate"] for r in level["runs"] if r["seed"] == seed), None), level["random_win_rate"]
            if won is None:
                cells += ["n/a"] * 4
            else:
                ok = won - rnd >= data["margin"]
                cells += [f"{won:.2f}", f"{rnd:.2f}", f"{won - rnd:+.2f}", "yes" if ok else "NO"]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    notes = []
    for k, level in levels.items():
        margins = np.array([r["win_rate"] for r in level["runs"]]) - level["random_win_rate"]
        m = level["machine"]
        env = "".join(f", {name}={value}" for name, value in m["environment"].items())
        notes.append(f"{k}: {int((margins >= data['margin']).sum())} of {len(margins)} seeds pass "
                     f"({m['cpu']}, torch {m['torch']}, numpy {m['numpy']}{env})")  # fmt: skip
    caption = (
        f"`{' '.join(data['recipe'])}`: IPPO predators trained against a frozen stationary prey, tuning seeds "
        f"{seeds[0]}-{seeds[-1]}, one run per seed and kernel level; win-rates on {data['test_episodes']} held-out "
        f"test episodes; margin = responder - random predators on the same episodes; pass = margin >= "
        f"{data['margin']}. " + "; ".join(notes) + "."
    )
    return caption + "\n\n" + "\n".join(lines) + "\n"


BENCHMARK_LABELS = {
    "env": "env stepping",
    "train": "Method I training",
    "eval": "evaluation",
    "maddpg": "MADDPG training",
}


def benchmark_report(results: Path, log=lambda name: None) -> dict:
    """benchmarks/throughput.py's JSON files as tables: <stem>.md per results/benchmarks/<stem>.json."""
    log("throughput")
    out = {}
    for path in sorted((Path(results) / "benchmarks").glob("*.json")):
        data = json.loads(path.read_text())
        if "results" not in data or "units" not in data:
            continue
        a = data["args"]
        lines = ["| | mpe2 | batched | ratio (per round) |", "|---|---|---|---|"]
        for key, r in data["results"].items():
            env, measure = key.split("/")
            lo, hi = min(r["round_ratios"]), max(r["round_ratios"])
            lines.append(f"| {env}: {BENCHMARK_LABELS.get(measure, measure)}, {data['units'][measure]} | "
                         f"{r['median']['mpe2']:,.0f} | {r['median']['batched']:,.0f} | "
                         f"**{r['ratio']:.2f}x** ({lo:.2f}-{hi:.2f}) |")  # fmt: skip
        load = data.get("load_average_1min")
        load_text = f" 1-minute load average {load['start']} at the start, {load['end']} at the end." if load else ""
        out[f"{path.stem}.md"] = (
            f"`python benchmarks/throughput.py`: medians of {a['rounds']} rounds, each running both backends one "
            f"after the other in one process; {a['num_envs']} envs, 1 torch thread, default hyperparameters; "
            f"{data['machine']['cpu_model']} ({data['machine']['torch_cpu_capability']}).{load_text}\n\n"
            + "\n".join(lines)
            + "\n"
        )
    return out
