"""Cross-play on simple_tag_v3: each algorithm's predator snapshots against
every other algorithm's prey snapshots.

    python cross_play_matrix.py --pool-set step        # the 200k-step self-play runs (run name "selfplay")
    python cross_play_matrix.py --pool-set wallclock   # Method I/IPPO runs given MADDPG's wall time
    python cross_play_matrix.py --run-name my-selfplay # your own runs of that name

For every ordered pair (A, B) of algorithms with runs in the pool set, a matrix
of predator win-rates: rows = A's last 5 step checkpoints' predators, columns
= B's last 5 step checkpoints' prey, --episodes test episodes per cell. A
predator win is an episode with at least one predator-prey contact.

Writes results/tag/cross_play_<pool-set>_s<seed>/ (cross_play_run-<run-name>_s<seed>/ with --run-name, several
names joined by +; _validation after them with --split validation):
<A>_vs_<B>.csv and .png (A's predators vs B's prey) and summary.md with each matrix's mean.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

from memeplex import checkpoints, cli, competitive, errors, pools, protocol
from memeplex.evaluators import write_matrix
from memeplex.files import atomic_write


def main(argv=None) -> int:
    opts, found_runs, missing = pools.pool_set_cli(__doc__, argv)
    if len(found_runs) < 2:
        raise errors.UsageError(f"cross-play needs runs of at least two algorithms; found only {', '.join(found_runs)}")
    snapshots = checkpoints.load_snapshots(found_runs)
    seeds = protocol.eval_seeds(opts.split, opts.episodes)
    out_dir = Path(opts.results_dir) / "tag" / f"cross_play_{opts.label}_s{opts.seed}"
    lines = [
        f"Cross-play, pool set `{opts.label}` (seed {opts.seed}): predator win-rate of the row algorithm's "
        f"last {opts.last} snapshots against the column algorithm's last {opts.last} prey snapshots, "
        f"{opts.episodes} {opts.split} episodes per cell.\n",
        "| predators \\ prey | " + " | ".join(found_runs) + " |",
        "|---" * (len(found_runs) + 1) + "|",
    ]
    means = {}
    for a, b in itertools.permutations(found_runs, 2):
        m = np.array(
            [
                [float(competitive.play("tag", pred, prey, seeds)["wins"].mean()) for _, prey in snapshots[b]]
                for _, pred in snapshots[a]
            ]
        )
        write_matrix(
            out_dir / f"{a}_vs_{b}",
            [label for label, _ in snapshots[a]],
            [label for label, _ in snapshots[b]],
            m,
            f"{a} predators vs {b} prey ({opts.label} pool)",
            opts.episodes,
        )
        means[(a, b)] = float(m.mean())
        print(f"{a} predators vs {b} prey: mean predator win-rate {m.mean():.3f}", file=sys.stderr)
    for a in found_runs:
        lines.append(f"| {a} | " + " | ".join("—" if a == b else f"{means[(a, b)]:.3f}" for b in found_runs) + " |")
    if missing:
        lines += ["", "Missing runs:"] + [f"- {m}" for m in missing]
    md = "\n".join(lines) + "\n"
    atomic_write(out_dir / "summary.md", md.encode())
    print(md)
    print(f"written: {out_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
