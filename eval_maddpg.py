"""Evaluate and render a trained MADDPG checkpoint (the best population member).

    python eval_maddpg.py                                  # newest checkpoint, 100 test episodes
    python eval_maddpg.py --checkpoint checkpoints/spread/maddpg/RUN_s1/latest.pt --render

Same protocol and output as eval_method_i.py: the mean score of deterministic
episodes (actor output, no exploration noise) on the fixed held-out seeds, its
95% CI and the normalised score; --render writes a GIF (or opens a window with
--render human).  Also prints how saturated the actors' tanh outputs are.
"""

import argparse
import sys

import torch

import harness
from method_i import CheckpointError
from train_maddpg import ActorPolicy, actor_from_state


def load_policy(path, env_name=None):
    """(ActorPolicy, checkpoint dict) from a train_maddpg.py checkpoint."""
    state = harness.load_checkpoint(path)
    if state.get("format") != "memeplex-run/1" or state.get("algo") != "maddpg" or "actors" not in state:
        algo = state.get("algo")
        hint = f"; use eval_{'method_i' if algo == 'ppo' else algo}.py" if algo in ("method_i", "ppo") else ""
        raise CheckpointError(f"{path} is not a train_maddpg.py checkpoint{hint}")
    if env_name is not None and state["env"] != env_name:
        raise CheckpointError(f"{path} was trained on {state['env']!r}, not {env_name!r}")
    agents, obs_dims, _ = harness.env_info(state["env"])
    if list(state["agent_ids"]) != agents or any(int(state["obs_dims"][a]) != obs_dims[a] for a in agents):
        raise CheckpointError(f"{path}: agents/spaces {state['agent_ids']} do not match the {state['env']} environment")
    return ActorPolicy({a: actor_from_state(state["actors"][a]) for a in agents}, agents), state


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_eval_arguments(p, ("maddpg",))
    p.add_argument("--env", default=None, choices=sorted(harness.ENVS),
                   help="expected environment (default: the checkpoint's); a mismatch is an error")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    path = harness.find_checkpoint(args.checkpoint, ("maddpg",))
    policy, state = load_policy(path, args.env)
    label = f"MADDPG [{path}, step {state['progress']['global_step']}]"
    harness.evaluate_and_render(args, state["env"], policy, label, path)
    print(f"actor saturation (|tanh output| > 0.99): {policy.saturation():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(harness.run_cli(main))
