"""Evaluate and render a trained Method I (LA-IPPO) or IPPO checkpoint.

    python eval_method_i.py                                 # newest checkpoint, 100 test episodes
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

import harness
from method_i import LAIPPO, CheckpointError, check_compatible

ALGOS = ("method_i", "ppo")


def load_learner(path, env_name=None):
    """(learner, run checkpoint dict) from a train_method_i.py / train_ppo.py checkpoint."""
    state = harness.load_checkpoint(path)
    if state.get("algo") == "maddpg":
        raise CheckpointError(f"{path} is a MADDPG checkpoint; use eval_maddpg.py")
    if state.get("format") != "memeplex-run/1" or "learner" not in state or state.get("algo") not in ALGOS:
        raise CheckpointError(f"{path} is not a training checkpoint of train_method_i.py or train_ppo.py")
    if env_name is not None and state["env"] != env_name:
        raise CheckpointError(f"{path} was trained on {state['env']!r}, not {env_name!r}")
    check_compatible(state["learner"], *harness.env_info(state["env"]))
    return LAIPPO.from_state_dict(state["learner"]), state


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_eval_arguments(p, ALGOS)
    p.add_argument("--env", default=None, choices=sorted(harness.ENVS),
                   help="expected environment (default: the checkpoint's); a mismatch is an error")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    path = harness.find_checkpoint(args.checkpoint, ALGOS)
    learner, state = load_learner(path, args.env)
    label = f"{'Method I (LA-IPPO)' if state['algo'] == 'method_i' else 'IPPO'} [{path}, step {state['progress']['global_step']}]"
    harness.evaluate_and_render(args, state["env"], lambda obs, worlds: learner.act(obs, deterministic=True), label, path)
    return 0


if __name__ == "__main__":
    sys.exit(harness.run_cli(main))
