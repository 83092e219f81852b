"""Fixed-pool Elo on simple_tag_v3: every algorithm's final predators and prey
rated against one shared, frozen opponent pool.

    python evaluate_fixed_pool.py --pool-set step        # the 200k-step self-play runs (run name "selfplay")
    python evaluate_fixed_pool.py --pool-set wallclock   # Method I/IPPO given MADDPG's wall time ("selfplay-wallclock")
    python evaluate_fixed_pool.py --run-name my-selfplay # your own runs of that name (the published checkpoints
                                                         # are not in the repository)
    python evaluate_fixed_pool.py --algos maddpg --run-name a b --split validation
                                                         # two settings of one algorithm, on the validation seeds

Pool = the random team + the last 5 step checkpoints of each algorithm's run in
the pool set; every pool member is rated 1000 and stays there. Each
algorithm's final checkpoint (latest.pt) plays --episodes episodes with its
predators against every pool member's prey, and with its prey against every
pool member's predators, on the held-out test seeds (--split validation: the
validation seeds, for choosing between settings). With several --run-name, each
algorithm's run of each name is a contestant (<algo>-<run name>), its
snapshots in the pool. A predator win is an
episode with at least one predator-prey contact. Its fixed-pool Elo is the
rating at which the Elo-expected score against the pool equals its actual
score (order-free); the classic game-by-game Elo update (from 1000, K=32, games
interleaved round-robin) is reported next to it.
Exploitability proxy = max(0, 0.5 - its lowest win-rate against a pool member).

Writes results/tag/fixed_pool_<pool-set>_s<seed>.md and .json (fixed_pool_run-<run-name>_s<seed> with
--run-name, several names joined by +, which the published report leaves out; _validation after the pool set
or run names with --split validation). Runs that are missing
are listed (with the command that makes them) and the others are still rated.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from memeplex import checkpoints, cli, competitive, pools, protocol
from memeplex.files import atomic_write, write_json

TEAMS = ("predator", "prey")


def rate_team(name, team, candidate, pool, seeds) -> dict:
    """Play `candidate`'s team against every pool member's other team."""
    results = []
    for label, opponent in pool:
        if team == "predator":
            wins = competitive.play(name, candidate, opponent, seeds)["wins"].astype(float)
        else:
            wins = 1.0 - competitive.play(name, opponent, candidate, seeds)["wins"].astype(float)
        results.append((label, wins))
    rates = {label: float(w.mean()) for label, w in results}
    all_games = np.concatenate([w for _, w in results])
    mean, ci = competitive.rate_ci(all_games)
    games = competitive.interleave([(competitive.ELO_ANCHOR, w) for _, w in results])
    return {
        "elo": competitive.performance_rating(games),
        "elo_k32": competitive.elo_rate(competitive.ELO_ANCHOR, games),
        "win_rate_vs_pool": mean,
        "win_rate_vs_pool_ci": ci,
        "min_win_rate": min(rates.values()),
        "exploitability": competitive.exploitability(list(rates.values())),
        "win_rates": rates,
    }


def main(argv=None) -> int:
    opts, found_runs, missing = pools.pool_set_cli(__doc__, argv)
    t0 = time.perf_counter()
    pool = [("random", protocol.RandomPolicy("tag"))]
    for snapshots in checkpoints.load_snapshots(found_runs).values():
        pool += snapshots
    seeds = protocol.eval_seeds(opts.split, opts.episodes)
    table = {}
    for algo, paths in found_runs.items():
        final = paths[-1].parent / "latest.pt"
        final = final if final.exists() else paths[-1]
        policy, state = checkpoints.load_policy(final, "tag")
        table[algo] = {
            "checkpoint": str(final),
            "env_steps": state["progress"]["global_step"],
            **{team: rate_team("tag", team, policy, pool, seeds) for team in TEAMS},
        }
        print(
            f"{algo}: predator Elo {table[algo]['predator']['elo']:.0f}, prey Elo {table[algo]['prey']['elo']:.0f}",
            file=sys.stderr,
        )
    out = {
        "pool_set": opts.label,
        "run_name": opts.run_name,
        "seed": opts.seed,
        "split": opts.split,
        "episodes_per_pairing": opts.episodes,
        "pool": [label for label, _ in pool],
        "missing": missing,
        "results": table,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    stem = Path(opts.results_dir) / "tag" / f"fixed_pool_{opts.label}_s{opts.seed}"
    write_json(stem.with_suffix(".json"), out)
    atomic_write(stem.with_suffix(".md"), markdown(out).encode())
    print(markdown(out))
    print(f"written: {stem}.md, {stem}.json")
    return 0


def markdown(out: dict) -> str:
    algos = list(out["results"])
    res = out["results"]
    line = lambda cells: "| " + " | ".join(cells) + " |\n"
    md = (
        f"Fixed-pool Elo, pool set `{out['pool_set']}` (seed {out['seed']}): pool = {', '.join(out['pool'])}, "
        f"all rated 1000. {out['episodes_per_pairing']} {out.get('split', 'test')} episodes per pairing "
        f"({out['episodes_per_pairing'] * len(out['pool'])} per team).\n\n"
    )
    md += line(["Metric"] + algos) + line(["---"] * (len(algos) + 1))
    md += line(["Env steps"] + [f"{res[a]['env_steps']:,}" for a in algos])
    for team in TEAMS:
        md += line([f"{team.capitalize()} Elo (fixed pool)"] + [f"{res[a][team]['elo']:.1f}" for a in algos])
        md += line([f"{team.capitalize()} Elo, K=32 game by game"] + [f"{res[a][team]['elo_k32']:.1f}" for a in algos])
        md += line(
            [f"{team.capitalize()} win-rate vs pool (95% CI)"]
            + [f"{res[a][team]['win_rate_vs_pool']:.3f} ± {res[a][team]['win_rate_vs_pool_ci']:.3f}" for a in algos]
        )
        md += line([f"{team.capitalize()} exploitability"] + [f"{res[a][team]['exploitability']:.2f}" for a in algos])
    md += (
        "\nElo (fixed pool): the rating at which the Elo-expected score against the pool equals the actual "
        "score (maximum likelihood; order-free). K=32 game by game: the classic Elo update from 1000 over the "
        "same games, "
        "interleaved round-robin; it is noisy (the games of one round share a start state, so wins and losses "
        "come in runs) and can end 250 points from the first. Exploitability: max(0, 0.5 - lowest "
        "win-rate against one pool member, random included).\n"
    )
    if out["missing"]:
        md += "\nMissing runs:\n" + "".join(f"- {m}\n" for m in out["missing"])
    return md


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
