"""What the result suites (run_experiments.py) and their reports (memeplex.reports) both name: the
algorithms of the spread suites, the training script and table labels of each algorithm directory,
the run names of each suite, where the tuning choice is written, and the best-response recipe.
Defined here once, so a suite and its table cannot drift apart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

SCRIPTS = {"method_i": "train_method_i.py", "ppo": "train_ppo.py", "maddpg": "train_maddpg.py"}  # per algo directory
ALGO_LABELS = {
    "method_i": "Method I (LA-IPPO)",
    "ppo": "IPPO",
    "maddpg": "MADDPG",
    "mappo": "MAPPO",
}  # comparison, by-run
TAG_LABELS = {"method_i": "Method I", "ppo": "IPPO", "maddpg": "MADDPG", "mappo": "MAPPO"}  # tag tables
# Every algorithm directory's training script: the suites' algorithms (SCRIPTS, whose runs the published reports
# read) and MAPPO, which compare_results.py and the tag tools take as a fourth (its suites are still to come).
TRAIN_SCRIPTS = {**SCRIPTS, "mappo": "train_mappo.py"}

# Run names (results/<env>/<algo>/<name>_s<seed>/) of the suites, as the reports find them
MAIN_RUN = "main-tuned"  # spread: the chosen flags at 200k env steps, reporting seeds 1-10
LONG_RUN = "long-tuned"  # spread: 2M env steps
WALLCLOCK_RUN = "wallclock-tuned"  # spread: MADDPG's median wall time
ABLATION_PREFIX = "abl-"  # spread: abl-<setting>
SCALING_PREFIX = "scale-n"  # spread: scale-n<agents>
SELFPLAY_RUN = "selfplay"  # tag: self-play at 200k env steps
SELFPLAY_WALLCLOCK_RUN = "selfplay-wallclock"  # tag: self-play for MADDPG's median wall time

# The power suite (results v2's seed counts): Method I and IPPO paired by seed on tuning seeds, per budget; the
# reporting seeds must detect POWER_EFFECTS[budget] with 80% power (memeplex.stats.seeds_for_power)
POWER_RUNS = {200_000: "power-200k", 2_000_000: "power-2M"}  # spread: the run name per budget
POWER_SEEDS = {200_000: tuple(range(101, 141)), 2_000_000: tuple(range(101, 111))}  # tuning seeds only
POWER_EFFECTS = {200_000: 0.05, 2_000_000: 0.10}  # normalised score
POWER_FLAGS = {  # the learners' settings at each budget: 200k the scripts' defaults, 2M the stability study's choice
    200_000: (),  # (docs/stability.md: MAPPO's batch of 128 envs x 25 steps keeps PPO stable to 2M)
    2_000_000: ("--num-envs", "128", "--rollout-length", "25"),
}

# The best-response recipe: train_ppo.py flags of an IPPO team trained against a frozen tag team (with
# --opponent, --team).  Chosen on tuning seeds against a frozen stationary prey, whose exploit it must find
# in 9 of 10 seeds at both kernel levels (benchmarks/best_response.py, docs/best_response.md); the test
# tests/test_competitive.py trains with it too.
BEST_RESPONSE_FLAGS = ("--num-envs", "16", "--max-steps", "256000")
BEST_RESPONSE_SEEDS = (1, 2, 3)  # responders per frozen team (their own seeds): exploitability is their maximum


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """One algorithm of the cooperative suites: how it is trained and where its runs go."""

    key: str  # its entry in the chosen-*.json files
    label: str  # its name in tables
    algo_dir: str  # results/<env>/<algo_dir>/
    suffix: str = ""  # run-name suffix: algorithms that share a directory (IPPO's two forms, MADDPG's two)
    fixed: str = ""  # flags of every run of it

    @property
    def script(self) -> str:
        return TRAIN_SCRIPTS[self.algo_dir]

    @property
    def fixed_flags(self) -> tuple:
        return tuple(self.fixed.split())


# MAPPO as the centralised-critic variant of IPPO: independent actors (the spec's form) with IPPO's PPO settings,
# and one critic of the team's observations (docs/stability.md: `mappo-plain-g95`, 0.81 at 2M on tuning seeds,
# where the MAPPO authors' MPE settings, train_mappo.py's defaults, reached 0.39); its critic's learning rate is
# the tuned actors' (the tuning grid sets both)
MAPPO_FIXED = (
    "--critic-input team --no-share-params --no-value-norm --no-layer-norm --huber-delta 0 --no-clip-value-loss "
    "--vf-coef 0.5 --max-grad-norm 0.5 --gamma 0.95 --anneal-lr"
)

# fmt: off
ALGORITHMS = {a.key: a for a in [  # in table order
    #         key            label                      results    suffix    fixed flags (the widest line: E501)
    Algorithm("method_i",    "Method I (LA-IPPO)",      "method_i"),
    Algorithm("ppo",         "IPPO",                    "ppo"),
    Algorithm("ppo_shared",  "IPPO, shared parameters", "ppo",     "-shared", "--share-params"),
    Algorithm("mappo",       "MAPPO",                   "mappo",   "",        MAPPO_FIXED),
    Algorithm("maddpg_pop4", "MADDPG, population 4",    "maddpg",  "-pop4",   "--population-size 4 --expl-noise 0.1"),
    Algorithm("maddpg_pop1", "MADDPG, single member",   "maddpg",  "-pop1",   "--population-size 1 --tournament-size 1"),  # noqa: E501
]}
# fmt: on
V1_ALGORITHMS = ("method_i", "ppo", "maddpg_pop4", "maddpg_pop1")  # the first result set's (results_spread.md)
PPO_FAMILY = ("method_i", "ppo", "ppo_shared", "mappo")  # on-policy: every budget, REPORT_SEEDS
OFF_POLICY = ("maddpg_pop4", "maddpg_pop1")  # 200k only (about 3 min a run), MADDPG_REPORT_SEEDS

# ----------------------------------------------------------------------------
# Results v2: the cooperative tasks at two budgets, each with its own tuning choice
# ----------------------------------------------------------------------------

ENVS = ("spread", "reference")  # the cooperative suites' tasks (tag: run_experiments.py --suite tag)
BUDGETS = {"200k": 200_000, "2M": 2_000_000}  # env steps
# the learners' batch at each budget, part of every PPO-family candidate: 200k the earlier tuning's 8 envs x 128
# steps (seeds 101-103), 2M the stability study's 128 x 25 (docs/stability.md: stable to 2M on seeds 101-103)
BUDGET_FLAGS = {"200k": ("--num-envs", "8", "--rollout-length", "128"),
                "2M": ("--num-envs", "128", "--rollout-length", "25")}  # fmt: skip
BUDGET_ALGOS = {"200k": PPO_FAMILY + OFF_POLICY, "2M": PPO_FAMILY}
TUNE_SEEDS = (101, 102, 103)  # every choice is made on these (validation episodes only)
# reporting seeds, from the power suite (power.md): at 200k the paired differences' sd (0.165) needs 88 seeds to
# detect 0.05 with 80% power; at 2M (sd 0.043) 10 seeds detect 0.043, better than the 0.10 asked for
REPORT_SEEDS = {"200k": tuple(range(1, 91)), "2M": tuple(range(1, 11))}
MADDPG_REPORT_SEEDS = tuple(range(1, 21))  # about 3 min a run; its minimal detectable effect is reported with it
TUNE_METRIC = "last5_eval_normalised"  # validation seeds: mean of the last 5 periodic evaluations


def tune_run(budget: str, config: str) -> str:
    """A tuning run's name: t200k-<configuration>."""
    return f"t{budget}-{config}"


def main_run(budget: str) -> str:
    """The main suite's run name at a budget (plus the algorithm's suffix)."""
    return f"main-{budget}"


def dose_run(dose: str) -> str:
    """The dose-response suite's run name (2M): dose-<dose>."""
    return f"dose-{dose}"


def control_run(target: str) -> str:
    """The controls' run name (2M): control-<distill target>."""
    return f"control-{target}"


# Method I's distillation doses (its tuning candidates, on IPPO's chosen settings; docs/distillation_dose.md), each
# with every distillation setting explicit, so a later change of train_method_i.py's defaults cannot change a dose.
# Ring topology unless named; "unclipped": a step after every PPO update (--distill-interval 1) without a gradient
# clip, through PPO's Adam, where the weight sets the step (with its own Adam, the steps per event do).


def dose(topology: str, interval: int, clip: float, weight: float, steps: int = 1, adam: str = "shared") -> str:
    """A dose as train_method_i.py flags (clip -1: PPO's gradient clip; 0: none)."""
    return (f"--topology {topology} --distill-interval {interval} --distill-max-grad-norm {clip:g} "
            f"--distill-weight {weight:g} --distill-steps {steps} --distill-optimizer {adam}")  # fmt: skip


DOSES = {
    "k10-w0.1-clipped": dose("ring", 10, -1, 0.1),  # train_method_i.py's default before results v2
    "w0.01": dose("ring", 1, 0, 0.01),
    "w0.1": dose("ring", 1, 0, 0.1),
    "w1": dose("ring", 1, 0, 1),
    "w1-s3": dose("ring", 1, 0, 1, 3),
    "w1-s10": dose("ring", 1, 0, 1, 10),
    "own-w1-s3": dose("ring", 1, 0, 1, 3, "own"),
    "a2a-w0.1": dose("all-to-all", 1, 0, 0.1),
}
DOSE_LADDER = ("w0.01", "w0.1", "w1", "w1-s3", "w1-s10")  # rising alignment on the tuning seeds (200k)
CONTROL_DOSE = "w1-s10"  # the ladder's top: the test CKA it reached on the tuning seeds was the highest (0.97)
CONTROL_TARGETS = ("shuffled", "random-encoder")

SCALE_AGENTS = 6  # team size N = 6 beside the main suite's 3: spread, Method I and IPPO
SCALE_BUDGET = "2M"  # where the learners converge and 10 seeds detect a small difference (power.md)
SCALE_RUN = "n6-2M"
SCALE_SEEDS = REPORT_SEEDS[SCALE_BUDGET]
CPU_MATCHED_RUN = "cpu-matched"  # every algorithm for MADDPG's (single member) median CPU time
CPU_MATCHED_SEEDS = tuple(range(1, 6))
SELFPLAY_V2_RUN = "selfplay-v2"  # tag: every algorithm, 200k env steps
SELFPLAY_V2_CPU_RUN = "selfplay-v2-cpu"  # tag: Method I, IPPO, MAPPO for MADDPG's median CPU time
TAG_SEEDS = tuple(range(1, 6))
TAG_V2_ALGOS = ("method_i", "ppo", "mappo", "maddpg_pop1")  # tag's MADDPG: the single member (docs/maddpg.md)


def chosen_file(results: Path, env: str, budget: str) -> Path:
    """Where `run_experiments.py --suite choose` writes an env's and budget's choice (and the .md beside it)."""
    return Path(results) / env / "tuning" / f"chosen-{budget}.json"


def chosen_path(results: Path) -> Path:
    """The first result set's tuning choice (spread, 200k; made by run_experiments.py at commit 04edd0b)."""
    return Path(results) / "spread" / "tuning" / "chosen.json"
