#!/usr/bin/env bash
# Method I self-play on simple_tag_v3 under the original implementation's
# measured protocol: 40k env steps, 8 envs, Elo evaluations of 5 episodes per
# pairing every 20k steps (the original took ~49 s, ~820 env steps/s).
#
#   bash benchmarks/tag_original_protocol.sh        # writes results/benchmarks/tag/method_i/original-protocol_s1/
#
# summary.json holds wall_time and the throughput with and without evaluation.
# Evaluation here is heavier than the original's: every evaluation plays the
# random team and each pool snapshot from both sides plus self-play.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf results/benchmarks/tag/method_i/original-protocol_s1 checkpoints/benchmarks/tag/method_i/original-protocol_s1
python train_method_i.py --env tag --max-steps 40000 --eval-interval 20000 --elo-episodes 5 \
  --final-eval-episodes 0 --run-name original-protocol --seed 1 --no-progress \
  --results-dir results/benchmarks --checkpoint-dir checkpoints/benchmarks
python - <<'PY'
import json
s = json.load(open("results/benchmarks/tag/method_i/original-protocol_s1/summary.json"))
print(f"40k tag env steps: wall {s['wall_time']:.1f} s (original ~49 s); env steps/s with evaluation "
      f"{s['throughput_with_eval']:.0f}, without {s['throughput_without_eval']:.0f} (original ~820 with evaluation)")
PY
