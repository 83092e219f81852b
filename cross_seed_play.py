"""Cross-seed play on simple_tag_v3: every algorithm-seed's final predators against every
algorithm-seed's final prey.

    python cross_seed_play.py                                  # method_i, ppo, maddpg; run 'selfplay'; seeds 1-5
    python cross_seed_play.py --run-name main --seeds 1 2 3 --episodes 100
    python cross_seed_play.py --algos method_i ppo mappo --run-name NAME   # MAPPO among them

Each team is the final checkpoint (latest.pt) of <algo>/<run-name>_s<seed>. Every (predator team,
prey team) pairing plays the same --episodes held-out test start states, so a game is identified
by (predator algorithm, predator seed, prey algorithm, prey seed, start state). The games are
written, one 0/1 per game, to results/tag/cross_seed_<run-name>.json; compare_results.py --report
turns them into the heatmap, Bradley-Terry ratings with cluster-bootstrap intervals (over seeds and
start states, not over games as if independent) and the intransitivity check (reports.wins_array reads the file back).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from memeplex import checkpoints, cli, competitive, errors, protocol
from memeplex.files import check_writable, write_json

ALGOS = ("method_i", "ppo", "maddpg", "mappo")
DEFAULT_ALGOS = ("method_i", "ppo", "maddpg")  # the published runs' (no MAPPO runs among them yet)


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", choices=ALGOS, default=list(DEFAULT_ALGOS), help="algorithms to include")
    p.add_argument("--run-name", default="selfplay", help="the runs <algo>/<run-name>_s<seed> to read")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5], help="reporting seeds of the runs")
    p.add_argument("--episodes", type=cli.positive(int), default=100, help="held-out test start states per pairing")
    p.add_argument("--checkpoint-dir", default="checkpoints", help="root of the runs' checkpoints")
    p.add_argument("--results-dir", default="results", help="the games go to <dir>/tag/cross_seed_<run-name>.json")
    args = p.parse_args(argv)
    check_writable(Path(args.results_dir) / "tag", "--results-dir")
    torch.set_num_threads(1)
    paths = {(a, s): Path(args.checkpoint_dir) / "tag" / a / f"{args.run_name}_s{s}" / "latest.pt"
             for a in args.algos for s in args.seeds}  # fmt: skip
    missing = [str(path) for path in paths.values() if not path.exists()]
    if missing:
        raise errors.UsageError(f"{len(missing)} final checkpoints missing, e.g. {missing[0]} (train the runs first)")
    t0 = time.perf_counter()
    teams = {key: checkpoints.load_policy(path, "tag")[0] for key, path in paths.items()}
    seeds = protocol.eval_seeds("test", args.episodes)
    keys = list(teams)
    games = lambda pk, qk: "".join(
        "1" if w else "0" for w in competitive.play("tag", teams[pk], teams[qk], seeds)["wins"]
    )
    wins = [[games(pk, qk) for qk in keys] for pk in keys]
    out = {"run_name": args.run_name, "algos": args.algos, "seeds": args.seeds, "episodes": args.episodes,
           "start_states": "test", "teams": [f"{a}@s{s}" for a, s in keys],
           "wins": wins, "seconds": round(time.perf_counter() - t0, 1),
           "note": "wins[i][j][k]: team i's predators vs team j's prey, start state k (1 = predator win)"}  # fmt: skip
    path = Path(args.results_dir) / "tag" / f"cross_seed_{args.run_name}.json"
    write_json(path, out)
    rate = np.mean([[c.count("1") / len(c) for c in row] for row in wins])
    print(f"{len(keys)} x {len(keys)} teams, {args.episodes} games per pairing, mean predator win-rate {rate:.3f}")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
