"""Evaluate and render a trained MADDPG checkpoint (the best population member).

    python eval_maddpg.py                                  # your newest spread run, else the shipped one
    python eval_maddpg.py --checkpoint checkpoints/spread/maddpg/RUN_s1/latest.pt --render

Same protocol and output as eval_method_i.py: the mean score of deterministic
episodes (actor output, no exploration noise) on the fixed held-out seeds, its
95% CI and the normalised score; --render writes a GIF (or opens a window with
--render human).  Also prints how saturated the actors' tanh outputs are.
"""

import argparse
import sys

import torch

from memeplex import checkpoints, cli, evaluation, maddpg


def main(argv=None) -> int:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluation.add_eval_arguments(p, ("maddpg",))
    opts = evaluation.parse_eval_options(p, argv)
    torch.set_num_threads(1)
    path = checkpoints.find_checkpoint(opts.checkpoint, ("maddpg",), opts.env)
    policy, state = checkpoints.load_actor_policy(path, opts.env)
    label = f"MADDPG [{path}, step {state['progress']['global_step']}]"
    evaluation.evaluate_and_render(opts, state["env"], policy, label, path)
    print(f"actor saturation (|tanh output| > {maddpg.ACT_SATURATION}): {policy.saturation():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
