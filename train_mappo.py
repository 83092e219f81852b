"""Train MAPPO: decentralised actors and a centralised critic per team (mappo.py).

    python train_mappo.py                  # 200k env steps on simple_spread_v3
    python train_mappo.py --env tag        # self-play on simple_tag_v3: predators and prey, a critic each
    python train_mappo.py --help           # every option (mappo.MAPPOConfig: the MAPPO authors' MPE defaults)

This is train_method_i.py's training loop with distillation off and the
learner mappo.MAPPO; it writes its runs under results/<env>/mappo/, and its
checkpoints load as policies like Method I's and IPPO's (the actors only).
"""

import sys

import train_method_i
from memeplex import cli


def main(argv=None) -> int:
    return train_method_i.main(argv, algo="mappo")


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
