"""This repository's IPPO (and Method I) against a compiled JAX IPPO, side by side on the same machine.

    pip install -r benchmarks/requirements-jax.txt     # the JAX reference only; the project never imports it
    python benchmarks/speed.py --out results/benchmarks/speed.json
    python benchmarks/speed.py --scaling --out results/benchmarks/speed_scaling.json
    python benchmarks/speed.py --jax-python ../jax-venv/bin/python --rounds 1   # JAX installed elsewhere

The reference is benchmarks/jax_ippo.py: IPPO with this repository's network, losses and hyperparameters, its whole
training loop one `jax.jit` program over JaxMARL's MPE_simple_spread_v3 (continuous actions). Each measurement
is one fresh process per implementation, on the same configuration, the implementations alternating within every
round (the order flipped every other round), so both see the same machine state:

* run only: env steps / the training loop's seconds (this repository: summary.json's train_time, acting,
  stepping and learning; JAX: the compiled program's run, compilation excluded);
* compile: JAX's ahead-of-time compilation of the training program (this repository compiles nothing);
* end to end: the whole process, start-up, imports, compilation and saving included.

Configurations: `tuned` (this repository's defaults: 8 envs x 128 steps, 10 epochs, 2 minibatches), `jaxmarl`
(JaxMARL's MPE IPPO: 16 envs x 128, 4 epochs, 4 minibatches), each --steps env steps, and `e2e-200k` (the tuned
one for --e2e-steps, 200k: the budget of the result suites, where the end-to-end time is the one that counts). --scaling
measures the tuned configuration instead against the number of envs (--env-counts) and the team size
(--team-sizes, spread with N agents and N landmarks). If the JAX side cannot run, the benchmark says so in one
line and measures this repository alone. `python compare_results.py --report` turns the JSON into docs/speed.md's
tables and figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memeplex import cli, files, rundir  # noqa: E402
from memeplex.reports import speed as speed_report  # noqa: E402

CONFIGS = {  # name: (num_envs, update_epochs, num_minibatches)
    "tuned": (8, 10, 2),
    "jaxmarl": (16, 4, 4),
}
ROLLOUT_LENGTH = 128
SCRIPTS = {  # this repository's learners: (script, extra options)
    "ippo": ("train_ppo.py", []),
    "method_i": ("train_method_i.py", []),
    "ippo_autograd": ("train_ppo.py", ["--ppo-backward", "autograd"]),  # the PPO step before ppo_fused
}
JAX_UNAVAILABLE, JAX_HUNG = 3, 4  # jax_ippo.py's exit codes: JAX or JaxMARL not importable; past --timeout
JAX_TIMEOUT = 300  # seconds: every measured JAX run takes well under a minute (a hang idles until killed)


def run_ours(algo: str, num_envs: int, epochs: int, minibatches: int, steps: int, agents: int, threads: int) -> dict:
    """One training run of this repository in a fresh process: run-only and end-to-end seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        script, extra = SCRIPTS[algo]
        argv = [sys.executable, str(ROOT / script), *extra, "--num-envs", str(num_envs), "--rollout-length",
                str(ROLLOUT_LENGTH), "--update-epochs", str(epochs), "--num-minibatches", str(minibatches),
                "--max-steps", str(steps), "--num-agents", str(agents), "--seed", "101", "--torch-threads",
                str(threads), "--eval-interval", str(10**12), "--eval-episodes", "1", "--final-eval-episodes", "0",
                "--results-dir", tmp, "--checkpoint-dir", tmp, "--run-name", "bench", "--no-progress"]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{script} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        e2e = time.perf_counter() - start
        (summary,) = Path(tmp).glob("*/*/bench_s101/summary.json")
        s = json.loads(summary.read_text())
    return {"env_steps": s["env_steps"], "run_s": s["train_time"], "learn_s": s["train_time_learning"],
            "compile_s": 0.0, "e2e_s": e2e}  # fmt: skip


def run_jax(python: str, num_envs: int, epochs: int, minibatches: int, steps: int, agents: int, threads: str) -> dict:
    """One run of the JAX reference in a fresh process ({"unavailable": why} if it cannot run). A run that hangs
    (XLA's CPU runtime, rarely: jax_ippo.py's --timeout, exit code 4) is run once more, single-threaded (the
    known workaround; the measurement records it)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "jax.json"
        argv = [python, str(ROOT / "benchmarks" / "jax_ippo.py"), "--num-envs", str(num_envs), "--rollout-length",
                str(ROLLOUT_LENGTH), "--update-epochs", str(epochs), "--num-minibatches", str(minibatches),
                "--total-steps", str(steps), "--num-agents", str(agents), "--seed", "101", "--xla-threads", threads,
                "--timeout", str(JAX_TIMEOUT), "--out", str(out)]  # fmt: skip
        for _ in range(2):
            start = time.perf_counter()
            try:
                done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
            except OSError as e:
                return {"unavailable": f"cannot run {python}: {e.strerror}"}
            e2e = time.perf_counter() - start
            if done.returncode != JAX_HUNG:
                break
            print("the JAX reference hung (XLA's CPU runtime); running it once more, single-threaded", flush=True)
            threads = argv[argv.index("--xla-threads") + 1] = "1"  # the known workaround
        if done.returncode != 0:
            lines = (done.stdout + done.stderr).strip().splitlines() or [f"exit code {done.returncode}"]
            reason = lines[-1] if done.returncode == JAX_UNAVAILABLE else f"failed: {lines[-1]}"
            return {"unavailable": reason}
        r = json.loads(out.read_text())
    return {"env_steps": r["env_steps"], "run_s": r["run_s"], "compile_s": r["compile_s"], "e2e_s": e2e,
            "xla_threads": threads,
            "versions": r.get("versions", {})}  # fmt: skip


def points(args) -> list:
    """(label, num_envs, epochs, minibatches, steps, agents, implementations) for every configuration measured."""
    impls = ["jax", *args.algos]
    if args.scaling:
        envs, epochs, mbs = CONFIGS["tuned"]
        out = [(f"envs={e}", e, epochs, mbs, max(args.scaling_steps, e * ROLLOUT_LENGTH * 2), 3, impls[:2])
               for e in args.env_counts]  # fmt: skip
        out += [(f"agents={n}", envs, epochs, mbs, args.scaling_steps, n, impls[:2]) for n in args.team_sizes if n != 3]
        return out
    out = [(name, e, ep, mb, args.steps, 3, impls) for name, (e, ep, mb) in CONFIGS.items()]
    e, ep, mb = CONFIGS["tuned"]
    per_update = e * ROLLOUT_LENGTH
    out += [("e2e-200k", e, ep, mb, -(-args.e2e_steps // per_update) * per_update, 3, impls)]
    return [point for point in out if point[0] in args.configs]


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=cli.positive(int), default=3)
    p.add_argument("--steps", type=cli.positive(int), default=409_600, help="env steps per run of the two configs")
    p.add_argument("--configs", nargs="+", choices=[*CONFIGS, "e2e-200k"], default=[*CONFIGS, "e2e-200k"])
    p.add_argument("--e2e-steps", type=cli.positive(int), default=200_000, help="env steps of the end-to-end run")
    p.add_argument("--algos", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS),
                   help="this repository's learners to time (IPPO first: the one compared with JAX's)")  # fmt: skip
    p.add_argument("--torch-threads", type=cli.positive(int), default=1, help="this repository's --torch-threads")
    p.add_argument("--xla-threads", choices=["default", "1"], default="default", help="jax_ippo.py's --xla-threads")
    p.add_argument("--jax-python", default=sys.executable, help="the Python that has the JAX reference's packages")
    p.add_argument("--scaling", action="store_true", help="measure against the number of envs and the team size")
    p.add_argument("--env-counts", nargs="+", type=cli.positive(int), default=[8, 32, 128, 512])
    p.add_argument("--team-sizes", nargs="+", type=cli.positive(int), default=[3, 6, 12])
    p.add_argument("--scaling-steps", type=cli.positive(int), default=131_072, help="env steps per scaling run")
    p.add_argument("--out", default=None, help="write the measurements as JSON here")
    args = p.parse_args(argv)
    result = {
        "kind": "speed-scaling" if args.scaling else "speed",
        "args": vars(args),
        "machine": rundir.cpu_info(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": {"start": round(os.getloadavg()[0], 2)},
        "jax": None,
        "measurements": [],
    }
    jax_ok = True
    for r in range(args.rounds):
        for label, envs, epochs, mbs, steps, agents, impls in points(args):
            order = impls if r % 2 == 0 else impls[::-1]
            for impl in order:
                if impl == "jax":
                    if not jax_ok:
                        continue
                    m = run_jax(args.jax_python, envs, epochs, mbs, steps, agents, args.xla_threads)
                    if "unavailable" in m:
                        print(f"JAX reference unavailable ({m['unavailable']}): measuring this repository only")
                        jax_ok, result["jax"] = False, m["unavailable"]
                        continue
                    result["jax"] = m.pop("versions")
                else:
                    m = run_ours(impl, envs, epochs, mbs, steps, agents, args.torch_threads)
                m.update(config=label, impl=impl, round=r, num_envs=envs, agents=agents)
                m["run_sps"], m["e2e_sps"] = m["env_steps"] / m["run_s"], m["env_steps"] / m["e2e_s"]
                result["measurements"].append(m)
                print(f"round {r} {label:10s} {impl:9s} run only {m['run_sps']:>9,.0f} env steps/s, compile "
                      f"{m['compile_s']:5.1f} s, end to end {m['e2e_s']:6.1f} s", flush=True)  # fmt: skip
    result["load_average_1min"]["end"] = round(os.getloadavg()[0], 2)
    if jax_ok:  # the target list of the report's table (memeplex.reports.speed), from these medians
        print(speed_report.targets(speed_report.medians(result)))
    if args.out:
        files.write_json(args.out, result)
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
