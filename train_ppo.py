"""Train the IPPO baseline: Method I's agents and PPO with distillation off.

    python train_ppo.py                  # 200k env steps on simple_spread_v3
    python train_ppo.py --help           # every option (the PPO ones of train_method_i.py)

This is train_method_i.py's training loop with topology `none`; it accepts no
distillation options and writes its runs under results/<env>/ppo/.
"""

import sys

import train_method_i
from memeplex import cli


def main(argv=None) -> int:
    return train_method_i.main(argv, algo="ppo")


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
