"""Run the experiment protocol: every training run of the published results, as Ray tasks.

    python run_experiments.py --suite tune             # tuning runs: seeds 101-103, validation seeds only
    python run_experiments.py --suite choose           # -> results/<env>/tuning/chosen-<budget>.{json,md}
    python run_experiments.py --suite main             # every algorithm x reporting seeds, chosen flags
    python run_experiments.py --suite main --env reference --budget 2M --algos ppo   # a part of a suite
    python run_experiments.py --suite all --dry-run    # list every command, run nothing
    python run_experiments.py --suite main --address auto   # on a running Ray cluster

The cooperative tasks (--env: spread = simple_spread_v3, reference = simple_reference_v3) are run at two
budgets (--budget: 200k and 2M env steps), and every choice is made per task and budget on the tuning seeds
101-103.  The algorithms (memeplex/suites.py, ALGORITHMS): Method I, IPPO, IPPO with shared parameters,
MAPPO (independent actors, a critic of the team's observations), and, at 200k only, MADDPG as a population
of 4 and as a single member.  Suites, in dependency order (`--suite all` runs them in this order):

    tune       tuning seeds 101-103, --final-eval-episodes 0 (the test seeds are never seen), per task and
               budget.  Stage 1: IPPO, IPPO with shared parameters and MAPPO train the same PPO_CANDIDATES
               configurations of the PPO knobs (the scripts' defaults and 7 drawn once from PPO_GRID);
               MADDPG's two forms try the actor's output activations (MADDPG_OUTPUTS; their other settings
               come from the spread sweep, docs/maddpg.md).  Stage 2: Method I's distillation doses (DOSES)
               on IPPO's best configuration.
    power      tuning seeds 101-140 at 200k and 101-110 at 2M, validation episodes only: Method I and IPPO
               paired by seed, whose per-seed differences' spread set how many reporting seeds detect
               0.05 (200k) and 0.10 (2M) with 80% power (compare_results.py --report: power.md).
    choose     reads the tuning runs' summary.json and writes chosen-<budget>.json per task: per algorithm
               the candidate with the best mean `last5_eval_normalised` over the tuning seeds, and every
               candidate's scores (chosen-<budget>.md: the same as tables).
    main       every algorithm with its chosen flags: reporting seeds 1-90 at 200k and 1-10 at 2M
               (MADDPG: 1-20), as the power suite asks.
    dose       2M, reporting seeds 1-10: Method I's dose ladder (DOSE_LADDER) on IPPO's chosen flags, between
               IPPO (no distillation) and IPPO with shared parameters (perfect alignment), from main.
    controls   2M, reporting seeds 1-10: the top of the ladder (CONTROL_DOSE, where distillation moved the
               alignment most on the tuning seeds) toward a shuffled peer and toward a frozen random encoder.
    scaling    spread, 2M, seeds 1-10: Method I and IPPO with 6 agents (3: the main suite's).
    cpu        spread, 200k settings, seeds 1-5: every algorithm for the median CPU time of MADDPG's single
               member's main runs (--max-cpu-time: the process's own CPU time, which other runs on the
               machine cannot shorten).
    tag        simple_tag_v3, seeds 1-5, each algorithm with its spread choice at 200k (tag has no tuning of
               its own): self-play at 200k env steps (Method I, IPPO, MAPPO, MADDPG as a single member),
               and Method I, IPPO and MAPPO for MADDPG's median CPU time; fixed pools and cross-play per
               seed, cross-seed play, and BEST_RESPONSE_SEEDS best responders per final team.
    ship       the final checkpoints of reporting seed 1 (main at 200k, both tasks; tag's self-play).

Each suite is defined once, below, as a list of Run rows (script, env, algo directory, run name, seed,
flags); what the reports also name (the algorithms, run names, seeds, the best-response recipe) is in
memeplex/suites.py, and choosing from the tuning runs in memeplex/tuning.py.  The first result set
(results_spread.md, results_tag.md) was made by this script at commit 04edd0b, with its suite definitions
of then.  Every run is a Ray task (one CPU) that runs the training script as a subprocess, its output
appended to <run directory>/driver.log.  Without --address, `ray.init()` starts a local Ray with one
worker per core and the scripts run in this directory.  --address HOST:PORT connects to a running cluster
(`ray start --head` on one machine, `ray start --address HOST:PORT` on the others) whose nodes share
nothing with this one: Ray ships this repository's code to them, each task gets the files its run needs
and sends the run's files back, and this driver writes them under --results-dir and --checkpoint-dir
(memeplex/experiments.py says what travels; docs/usage.md, "Running on a cluster").  A node that dies
takes its runs with it; Ray starts them again on another node.

Resuming: a run whose summary.json exists (and is not "interrupted") is skipped, after checking that its
config.json has the flags the suite asks for; a run with a checkpoint latest.pt but no finished summary is
continued with --resume.  So rerunning a command picks up where it stopped.  A run that fails is reported
with the tail of its log, the others go on, and the exit code is 1.  Ctrl-C (or SIGTERM) stops every
running script the way its own Ctrl-C does (it saves latest.pt), so the same command resumes them.
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
from memeplex.experiments import Context, Run, execute, read_summary, report_failures, run_evaluation
from memeplex.files import atomic_write
from memeplex.suites import (
    ALGORITHMS,
    BEST_RESPONSE_FLAGS,
    BEST_RESPONSE_SEEDS,
    BUDGET_ALGOS,
    BUDGET_FLAGS,
    BUDGETS,
    CONTROL_DOSE,
    CONTROL_TARGETS,
    CPU_MATCHED_RUN,
    CPU_MATCHED_SEEDS,
    DOSE_LADDER,
    DOSES,
    ENVS,
    MADDPG_REPORT_SEEDS,
    OFF_POLICY,
    POWER_FLAGS,
    POWER_RUNS,
    POWER_SEEDS,
    REPORT_SEEDS,
    SCALE_AGENTS,
    SCALE_BUDGET,
    SCALE_RUN,
    SCALE_SEEDS,
    SELFPLAY_V2_CPU_RUN,
    SELFPLAY_V2_RUN,
    TAG_SEEDS,
    TAG_V2_ALGOS,
    TRAIN_SCRIPTS,
    TUNE_METRIC,
    TUNE_SEEDS,
    chosen_file,
    control_run,
    dose_run,
    main_run,
    tune_run,
)
from memeplex.tuning import best, choice, choice_markdown, draw, scores

MAX_STEPS_UNBOUNDED = 100_000_000  # the --max-cpu-time budget ends these runs, not the steps

# ----------------------------------------------------------------------------
# The tuning candidates (the algorithms themselves: memeplex.suites.ALGORITHMS)
# ----------------------------------------------------------------------------

# The PPO knobs IPPO, IPPO with shared parameters and MAPPO share, among them those an earlier version chose on
# reporting seed 1 (clip, initial log std, width, reward normalisation): every candidate sets all of them.
# width: the encoder's hidden layer and its latent (--hidden-sizes W --latent-dim W).
PPO_DEFAULTS = {"lr": 2e-3, "ent_coef": 0.01, "update_epochs": 10, "num_minibatches": 2, "clip_coef": 0.2,
                "init_log_std": -0.5, "width": 64, "norm_reward": False}  # fmt: skip  # = method_i.Config's
PPO_GRID = {
    "lr": [5e-4, 1e-3, 2e-3],
    "ent_coef": [0.001, 0.01],  # 0 collapses the policy's std by 2M (docs/stability.md)
    "update_epochs": [5, 10],
    "num_minibatches": [2, 4],
    "clip_coef": [0.1, 0.2, 0.3],
    "init_log_std": [-1.0, -0.5, 0.0],
    "width": [64, 128],
    "norm_reward": [False, True],
}
PPO_CANDIDATES, PPO_DRAW_SEED = 8, 0  # the defaults and 7 drawn configurations, the same at every task and budget
PPO_CONFIGS = [PPO_DEFAULTS] + [c for c in draw(PPO_GRID, PPO_CANDIDATES, PPO_DRAW_SEED) if c != PPO_DEFAULTS][
    : PPO_CANDIDATES - 1
]
MADDPG_OUTPUTS = ("Softsign", "Tanh", "Softmax")  # the actor's output activation (Softsign was once chosen on seed 1)


def g(x) -> str:
    """A number as it appears in flags and run names: 0.0003, 10, 0.01."""
    return f"{x:g}" if isinstance(x, float) else str(x)


def ppo_flags(c: dict, critic: bool = False) -> tuple:
    """A PPO configuration as train_*.py flags (critic: MAPPO's critic learns at the actors' rate)."""
    flags = (
        f"--lr {g(c['lr'])} --ent-coef {g(c['ent_coef'])} --update-epochs {c['update_epochs']} "
        f"--num-minibatches {c['num_minibatches']} --clip-coef {g(c['clip_coef'])} "
        f"--init-log-std {g(c['init_log_std'])} --hidden-sizes {c['width']} --latent-dim {c['width']} "
        f"--{'' if c['norm_reward'] else 'no-'}norm-reward"
    ).split()
    return tuple(flags + (["--critic-lr", g(c["lr"])] if critic else []))


def ppo_name(c: dict) -> str:
    """A PPO configuration as a run name."""
    return (
        f"lr{g(c['lr'])}-ent{g(c['ent_coef'])}-ep{c['update_epochs']}-mb{c['num_minibatches']}"
        f"-clip{g(c['clip_coef'])}-std{g(c['init_log_std'])}-w{c['width']}-{'nr' if c['norm_reward'] else 'raw'}"
    )


# ----------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One configuration of one algorithm in the tuning of a task at a budget."""

    algorithm: str
    env: str
    budget: str
    name: str  # run name, describes the configuration
    flags: tuple  # the algorithm's fixed flags, the budget's and the configuration's

    def runs(self) -> list:
        """Its tuning runs: the tuning seeds, and never the test seeds."""
        a = ALGORITHMS[self.algorithm]
        flags = (*self.flags, "--max-steps", str(BUDGETS[self.budget]), "--final-eval-episodes", "0")
        return [Run(a.script, self.env, a.algo_dir, self.name, seed, flags) for seed in TUNE_SEEDS]


def runs_of(algorithm: str, env: str, name: str, seeds, *flags: str) -> list:
    """One run per seed of an algorithm (its run-name suffix appended to name)."""
    a = ALGORITHMS[algorithm]
    return [Run(a.script, env, a.algo_dir, name + a.suffix, seed, tuple(flags)) for seed in seeds]


def selected(ctx, budget: str | None = None) -> tuple:
    """The algorithms this invocation runs (--algos; default all), of those trained at `budget`."""
    keys = tuple(ctx.algos) if ctx is not None and ctx.algos else tuple(ALGORITHMS)
    return tuple(k for k in keys if budget is None or k in BUDGET_ALGOS[budget])


def envs_of(ctx) -> tuple:
    """The tasks of this invocation (--env; default both)."""
    return tuple(ctx.envs) if ctx.envs else ENVS


def budgets_of(ctx) -> tuple:
    """The budgets of this invocation (--budget; default both)."""
    return tuple(ctx.budgets) if ctx.budgets else tuple(BUDGETS)


# ----------------------------------------------------------------------------
# tune
# ----------------------------------------------------------------------------


def stage1_candidates(env: str, budget: str, ctx=None) -> list:
    """IPPO, IPPO with shared parameters and MAPPO on the same PPO configurations; MADDPG's two forms on the
    output activations (200k only). Of the --algos."""
    out = []
    for key in ("ppo", "ppo_shared", "mappo"):
        fixed = (*ALGORITHMS[key].fixed_flags, *BUDGET_FLAGS[budget])
        suffix = ALGORITHMS[key].suffix
        out += [Candidate(key, env, budget, tune_run(budget, ppo_name(c)) + suffix,
                          (*fixed, *ppo_flags(c, critic=key == "mappo"))) for c in PPO_CONFIGS]  # fmt: skip
    for key in OFF_POLICY:
        a = ALGORITHMS[key]
        out += [Candidate(key, env, budget, tune_run(budget, f"out-{o.lower()}") + a.suffix,
                          (*a.fixed_flags, "--output-activation", o)) for o in MADDPG_OUTPUTS]  # fmt: skip
    return [c for c in out if c.algorithm in selected(ctx, budget)]


def dose_candidates(env: str, budget: str, ippo_flags: tuple) -> list:
    """Method I's doses on IPPO's settings (its chosen or best candidate's flags at this task and budget)."""
    return [Candidate("method_i", env, budget, tune_run(budget, f"dose-{d}"), (*ippo_flags, *DOSES[d].split()))
            for d in DOSES]  # fmt: skip


def best_ippo_flags(ctx, env: str, budget: str) -> tuple:
    """The flags of IPPO's best stage-1 candidate (its runs must have finished)."""
    ippo = [c for c in stage1_candidates(env, budget) if c.algorithm == "ppo"]
    return best(scores(ctx, ippo, TUNE_METRIC), TUNE_METRIC)[0].flags


def tuning_candidates(ctx, env: str, budget: str) -> dict:
    """{algorithm: [candidate]} of a task's and budget's tuning (Method I's needs IPPO's finished runs)."""
    out = {}
    for c in stage1_candidates(env, budget, ctx):
        out.setdefault(c.algorithm, []).append(c)
    if "method_i" in selected(ctx, budget):
        out["method_i"] = dose_candidates(env, budget, best_ippo_flags(ctx, env, budget))
    return out


def suite_tune(ctx):
    """Per budget (200k first), for every task: the PPO configurations, then Method I's doses once IPPO's have
    finished, then MADDPG's output activations (200k)."""
    for budget in budgets_of(ctx):
        stage1 = [c for env in envs_of(ctx) for c in stage1_candidates(env, budget, ctx)]
        on_policy = [r for c in stage1 if c.algorithm not in OFF_POLICY for r in c.runs()]
        yield f"{budget}, stage 1: the PPO configurations (IPPO, IPPO shared, MAPPO)", on_policy
        if "method_i" in selected(ctx, budget):
            stage2 = []
            for env in envs_of(ctx):
                try:
                    ippo = best_ippo_flags(ctx, env, budget)
                except UsageError:
                    if not ctx.dry_run:
                        raise
                    print(f"# {env}, {budget}: Method I's doses on IPPO's best configuration are listed once "
                          "IPPO's stage-1 runs have finished")  # fmt: skip
                    continue
                stage2 += [r for c in dose_candidates(env, budget, ippo) for r in c.runs()]
            yield f"{budget}, stage 2: Method I's distillation doses on IPPO's best configuration", stage2
        off_policy = [r for c in stage1 if c.algorithm in OFF_POLICY for r in c.runs()]
        if off_policy:
            yield f"{budget}, stage 3: MADDPG's output activations", off_policy


# ----------------------------------------------------------------------------
# choose
# ----------------------------------------------------------------------------


def choose(ctx, env: str, budget: str) -> dict:
    """A task's and budget's choice: per algorithm (of --algos; the others keep their earlier choice) the
    candidate with the best mean TUNE_METRIC over the tuning seeds."""
    out = {"env": env, "budget": budget, "metric": TUNE_METRIC, "tuning_seeds": list(TUNE_SEEDS),
           "tuning_steps": BUDGETS[budget], "algorithms": {}}  # fmt: skip
    path = chosen_file(ctx.results, env, budget)
    if path.exists():
        out["algorithms"] = json.loads(path.read_text())["algorithms"]
    out["algorithms"].update(choice(ctx, tuning_candidates(ctx, env, budget), TUNE_METRIC, ALGORITHMS))
    out["algorithms"] = {k: out["algorithms"][k] for k in ALGORITHMS if k in out["algorithms"]}  # table order
    return out


def suite_choose(ctx):
    """Writes chosen-<budget>.json and .md per task from the finished tuning runs; no runs of its own."""
    for env in envs_of(ctx):
        for budget in budgets_of(ctx):
            chosen, path = choose(ctx, env, budget), chosen_file(ctx.results, env, budget)
            md = choice_markdown(chosen, ALGORITHMS)
            print(md)
            if ctx.dry_run:
                print(f"# --dry-run: not writing {ctx.rel(path)}")
            else:
                atomic_write(path, json.dumps(chosen, indent=2) + "\n")
                atomic_write(path.with_suffix(".md"), md)
                print(f"wrote {ctx.rel(path)} and {ctx.rel(path.with_suffix('.md'))}")
    return
    yield


def load_chosen(ctx, env: str, budget: str, needed) -> dict:
    """{algorithm: chosen flags} of a task and budget, for the algorithms `needed`."""
    path = chosen_file(ctx.results, env, budget)
    if not path.exists():
        raise UsageError(f"no {ctx.rel(path)}: run `python run_experiments.py --suite tune`, then `--suite choose`")
    algos = json.loads(path.read_text())["algorithms"]
    missing = [k for k in needed if k not in algos]
    if missing:
        raise UsageError(f"{ctx.rel(path)} has no choice for {missing[0]}; rerun `--suite choose`")
    return {k: tuple(algos[k]["flags"]) for k in needed}


# ----------------------------------------------------------------------------
# main, dose, controls, scaling, cpu
# ----------------------------------------------------------------------------


def report_seeds(algorithm: str, budget: str) -> tuple:
    """The reporting seeds of an algorithm's main runs at a budget."""
    return MADDPG_REPORT_SEEDS if algorithm in OFF_POLICY else REPORT_SEEDS[budget]


def by_seed(runs: list) -> list:
    """Seed by seed (every task and algorithm of seed 1 first): a suite stopped part-way leaves whole seeds, which
    pair."""
    return sorted(runs, key=lambda r: r.seed)


def suite_main(ctx):
    """Every algorithm with its chosen flags, per task and budget, on its reporting seeds."""
    for budget in budgets_of(ctx):
        runs = []
        for env in envs_of(ctx):
            chosen = load_chosen(ctx, env, budget, selected(ctx, budget))
            for key in selected(ctx, budget):
                runs += runs_of(key, env, main_run(budget), report_seeds(key, budget),
                                *chosen[key], "--max-steps", str(BUDGETS[budget]))  # fmt: skip
        runs = [dataclasses.replace(r, keep=SHIP_KEEP) if r.seed == 1 else r for r in runs]  # the ship suite's
        yield f"every algorithm, chosen flags, {budget} env steps", by_seed(runs)


def suite_dose(ctx):
    """2M, reporting seeds: Method I's DOSE_LADDER on IPPO's chosen flags (its ends are main's IPPO runs, no
    distillation, and IPPO with shared parameters, perfect alignment)."""
    runs = []
    for env in envs_of(ctx):
        ippo = load_chosen(ctx, env, "2M", ["ppo"])["ppo"]
        for dose in DOSE_LADDER:
            runs += runs_of("method_i", env, dose_run(dose), REPORT_SEEDS["2M"],
                            *ippo, *DOSES[dose].split(), "--max-steps", str(BUDGETS["2M"]))  # fmt: skip
    yield "Method I's dose ladder, 2M env steps", by_seed(runs)


def suite_controls(ctx):
    """2M, reporting seeds: CONTROL_DOSE toward a shuffled peer and toward a frozen random encoder."""
    runs = []
    for env in envs_of(ctx):
        ippo = load_chosen(ctx, env, "2M", ["ppo"])["ppo"]
        for target in CONTROL_TARGETS:
            runs += runs_of("method_i", env, control_run(target), REPORT_SEEDS["2M"], *ippo,
                            *DOSES[CONTROL_DOSE].split(), "--distill-target", target,
                            "--max-steps", str(BUDGETS["2M"]))  # fmt: skip
    yield f"the controls at dose {CONTROL_DOSE}, 2M env steps", by_seed(runs)


def suite_scaling(ctx):
    """Spread at SCALE_BUDGET, SCALE_SEEDS: Method I and IPPO with SCALE_AGENTS agents and their chosen flags."""
    chosen = load_chosen(ctx, "spread", SCALE_BUDGET, ["method_i", "ppo"])
    runs = []
    for key in ("method_i", "ppo"):
        runs += runs_of(key, "spread", SCALE_RUN, SCALE_SEEDS, *chosen[key],
                        "--num-agents", str(SCALE_AGENTS), "--max-steps", str(BUDGETS[SCALE_BUDGET]))  # fmt: skip
    yield f"Method I and IPPO with {SCALE_AGENTS} agents", by_seed(runs)


def median_cpu_time(ctx, runs: list, suite: str) -> float:
    """The median CPU time (summary.json `cpu_time`, to 0.1 s) of finished runs; UsageError naming a missing one."""
    missing = [r for r in runs if read_summary(r.result_dir(ctx)) is None]
    if missing:
        raise UsageError(
            f"--suite {suite} needs {ctx.rel(missing[0].result_dir(ctx))}, which has not finished "
            f"({len(missing)} of {len(runs)} missing)"
        )
    return round(statistics.median(read_summary(r.result_dir(ctx))["cpu_time"] for r in runs), 1)


def suite_cpu(ctx):
    """Spread, 200k settings, CPU_MATCHED_SEEDS: every algorithm for the median CPU time of MADDPG's single member's
    main runs."""
    budget = median_cpu_time(ctx, runs_of("maddpg_pop1", "spread", main_run("200k"), MADDPG_REPORT_SEEDS), "cpu")
    chosen = load_chosen(ctx, "spread", "200k", selected(ctx, "200k"))
    runs = []
    for key in selected(ctx, "200k"):
        runs += runs_of(key, "spread", CPU_MATCHED_RUN, CPU_MATCHED_SEEDS, *chosen[key],
                        "--max-steps", str(MAX_STEPS_UNBOUNDED), "--max-cpu-time", g(budget))  # fmt: skip
    yield f"every algorithm, --max-cpu-time {g(budget)} s", runs


# ----------------------------------------------------------------------------
# tag, ship
# ----------------------------------------------------------------------------

SHIP_KEEP = ("latest.pt",)  # on a cluster, the checkpoints of the runs suite_ship copies come home
POOL_KEEP = ("latest.pt", "step_*.pt")  # and those of tag's self-play: pools, cross-play, best responders


def tag_runs(name: str, algos, seeds, chosen: dict, *flags: str) -> list:
    """One tag run per algorithm and seed, with its `chosen` flags (tag has no tuning of its own: each algorithm's
    spread choice at 200k, MADDPG's single member's among them) and `flags` (on a cluster, their checkpoints come
    home: POOL_KEEP)."""
    return [Run(ALGORITHMS[a].script, "tag", ALGORITHMS[a].algo_dir, name, seed, (*chosen.get(a, ()), *flags),
                POOL_KEEP) for a in algos for seed in seeds]  # fmt: skip


def suite_tag(ctx):
    """simple_tag_v3, TAG_SEEDS: self-play at 200k env steps and at MADDPG's median CPU time, fixed pools and
    cross-play per seed, cross-seed play, and BEST_RESPONSE_SEEDS best responders (IPPO, BEST_RESPONSE_FLAGS)
    trained against each final team."""
    chosen = load_chosen(ctx, "spread", "200k", TAG_V2_ALGOS)
    steps = ("--max-steps", str(BUDGETS["200k"]))
    yield "tag self-play, 200k env steps", tag_runs(SELFPLAY_V2_RUN, TAG_V2_ALGOS, TAG_SEEDS, chosen, *steps)
    budget = median_cpu_time(ctx, tag_runs(SELFPLAY_V2_RUN, ["maddpg_pop1"], TAG_SEEDS, chosen, *steps), "tag")
    others = [a for a in TAG_V2_ALGOS if a not in OFF_POLICY]
    yield (f"tag self-play for MADDPG's median CPU time ({g(budget)} s)",
           tag_runs(SELFPLAY_V2_CPU_RUN, others, TAG_SEEDS, chosen, "--max-steps", str(MAX_STEPS_UNBOUNDED),
                    "--max-cpu-time", g(budget)))  # fmt: skip
    dirs = [ALGORITHMS[a].algo_dir for a in TAG_V2_ALGOS]
    for seed in TAG_SEEDS:
        for pool_set in ("v2", "v2-cpu"):
            for script in ("evaluate_fixed_pool.py", "cross_play_matrix.py"):
                run_evaluation(ctx, script, "--pool-set", pool_set, "--algos", *dirs, "--seed", str(seed))
    run_evaluation(ctx, "cross_seed_play.py", "--algos", *dirs, "--run-name", SELFPLAY_V2_RUN,
                   "--seeds", *map(str, TAG_SEEDS))  # fmt: skip
    responders = []
    for algo in dirs:
        for seed in TAG_SEEDS:
            frozen = ctx.rel(ctx.checkpoints / "tag" / algo / f"{SELFPLAY_V2_RUN}_s{seed}" / "latest.pt")
            for team in ("predator", "prey"):
                responders += [Run(TRAIN_SCRIPTS["ppo"], "tag", "ppo", f"exploit-v2-{algo}-s{seed}-{team}", br_seed,
                                   ("--opponent", frozen, "--team", team, *BEST_RESPONSE_FLAGS))
                               for br_seed in BEST_RESPONSE_SEEDS]  # fmt: skip
    yield "best responders (IPPO) against every final team", responders


def suite_ship(ctx):
    """The final checkpoints of reporting seed 1, policy-only (checkpoints.policy_only), as
    checkpoints/<env>/<algo>/shipped-<run>_s1/latest.pt: committed, so a fresh clone evaluates and renders."""
    from memeplex import checkpoints

    sources = [(r.env, r.algo, r.leaf) for env in ENVS for key in selected(ctx, "200k")
               for r in runs_of(key, env, main_run("200k"), [1])]  # fmt: skip
    sources += [("tag", r.algo, r.leaf) for r in tag_runs(SELFPLAY_V2_RUN, TAG_V2_ALGOS, [1], {})]
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


# ----------------------------------------------------------------------------
# power
# ----------------------------------------------------------------------------


def suite_power(ctx):
    """Tuning seeds (POWER_SEEDS): Method I and IPPO with the same seed (same initial weights and environments) at
    200k and 2M env steps on spread, validation episodes only, so that the number of reporting seeds follows from
    the spread of their paired differences (memeplex.reports.power)."""
    for steps, seeds in POWER_SEEDS.items():
        runs = []
        for key in ("method_i", "ppo"):
            runs += runs_of(key, "spread", POWER_RUNS[steps], seeds, *POWER_FLAGS[steps],
                            "--max-steps", str(steps), "--final-eval-episodes", "0")  # fmt: skip
        yield f"Method I and IPPO paired by seed, {steps:,} env steps, seeds {seeds[0]}-{seeds[-1]}", runs


# name -> function(ctx) yielding (stage description, [Run]); `all` runs SUITE_ORDER
SUITE_ORDER = ("tune", "power", "choose", "main", "dose", "controls", "scaling", "cpu", "tag", "ship")
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
        help="only these algorithms (cooperative suites); choose keeps the others' earlier choices",
    )
    p.add_argument("--env", nargs="+", choices=ENVS, default=None, help="only these tasks (cooperative suites)")
    p.add_argument("--budget", nargs="+", choices=list(BUDGETS), default=None, help="only these budgets")
    p.add_argument("--results-dir", default="results", help="root of the run directories")
    p.add_argument("--checkpoint-dir", default="checkpoints", help="root of the checkpoint directories")
    args = p.parse_args(argv)
    ctx = Context(
        Path(args.results_dir).resolve(),
        Path(args.checkpoint_dir).resolve(),
        args.dry_run,
        args.address,
        algos=tuple(args.algos or ()),
        envs=tuple(args.env or ()),
        budgets=tuple(args.budget or ()),
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
