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
    """One algorithm of the spread suites: how it is trained and where its runs go."""

    key: str  # its entry in chosen.json
    label: str  # its name in tables
    algo_dir: str  # results/<env>/<algo_dir>/
    suffix: str = ""  # run-name suffix: the two MADDPG variants share results/spread/maddpg/
    fixed: str = ""  # flags of every run of it

    @property
    def script(self) -> str:
        return SCRIPTS[self.algo_dir]

    @property
    def fixed_flags(self) -> tuple:
        return tuple(self.fixed.split())


# fmt: off
ALGORITHMS = {a.key: a for a in [  # in table order
    #          key            label                    results     suffix   fixed flags
    Algorithm("method_i",    "Method I (LA-IPPO)",    "method_i"),
    Algorithm("ppo",         "IPPO",                  "ppo"),
    Algorithm("maddpg_pop4", "MADDPG, population 4",  "maddpg",   "-pop4", "--population-size 4"),
    Algorithm("maddpg_pop1", "MADDPG, single member", "maddpg",   "-pop1", "--population-size 1 --tournament-size 1"),
]}
# fmt: on


def chosen_path(results: Path) -> Path:
    """Where `run_experiments.py --suite choose` writes the tuning choice (and chosen.md beside it)."""
    return Path(results) / "spread" / "tuning" / "chosen.json"
