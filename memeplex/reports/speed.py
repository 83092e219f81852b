"""docs/speed.md's measurements as tables: this repository against the compiled JAX reference
(benchmarks/speed.py: speed.md, and with --scaling speed_scaling.md and .png), and the equivalence of the
hand-written PPO step with autograd's (equivalence.md: the same IPPO runs on both paths, paired by seed)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from memeplex import stats
from memeplex.reports.tables import METRIC, finished, per_seed, row, rule

IMPL_LABELS = {"jax": "JAX (jax.jit)", "ippo": "IPPO", "method_i": "Method I", "ippo_autograd": "IPPO, autograd step"}
EQUIVALENCE = "spread/equivalence"  # results/<this>/<backward>/spread/ppo/eq_s<seed>/


def report(results: Path, log=lambda name: None) -> dict:
    """speed.md / speed_scaling.{md,png} per benchmarks/speed.py JSON, and equivalence.md."""
    out = {}
    for path in sorted((Path(results) / "benchmarks").glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("kind") in ("speed", "speed-scaling"):
            log(data["kind"])
            out.update(report_for(data, path.stem))
    if (Path(results) / EQUIVALENCE).is_dir():
        log("equivalence")
        out["equivalence.md"] = equivalence_table(Path(results) / EQUIVALENCE)
    return out


def report_for(data: dict, stem: str) -> dict:
    """One benchmarks/speed.py JSON's tables (and, for --scaling, figure), named after its file's stem."""
    if data["kind"] == "speed":
        return {f"{stem}.md": speed_table(data)}
    return {f"{stem}.md": scaling_table(data), f"{stem}.png": scaling_figure(data)}


def medians(data: dict) -> dict:
    """{(config, impl): {run_sps, compile_s, e2e_s: medians over rounds, rounds: [run_sps by round]}}."""
    cells = {}
    for m in data["measurements"]:
        cells.setdefault((m["config"], m["impl"]), []).append(m)
    return {
        key: {
            **{k: statistics.median(m[k] for m in ms) for k in ("run_sps", "compile_s", "e2e_s")},
            "learn_share": statistics.median(m["learn_s"] / m["run_s"] for m in ms) if "learn_s" in ms[0] else None,
            "by_round": {m["round"]: m["run_sps"] for m in ms},
        }
        for key, ms in cells.items()
    }


def _caption(data: dict, command: str) -> str:
    a, machine = data["args"], data["machine"]
    jax = data.get("jax")
    jax_text = (
        f"JAX {jax.get('jax')}, jaxlib {jax.get('jaxlib')}, jaxmarl {jax.get('jaxmarl')}"
        if isinstance(jax, dict)
        else f"JAX reference not measured ({jax})"
    )
    load = data["load_average_1min"]
    rerun = sum(m.get("xla_threads") == "1" for m in data["measurements"]) if a.get("xla_threads") == "default" else 0
    jax_text += f" ({rerun} JAX run(s) hung and were re-run single-threaded)" if rerun else ""
    return (
        f"`{command}`: medians of {a['rounds']} rounds, one fresh process per implementation, alternating within "
        f"every round; this repository with {a['torch_threads']} torch thread(s), JAX with XLA's "
        f"{'default threads' if a.get('xla_threads', 'default') == 'default' else 'single thread'}; "
        f"{jax_text}; {machine['cpu_model']} ({machine['torch_cpu_capability']}), {data['cpu_count']} cores; "
        f"1-minute load average {load['start']} at the start, {load['end']} at the end."
    )


def speed_table(data: dict) -> str:
    med = medians(data)
    lines = [row("configuration", "implementation", "run only, env steps/s", "learning, % of run",
                 "rollout alone, env steps/s", "compile, s", "end to end, s", "run-only ratio to JAX (per round)"),
             rule(8)]  # fmt: skip
    for config, impl in med:
        m, jax = med[(config, impl)], med.get((config, "jax"))
        steps = next(x["env_steps"] for x in data["measurements"] if x["config"] == config)
        ratio = ""
        if impl != "jax" and jax:
            per_round = [m["by_round"][r] / jax["by_round"][r] for r in m["by_round"] if r in jax["by_round"]]
            ratio = f"**{m['run_sps'] / jax['run_sps']:.2f}** ({min(per_round):.2f}-{max(per_round):.2f})"
        lines.append(row(f"{config} ({steps:,} steps)" if impl == "jax" or not jax else "", IMPL_LABELS[impl],
                         f"{m['run_sps']:,.0f}", "-" if m["learn_share"] is None else f"{100 * m['learn_share']:.0f}",
                         "-" if m["learn_share"] is None else f"{m['run_sps'] / (1 - m['learn_share']):,.0f}",
                         f"{m['compile_s']:.1f}" if impl == "jax" else "-",
                         f"{m['e2e_s']:.1f}", ratio))  # fmt: skip
    target_list = targets(med)
    return (
        _caption(data, "python benchmarks/speed.py")
        + "\n\n"
        + "\n".join(lines)
        + "\n"
        + ("\n" + target_list + "\n" if target_list else "\n")
    )


def targets(med: dict) -> str:
    """The speed targets, each with the table's medians: IPPO's run-only ratio to JAX (>= 1), its end-to-end time
    at 200k against JAX's (faster), Method I's throughput against IPPO's (within 10%), and the hand-written step's
    gain over autograd's."""
    configs = list(dict.fromkeys(c for c, _ in med))
    ratio = lambda c, a, b, key="run_sps": med[(c, a)][key] / med[(c, b)][key]
    have = lambda a, b: [c for c in configs if (c, a) in med and (c, b) in med]
    lines = []
    if runs := [c for c in have("ippo", "jax") if c != "e2e-200k"]:
        vals = ", ".join(f"{c} {ratio(c, 'ippo', 'jax'):.2f}" for c in runs)
        ok = all(ratio(c, "ippo", "jax") >= 1 for c in runs)
        lines.append(f"- IPPO's run-only throughput / JAX's, target >= 1.0: {vals} ({'met' if ok else 'not met'}).")
    if ("e2e-200k", "ippo") in med and ("e2e-200k", "jax") in med:
        us, them = med[("e2e-200k", "ippo")]["e2e_s"], med[("e2e-200k", "jax")]["e2e_s"]
        lines.append(f"- End to end at 200k, start-up and compilation included, target faster than JAX: IPPO "
                     f"{us:.1f} s, JAX {them:.1f} s ({'met' if us < them else 'not met'}).")  # fmt: skip
    if runs := have("method_i", "ippo"):
        vals = ", ".join(f"{c} {ratio(c, 'method_i', 'ippo'):.2f}" for c in runs)
        ok = all(ratio(c, "method_i", "ippo") >= 0.9 for c in runs)
        lines.append(
            f"- Method I's run-only throughput / IPPO's, target >= 0.90: {vals} ({'met' if ok else 'not met'})."
        )
    if runs := have("ippo", "ippo_autograd"):
        vals = ", ".join(f"{c} {ratio(c, 'ippo', 'ippo_autograd'):.2f}" for c in runs)
        lines.append(f"- The hand-written PPO step / the autograd step, run-only throughput: {vals}.")
    return "\n".join(lines)


def _points(data: dict) -> tuple:
    """(the env counts' points, the team sizes' points): [(x, label)] in measured order."""
    labels = list(dict.fromkeys(m["config"] for m in data["measurements"]))
    envs = [(int(lb.split("=")[1]), lb) for lb in labels if lb.startswith("envs=")]
    base = next((lb for n, lb in envs if n == min(data["args"]["env_counts"])), None)  # N = 3 at the fewest envs
    agents = [(3, base)] if base else []
    agents += [(int(lb.split("=")[1]), lb) for lb in labels if lb.startswith("agents=")]
    return envs, agents


def scaling_table(data: dict) -> str:
    med = medians(data)
    impls = list(dict.fromkeys(m["impl"] for m in data["measurements"]))
    envs, agents = _points(data)
    lines = [row("", *(IMPL_LABELS[i] + ", env steps/s" for i in impls), "ratio to JAX"), rule(len(impls) + 2)]
    for title, pts in (("envs", envs), ("agents", agents)):
        for x, label in pts:
            sps = [med[(label, i)]["run_sps"] if (label, i) in med else float("nan") for i in impls]
            ratio = f"{sps[1] / sps[0]:.2f}" if len(sps) > 1 and "jax" in impls else ""
            lines.append(row(f"{x} {title}" + (" (8 envs)" if title == "agents" else " (3 agents)"),
                             *(f"{s:,.0f}" for s in sps), ratio))  # fmt: skip
    return _caption(data, "python benchmarks/speed.py --scaling") + " Run only.\n\n" + "\n".join(lines) + "\n"


def scaling_figure(data: dict):
    import matplotlib.pyplot as plt

    med = medians(data)
    impls = list(dict.fromkeys(m["impl"] for m in data["measurements"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (pts, xlabel) in zip(axes, zip(_points(data), ("parallel envs (3 agents)", "agents (spread N, 8 envs)"))):
        for impl in impls:
            xs = [x for x, label in pts if (label, impl) in med]
            ax.plot(xs, [med[(label, impl)]["run_sps"] for x, label in pts if (label, impl) in med], "o-",
                    label=IMPL_LABELS[impl])  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("env steps/s, run only")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Training throughput (IPPO, tuned hyperparameters)")
    fig.tight_layout()
    return fig


def equivalence_table(root: Path) -> str:
    """The same IPPO configuration with ppo_backward autograd and fused, paired by seed: each path's mean test
    score, the paired difference's bootstrap CI, the smallest difference the seeds could detect, a verdict."""
    runs = {b: {seed: s for seed, s, _ in finished(root / b, "ppo", "eq")} for b in ("autograd", "fused")}
    seeds = sorted(set(runs["autograd"]) & set(runs["fused"]))
    if len(seeds) < 2:
        return "Fewer than two seeds ran on both paths.\n"
    a = np.array([runs["autograd"][s][METRIC] for s in seeds])
    f = np.array([runs["fused"][s][METRIC] for s in seeds])
    diff = f - a
    _, lo, hi, _, _, mde = stats.paired_difference(f, a)  # bootstrap CI; MDE of a paired t-test, 80% power
    verdict = (
        f"**indistinguishable**: the 95% CI of the paired difference contains 0 and rules out differences beyond "
        f"{max(-lo, hi):.3f}"
        if lo <= 0 <= hi
        else f"**different**: the 95% CI of the paired difference, [{lo:+.3f}, {hi:+.3f}], excludes 0"
    )
    lines = [row("", "autograd (before)", "fused (now)", "fused - autograd, paired"), rule(4),
             row("mean test score (normalised)", f"{a.mean():.3f}", f"{f.mean():.3f}",
                 f"{diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]"),
             row("per seed", per_seed(a, "{:.2f}"), per_seed(f, "{:.2f}"), per_seed(diff, "{:+.2f}")),
             row("smallest difference 80% power detects", "", "", f"{mde:.3f}")]  # fmt: skip
    for k in range(0, len(seeds), 20) if len(seeds) > 20 else []:  # the seeds as they were added, 20 at a time
        block = diff[k : k + 20]
        b_lo, b_hi = stats.bootstrap_ci(block)
        lines.append(row(f"seeds {seeds[k]}-{seeds[min(k + 20, len(seeds)) - 1]}", f"{a[k : k + 20].mean():.3f}",
                         f"{f[k : k + 20].mean():.3f}", f"{block.mean():+.3f} [{b_lo:+.3f}, {b_hi:+.3f}]"))  # fmt: skip
    args = json.loads((root / "fused" / "spread" / "ppo" / f"eq_s{seeds[0]}" / "config.json").read_text())["args"]
    caption = (
        f"IPPO with its default hyperparameters, {args['max_steps']:,} env steps, tuning seeds {seeds[0]}-{seeds[-1]} "
        f"({len(seeds)} seeds, the same seed on both paths: same initial weights and environments); test score on "
        f"{args['final_eval_episodes']} held-out episodes; bootstrap 95% CI of the mean paired difference. "
        f"Verdict: {verdict}."
    )
    return caption + "\n\n" + "\n".join(lines) + "\n"
