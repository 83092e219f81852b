"""Run the experiment protocol on simple_spread_v3: every training run, as Ray tasks.

    python run_experiments.py --suite tune             # tuning runs: seeds 101-103, validation seeds only
    python run_experiments.py --suite choose           # -> results/spread/tuning/chosen.{json,md}
    python run_experiments.py --suite main             # 4 algorithms x reporting seeds 1-10, chosen flags
    python run_experiments.py --suite all --dry-run    # list every command, run nothing
    python run_experiments.py --suite main --address auto   # on a running Ray cluster

Suites, in dependency order (`--suite all` runs them in this order):

    tune       200k steps, tuning seeds 101-103, --final-eval-episodes 0 (the test seeds are never seen).
               IPPO and Method I: the same PPO_DRAWS configurations of the PPO knobs, drawn once
               from PPO_GRID with a fixed seed.  Method I then sweeps its distillation knobs one at a
               time (DISTILL_GRID) around its best PPO configuration.  MADDPG, population 4 and
               population 1: the same MADDPG_DRAWS configurations from MADDPG_GRID.
    power      tuning seeds 101-140 at 200k and 101-110 at 2M, validation episodes only: Method I and IPPO
               paired by seed, whose per-seed differences' spread sets how many reporting seeds detect
               0.05 (200k) and 0.10 (2M) with 80% power (compare_results.py --report: power.md).
    choose     reads the tuning runs' summary.json and writes chosen.json: per algorithm the
               configuration with the best mean `last5_eval_normalised` over the tuning seeds, and
               every candidate's scores (chosen.md: the same as tables).
    main       200k steps, reporting seeds 1-10: Method I, IPPO, MADDPG population 4 and 1, chosen flags.
    long       2M steps, seeds 1-5: Method I and IPPO.
    wallclock  seeds 1-5: every algorithm with --max-time = the median wall time of the MADDPG
               population main runs.
    ablation   200k steps, seeds 1-5: Method I's distillation weight, interval and topology one at a
               time around its chosen flags, and the controls --distill-target shuffled / random-encoder.
    scaling    200k steps, seeds 1-5: Method I and IPPO with 3 and 6 agents.

Each suite is defined once, below, as a list of Run rows (script, env, algo directory, run name,
seed, flags); what the reports also name (the algorithms, run names, the best-response recipe) is in
memeplex/suites.py, and choosing from the tuning runs in memeplex/tuning.py.  Every run is a Ray
task (one CPU) that runs the training script as a subprocess, its output appended to <run
directory>/driver.log.  Without --address, `ray.init()` starts a local Ray with one worker per
core and the scripts run in this directory.  --address HOST:PORT connects to a running cluster
(`ray start --head` on one machine, `ray start --address HOST:PORT` on the others) whose nodes
share nothing with this one: Ray ships this repository's code to them, each task gets the files
its run needs and sends the run's files back, and this driver writes them under --results-dir and
--checkpoint-dir (memeplex/experiments.py says what travels; docs/usage.md, "Running on a
cluster").  A node that dies takes its runs with it; Ray starts them again on another node.

Resuming: a run whose summary.json exists (and is not "interrupted") is skipped, after
checking that its config.json has the flags the suite asks for; a run with a checkpoint
latest.pt but no finished summary is continued with --resume.  So rerunning a command picks up
where it stopped.  A run that fails is reported with the tail of its log, the others go on, and
the exit code is 1.  Ctrl-C (or SIGTERM) stops every running script the way its own Ctrl-C
does (it saves latest.pt), so the same command resumes them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from memeplex.cli import ArgumentParser, run_cli
from memeplex.errors import UsageError
from memeplex.experiments import Context, Run, execute, options, read_summary, report_failures, run_evaluation, to_flags
from memeplex.files import atomic_write
from memeplex.suites import (
    ABLATION_PREFIX,
    ALGORITHMS,
    BEST_RESPONSE_FLAGS,
    BEST_RESPONSE_SEEDS,
    LONG_RUN,
    MAIN_RUN,
    POWER_FLAGS,
    POWER_RUNS,
    POWER_SEEDS,
    SCALING_PREFIX,
    SCRIPTS,
    SELFPLAY_RUN,
    SELFPLAY_WALLCLOCK_RUN,
    WALLCLOCK_RUN,
    chosen_path,
)
from memeplex.tuning import best, choice, choice_markdown, draw, one_at_a_time, scores

ENV = "spread"
STEPS = 200_000
LONG_STEPS = 2_000_000
WALLCLOCK_MAX_STEPS = 100_000_000  # the --max-time budget ends these runs, not the steps
TUNE_SEEDS = (101, 102, 103)  # every hyperparameter choice is made on these
REPORT_SEEDS = tuple(range(1, 11))  # never used for a choice
FEW_SEEDS = tuple(range(1, 6))
TUNE_METRIC = "last5_eval_normalised"  # validation seeds: mean of the last 5 periodic evaluations


# ----------------------------------------------------------------------------
# The tuning grids (the algorithms themselves: memeplex.suites.ALGORITHMS)
# ----------------------------------------------------------------------------

PPO_GRID = {  # the PPO knobs IPPO and Method I share
    "lr": [3e-4, 1e-3, 2e-3],
    "update_epochs": [5, 10, 15],
    "num_minibatches": [2, 4, 8],
    "rollout_length": [64, 128, 256],
    "ent_coef": [0.0, 0.005, 0.01],
    "activation": ["relu", "tanh"],
}
PPO_DRAWS, PPO_DRAW_SEED = 8, 0  # both IPPO and Method I train these same 8 configurations
DISTILL_CENTRE = {"distill_weight": 0.1, "distill_interval": 10, "topology": "all-to-all"}
DISTILL_GRID = {  # Method I only; swept one knob at a time around DISTILL_CENTRE
    "distill_weight": [0.01, 0.1, 1.0, 10.0],
    "distill_interval": [1, 10, 50],
    "topology": ["all-to-all", "ring", "star"],
}
MADDPG_GRID = {  # lr is both the actor's and the critic's
    "lr": [3e-4, 1e-3],
    "batch_size": [64, 128],
    "learn_step": [8, 16],
    "shared_networks": [False, True],
}
MADDPG_DRAWS, MADDPG_DRAW_SEED = 4, 0  # population 4 and population 1 both train these 4
# meaningless with --topology none, which refuses them
DISTILL_OPTIONS = tuple(
    "--distill-weight --distill-interval --obs-buffer-size --distill-batch-size --distill-target".split()
)


def g(x) -> str:
    """A number as it appears in flags and run names: 0.0003, 10, 0.01."""
    return f"{x:g}" if isinstance(x, float) else str(x)


PPO_CONFIGS = draw(PPO_GRID, PPO_DRAWS, PPO_DRAW_SEED)
MADDPG_CONFIGS = draw(MADDPG_GRID, MADDPG_DRAWS, MADDPG_DRAW_SEED)


def ppo_flags(c: dict) -> tuple:
    """A PPO_GRID configuration as train_*.py flags."""
    return tuple(
        f"--lr {g(c['lr'])} --update-epochs {c['update_epochs']} --num-minibatches {c['num_minibatches']} "
        f"--rollout-length {c['rollout_length']} --ent-coef {g(c['ent_coef'])} --activation {c['activation']}".split()
    )


def ppo_name(c: dict) -> str:
    """A PPO_GRID configuration as a run name."""
    return (
        f"lr{g(c['lr'])}-ep{c['update_epochs']}-mb{c['num_minibatches']}-rl{c['rollout_length']}"
        f"-ent{g(c['ent_coef'])}-{c['activation']}"
    )


def distill_flags(d: dict) -> tuple:
    """A DISTILL_GRID configuration as train_method_i.py flags."""
    return tuple(
        f"--distill-weight {g(d['distill_weight'])} --distill-interval {d['distill_interval']} "
        f"--topology {d['topology']}".split()
    )


def distill_name(d: dict) -> str:
    """A DISTILL_GRID configuration as (the end of) a run name."""
    return f"w{g(d['distill_weight'])}-k{d['distill_interval']}-{d['topology']}"


def maddpg_flags(m: dict) -> tuple:
    """A MADDPG_GRID configuration as train_maddpg.py flags."""
    return tuple(
        f"--lr-actor {g(m['lr'])} --lr-critic {g(m['lr'])} --batch-size {m['batch_size']} "
        f"--learn-step {m['learn_step']} --{'' if m['shared_networks'] else 'no-'}shared-networks".split()
    )


def maddpg_name(m: dict) -> str:
    """A MADDPG_GRID configuration as a run name."""
    return f"lr{g(m['lr'])}-b{m['batch_size']}-ls{m['learn_step']}-{'shared' if m['shared_networks'] else 'own'}"


# ----------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One configuration of one algorithm in the tuning sweep."""

    algorithm: str
    name: str  # run name, describes the configuration
    flags: tuple  # the algorithm's fixed flags and the configuration's

    def runs(self) -> list:
        """Its tuning runs: 200k steps, and never the test seeds."""
        a = ALGORITHMS[self.algorithm]
        flags = (*self.flags, "--max-steps", str(STEPS), "--final-eval-episodes", "0")
        return [Run(a.script, ENV, a.algo_dir, self.name, seed, flags) for seed in TUNE_SEEDS]


def runs_of(algorithm: str, name: str, seeds, *flags: str) -> list:
    """One run per seed of an algorithm (its run-name suffix appended to name)."""
    a = ALGORITHMS[algorithm]
    return [Run(a.script, ENV, a.algo_dir, name + a.suffix, seed, tuple(flags)) for seed in seeds]


# ----------------------------------------------------------------------------
# tune
# ----------------------------------------------------------------------------


def selected(ctx) -> tuple:
    """The algorithms this invocation runs (--algos; default all)."""
    return tuple(ctx.algos) if ctx is not None and ctx.algos else tuple(ALGORITHMS)


def stage1_candidates(ctx=None) -> list:
    """IPPO and Method I on the same PPO configurations (Method I with the centre
    distillation), and MADDPG's configurations at population 4 and 1 (of the --algos)."""
    return [c for c in _stage1_candidates() if c.algorithm in selected(ctx)]


def _stage1_candidates() -> list:
    centre = DISTILL_CENTRE
    out = [Candidate("ppo", f"tune-{ppo_name(c)}", ppo_flags(c)) for c in PPO_CONFIGS]
    out += [Candidate("method_i", f"tune-{ppo_name(c)}-{distill_name(centre)}", ppo_flags(c) + distill_flags(centre))
            for c in PPO_CONFIGS]  # fmt: skip
    for key in ("maddpg_pop4", "maddpg_pop1"):
        a = ALGORITHMS[key]
        out += [
            Candidate(key, f"tune-{maddpg_name(m)}{a.suffix}", a.fixed_flags + maddpg_flags(m)) for m in MADDPG_CONFIGS
        ]
    return out


def stage2_candidates(ppo_config: dict) -> list:
    """Method I's distillation knobs, one at a time, on its best stage-1 PPO configuration."""
    name, flags = f"tune-{ppo_name(ppo_config)}", ppo_flags(ppo_config)
    return [Candidate("method_i", f"{name}-{distill_name(d)}", flags + distill_flags(d))
            for d in one_at_a_time(DISTILL_CENTRE, DISTILL_GRID)]  # fmt: skip


def best_method_i_ppo_config(ctx) -> dict:
    """The PPO configuration of Method I's best stage-1 candidate (its runs must have finished)."""
    scored = scores(ctx, [c for c in stage1_candidates() if c.algorithm == "method_i"], TUNE_METRIC)
    return PPO_CONFIGS[scored.index(best(scored, TUNE_METRIC))]


def tuning_candidates(ctx) -> dict:
    """{algorithm: [candidate]} of the whole sweep (stage 2 needs stage 1's Method I results)."""
    out = {}
    for c in stage1_candidates(ctx):
        out.setdefault(c.algorithm, []).append(c)
    if "method_i" in out:
        names = {c.name for c in out["method_i"]}
        out["method_i"] += [c for c in stage2_candidates(best_method_i_ppo_config(ctx)) if c.name not in names]
    return out


def suite_tune(ctx):
    """200k steps, tuning seeds: stage 1 (PPO and MADDPG configurations), then stage 2 (Method I's
    distillation knobs, once stage 1's Method I runs have finished)."""
    yield "stage 1: PPO knobs (IPPO, Method I) and MADDPG", [r for c in stage1_candidates(ctx) for r in c.runs()]
    if "method_i" not in selected(ctx):
        return
    try:
        centre = best_method_i_ppo_config(ctx)
    except UsageError:
        if ctx.dry_run:
            print(
                "# stage 2 (Method I's distillation knobs on its best PPO configuration) is listed once "
                "stage 1's Method I runs have finished"
            )
            return
        raise
    stage2 = [r for c in stage2_candidates(centre) for r in c.runs()]
    yield f"stage 2: Method I's distillation knobs on {ppo_name(centre)}", stage2


# ----------------------------------------------------------------------------
# choose
# ----------------------------------------------------------------------------


def choose(ctx) -> dict:
    """chosen.json: the tuning setting and, per algorithm (of --algos; the others keep their earlier
    choice), the candidate with the best mean TUNE_METRIC over the tuning seeds."""
    out = {"env": ENV, "metric": TUNE_METRIC, "tuning_seeds": list(TUNE_SEEDS), "tuning_steps": STEPS, "algorithms": {}}
    if chosen_path(ctx.results).exists():
        out["algorithms"] = json.loads(chosen_path(ctx.results).read_text())["algorithms"]
    out["algorithms"].update(choice(ctx, tuning_candidates(ctx), TUNE_METRIC, ALGORITHMS))
    return out


def suite_choose(ctx):
    """Writes chosen.json and chosen.md from the finished tuning runs; no runs of its own."""
    chosen, path = choose(ctx), chosen_path(ctx.results)
    md = choice_markdown(chosen, ALGORITHMS)
    print(md)
    if ctx.dry_run:
        print(f"# --dry-run: not writing {ctx.rel(path)}")
    else:
        atomic_write(path, json.dumps(chosen, indent=2) + "\n")
        atomic_write(path.with_suffix(".md"), md)
        print(f"wrote {ctx.rel(path)} and {ctx.rel(path.with_suffix('.md'))}")
    return []


def load_chosen(ctx, needed=None) -> dict:
    """{algorithm: chosen flags} from chosen.json, for the algorithms `needed` (default: --algos)."""
    path = chosen_path(ctx.results)
    if not path.exists():
        raise UsageError(f"no {ctx.rel(path)}: run `python run_experiments.py --suite tune`, then `--suite choose`")
    algos = json.loads(path.read_text())["algorithms"]
    needed = selected(ctx) if needed is None else needed
    missing = [k for k in needed if k not in algos]
    if missing:
        raise UsageError(f"{ctx.rel(path)} has no choice for {missing[0]}; rerun `--suite choose`")
    return {k: tuple(algos[k]["flags"]) for k in needed}


# ----------------------------------------------------------------------------
# main, long, wallclock, ablation, scaling
# ----------------------------------------------------------------------------


def suite_main(ctx):
    """200k steps, reporting seeds 1-10: every algorithm with its chosen flags."""
    chosen = load_chosen(ctx)
    runs = []
    for key in selected(ctx):
        runs += runs_of(key, MAIN_RUN, REPORT_SEEDS, *chosen[key], "--max-steps", str(STEPS))
    runs = [dataclasses.replace(r, keep=SHIP_KEEP) if r.seed == 1 else r for r in runs]  # the ship suite's
    yield "every algorithm, chosen flags, reporting seeds 1-10", runs


def suite_long(ctx):
    """2M steps, seeds 1-5: Method I and IPPO."""
    chosen = load_chosen(ctx, ["method_i", "ppo"])
    runs = []
    for key in ("method_i", "ppo"):
        runs += runs_of(key, LONG_RUN, FEW_SEEDS, *chosen[key], "--max-steps", str(LONG_STEPS))
    yield "Method I and IPPO, 2M steps", runs


def wallclock_budget(ctx) -> float:
    """The median wall time of the finished MADDPG population-4 main runs."""
    runs = runs_of("maddpg_pop4", MAIN_RUN, REPORT_SEEDS)
    missing = [r for r in runs if read_summary(r.result_dir(ctx)) is None]
    if missing:
        raise UsageError(
            f"--suite wallclock needs every MADDPG population main run; {ctx.rel(missing[0].result_dir(ctx))} "
            f"has not finished ({len(missing)} of {len(runs)} missing): run `--suite main` first"
        )
    return median_wall_time([read_summary(r.result_dir(ctx)) for r in runs])


def median_wall_time(summaries: list) -> float:
    """The budget of a wall-clock suite: the runs' median wall time, to 0.1 s."""
    return round(statistics.median(s["wall_time"] for s in summaries), 1)


def suite_wallclock(ctx):
    """Seeds 1-5: every algorithm for the MADDPG population's median wall time."""
    chosen, budget = load_chosen(ctx), wallclock_budget(ctx)
    runs = []
    for key in selected(ctx):
        runs += runs_of(key, WALLCLOCK_RUN, FEW_SEEDS, *chosen[key],
                        "--max-steps", str(WALLCLOCK_MAX_STEPS), "--max-time", g(budget))  # fmt: skip
    yield f"every algorithm, --max-time {g(budget)} s", runs


def ablation_variants(base: tuple) -> list:
    """[(run name, flags)]: Method I's chosen flags with one distillation knob
    changed, and the two controls; a variant equal to the chosen flags is the
    single run "abl-chosen"."""
    opts = options(base)
    variants = [(f"weight-{g(w)}", {"--distill-weight": g(w)}) for w in DISTILL_GRID["distill_weight"]]
    variants += [(f"interval-{k}", {"--distill-interval": g(k)}) for k in DISTILL_GRID["distill_interval"]]
    variants += [(f"topology-{t}", {"--topology": t}) for t in [*DISTILL_GRID["topology"], "none"]]
    variants += [(f"target-{t}", {"--distill-target": t}) for t in ("shuffled", "random-encoder")]
    out, seen = [], {}
    for name, change in variants:
        v = {**opts, **change}
        if v.get("--topology") == "none":
            v = {k: x for k, x in v.items() if k not in DISTILL_OPTIONS}
        key = json.dumps(v, sort_keys=True)
        if key in seen:
            continue
        seen[key] = name = ABLATION_PREFIX + ("chosen" if v == opts else name)
        out.append((name, to_flags(v)))
    return out


def suite_ablation(ctx):
    """200k steps, seeds 1-5: Method I's distillation knobs one at a time, and the controls."""
    runs = []
    for name, flags in ablation_variants(load_chosen(ctx, ["method_i"])["method_i"]):
        runs += runs_of("method_i", name, FEW_SEEDS, *flags, "--max-steps", str(STEPS))
    yield "Method I distillation ablations and controls", runs


def suite_scaling(ctx):
    """200k steps, seeds 1-5: Method I and IPPO with 3 and 6 agents."""
    chosen = load_chosen(ctx, ["method_i", "ppo"])
    runs = []
    for n in (3, 6):
        for key in ("method_i", "ppo"):
            runs += runs_of(
                key, f"{SCALING_PREFIX}{n}", FEW_SEEDS, *chosen[key], "--num-agents", str(n), "--max-steps", str(STEPS)
            )
    yield "Method I and IPPO with 3 and 6 agents", runs


# ----------------------------------------------------------------------------
# power
# ----------------------------------------------------------------------------


def suite_power(ctx):
    """Tuning seeds (POWER_SEEDS): Method I and IPPO with the same seed (same initial weights and environments) at
    200k and 2M env steps, validation episodes only, so that the number of reporting seeds follows from the spread
    of their paired differences (memeplex.reports.power)."""
    for steps, seeds in POWER_SEEDS.items():
        runs = []
        for key in ("method_i", "ppo"):
            runs += runs_of(key, POWER_RUNS[steps], seeds, *POWER_FLAGS[steps],
                            "--max-steps", str(steps), "--final-eval-episodes", "0")  # fmt: skip
        yield f"Method I and IPPO paired by seed, {steps:,} env steps, seeds {seeds[0]}-{seeds[-1]}", runs


# ----------------------------------------------------------------------------
# tag, ship
# ----------------------------------------------------------------------------

TAG_ALGOS = tuple(SCRIPTS)  # every algorithm, default hyperparameters


SHIP_KEEP = ("latest.pt",)  # on a cluster, the checkpoints of the runs suite_ship copies come home
POOL_KEEP = ("latest.pt", "step_*.pt")  # and those of tag's self-play: pools, cross-play, best responders


def tag_runs(name: str, algos, seeds, *flags: str) -> list:
    """One tag run per algorithm and seed (on a cluster, their checkpoints come home: POOL_KEEP)."""
    return [Run(SCRIPTS[a], "tag", a, name, seed, tuple(flags), POOL_KEEP) for a in algos for seed in seeds]


def suite_tag(ctx):
    """simple_tag_v3, reporting seeds 1-5, default hyperparameters (no choice is made on tag's self-play): self-play
    at 200k env steps and at MADDPG's median wall time, fixed pools and cross-play per seed, cross-seed
    play, and BEST_RESPONSE_SEEDS best responders (IPPO, BEST_RESPONSE_FLAGS) trained against each final team."""
    yield "tag self-play, 200k env steps", tag_runs(SELFPLAY_RUN, TAG_ALGOS, FEW_SEEDS, "--max-steps", str(STEPS))
    maddpg = [read_summary(r.result_dir(ctx)) for r in tag_runs(SELFPLAY_RUN, ["maddpg"], FEW_SEEDS)]
    if all(maddpg):
        budget = median_wall_time(maddpg)
        yield (f"tag self-play for MADDPG's median wall time ({g(budget)} s)",
               tag_runs(SELFPLAY_WALLCLOCK_RUN, ["method_i", "ppo"], FEW_SEEDS,
                        "--max-steps", str(WALLCLOCK_MAX_STEPS), "--max-time", g(budget)))  # fmt: skip
    for seed in FEW_SEEDS:
        for pool_set in ("step", "wallclock"):
            for script in ("evaluate_fixed_pool.py", "cross_play_matrix.py"):
                run_evaluation(ctx, script, "--pool-set", pool_set, "--seed", str(seed))
    run_evaluation(ctx, "cross_seed_play.py", "--run-name", SELFPLAY_RUN)
    responders = []
    for algo in TAG_ALGOS:
        for seed in FEW_SEEDS:
            frozen = ctx.rel(ctx.checkpoints / "tag" / algo / f"{SELFPLAY_RUN}_s{seed}" / "latest.pt")
            for team in ("predator", "prey"):
                responders += [Run(SCRIPTS["ppo"], "tag", "ppo", f"exploit-{algo}-s{seed}-{team}", br_seed,
                                   ("--opponent", frozen, "--team", team, *BEST_RESPONSE_FLAGS))
                               for br_seed in BEST_RESPONSE_SEEDS]  # fmt: skip
    yield "best responders (IPPO) against every final team", responders


def suite_ship(ctx):
    """The final checkpoints of reporting seed 1, policy-only (checkpoints.policy_only), as
    checkpoints/<env>/<algo>/shipped-<run>_s1/latest.pt: committed, so a fresh clone evaluates and renders."""
    from memeplex import checkpoints

    sources = [("spread", r.algo, r.leaf) for key in selected(ctx) for r in runs_of(key, MAIN_RUN, [1])]
    sources += [("tag", algo, f"{SELFPLAY_RUN}_s1") for algo in TAG_ALGOS]
    for env, algo, leaf in sources:
        src = ctx.checkpoints / env / algo / leaf / "latest.pt"
        dst = ctx.checkpoints / env / algo / f"shipped-{leaf}" / "latest.pt"
        if not src.exists():
            print(f"# not yet: {ctx.rel(src)}")
        elif not ctx.dry_run:
            checkpoints.save_checkpoint(checkpoints.policy_only(checkpoints.load_checkpoint(src)), dst)
            print(f"shipped {ctx.rel(dst)} ({dst.stat().st_size // 1024} KB)")
    return
    yield


# name -> function(ctx) yielding (stage description, [Run]); `all` runs SUITE_ORDER
SUITE_ORDER = ("tune", "power", "choose", "main", "long", "wallclock", "ablation", "scaling", "tag", "ship")
SUITES: dict[str, Callable] = {name: globals()[f"suite_{name}"] for name in SUITE_ORDER}


# ----------------------------------------------------------------------------
# Execution: one Ray task per run
# ----------------------------------------------------------------------------


def main(argv=None) -> int:
    """Run the --suite (or every suite in order), stage by stage; the exit code."""
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", required=True, choices=[*SUITES, "all"], help="what to run (all: every suite in order)")
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to run on (HOST:PORT, or auto for one started on this machine with `ray start`); "
        "default: a new local Ray with one worker per core, stopped at the end",
    )
    p.add_argument("--dry-run", action="store_true", help="list the commands (and what is finished) without running")
    p.add_argument(
        "--algos",
        nargs="+",
        choices=list(ALGORITHMS),
        default=None,
        help="only these algorithms (spread suites); choose keeps the others' earlier choices",
    )
    p.add_argument("--results-dir", default="results", help="root of the run directories")
    p.add_argument("--checkpoint-dir", default="checkpoints", help="root of the checkpoint directories")
    args = p.parse_args(argv)
    ctx = Context(
        Path(args.results_dir).resolve(),
        Path(args.checkpoint_dir).resolve(),
        args.dry_run,
        args.address,
        algos=tuple(args.algos or ()),
    )
    names = SUITE_ORDER if args.suite == "all" else (args.suite,)
    try:
        for name in names:
            try:
                for stage, batch in SUITES[name](ctx):
                    execute(name, stage, batch, ctx)
            except UsageError as exc:
                if not (ctx.dry_run and args.suite == "all"):
                    raise
                print(f"# {name}: not listed yet: {exc}")
    except UsageError:
        report_failures(ctx)
        raise
    finally:
        if ctx.started_ray:
            import ray

            ray.shutdown()
    return report_failures(ctx)


if __name__ == "__main__":
    sys.exit(run_cli(main))
