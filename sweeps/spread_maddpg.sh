#!/usr/bin/env bash
# The MADDPG baseline's choices on simple_spread_v3: AgileRL's default Tanh output (saturation),
# a lower actor LR, AgileRL's shared per-group networks, a population of one, and an earlier
# probe's settings (shared networks, learn every 8 env steps, batch 64) with a population of 1 and of 4.
# These runs used seed 1, a reporting seed: run_experiments.py --suite tune replaces them with tuning seeds.
#
#   bash sweeps/spread_maddpg.sh                  # 7 runs of 200k env steps, 2 at a time
#   python compare_results.py --results-dir results/sweeps --by-run
#
# Judged on validation seeds only (--final-eval-episodes 0). metrics.csv's
# eval_saturation is the fraction of the best member's deterministic actor
# outputs with |output| > 0.99.
set -euo pipefail
cd "$(dirname "$0")/.."
PARALLEL=${PARALLEL:-2}
run() {  # NAME ARGS...
  local name=$1; shift
  python train_maddpg.py --run-name "$name" --seed 1 "$@" --final-eval-episodes 0 --no-progress \
    --results-dir results/sweeps --checkpoint-dir checkpoints/sweeps > /dev/null &&
    echo "done: $name"
}
export -f run
cat <<'CONFIGS' | xargs -P "$PARALLEL" -L 1 bash -c 'run "$@"' _
maddpg-tanh --output-activation Tanh
maddpg-shared-networks --shared-networks
maddpg-population-1 --population-size 1 --tournament-size 1
maddpg-lr-actor-1e-4 --lr-actor 1e-4
maddpg-tanh-lr-actor-1e-4 --output-activation Tanh --lr-actor 1e-4
maddpg-shared-pop1-ls8-b64 --shared-networks --population-size 1 --tournament-size 1 --learn-step 8 --batch-size 64
maddpg-shared-ls8-b64 --shared-networks --learn-step 8 --batch-size 64
CONFIGS
