#!/usr/bin/env bash
# The hyperparameter sweep behind Method I's defaults on simple_spread_v3.
#
#   bash sweeps/spread_validation.sh            # 2 runs at a time, ~15 minutes on 2 cores
#   python compare_results.py --results-dir results/sweeps --by-run
#
# Every run: 200k env steps, seed 1 (the default also seed 2), judged on the
# periodic evaluations' validation seeds only: --final-eval-episodes 0 keeps
# the held-out test seeds out of every tuning decision.
set -euo pipefail
cd "$(dirname "$0")/.."
PARALLEL=${PARALLEL:-2}
run() {  # NAME SEED ARGS...
  local name=$1 seed=$2; shift 2
  python train_method_i.py --run-name "$name" --seed "$seed" "$@" --final-eval-episodes 0 --no-progress \
    --results-dir results/sweeps --checkpoint-dir checkpoints/sweeps > /dev/null &&
    echo "done: $name seed $seed"
}
export -f run
cat <<'CONFIGS' | xargs -P "$PARALLEL" -L 1 bash -c 'run "$@"' _
default 1
default 2
tanh 1 --activation tanh
tanh 2 --activation tanh
init-log-std-0 1 --init-log-std 0.0
init-log-std-1 1 --init-log-std -1.0
norm-reward 1 --norm-reward
norm-reward-tanh 1 --norm-reward --activation tanh
lr-3e-4 1 --lr 3e-4
lr-2e-3 1 --lr 2e-3
rollout-64 1 --rollout-length 64
minibatches-8 1 --num-minibatches 8
epochs-15 1 --update-epochs 15
clip-0.3 1 --clip-coef 0.3
ent-0.005 1 --ent-coef 0.005
latent-128 1 --latent-dim 128
distill-every-update 1 --distill-interval 1
no-distillation 1 --topology none
CONFIGS
