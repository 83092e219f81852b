"""Evaluate and render a trained Method I (LA-IPPO), IPPO or MAPPO checkpoint (MAPPO's: its actors).

    python eval_method_i.py                                 # your newest spread run, else the shipped one
    python eval_method_i.py --checkpoint checkpoints/spread/method_i/RUN_s1/latest.pt
    python eval_method_i.py --render                        # + an animated GIF of one episode
    python eval_method_i.py --render human                  # + a window (needs a display)

Prints the mean score of deterministic episodes (Gaussian mean actions) on the
fixed held-out seeds, its 95% CI and the normalised score (0 = random,
1 = hand-coded oracle).
"""

import argparse
import sys

import torch

from memeplex import checkpoints, cli, evaluation
from memeplex.suites import ALGO_LABELS


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluation.add_eval_arguments(p, checkpoints.LA_IPPO_ALGOS)
    opts = evaluation.parse_eval_options(p, argv)
    torch.set_num_threads(1)
    path = checkpoints.find_checkpoint(opts.checkpoint, checkpoints.LA_IPPO_ALGOS, opts.env)
    learner, state = checkpoints.load_learner(path, opts.env)
    name = ALGO_LABELS[state["algo"]]
    label = f"{name} [{path}, step {state['progress']['global_step']}]"
    evaluation.evaluate_and_render(
        opts, state["env"], lambda obs, worlds: learner.act(obs, deterministic=True), label, path
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
