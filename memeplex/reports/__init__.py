"""The result suites (run_experiments.py) and the benchmarks as tables and figures, from results/ only.

Each module's `report(results, log)` returns {file name: text or Figure}; compare_results.py --report writes
them under results/<spread|tag|reference|benchmarks|sweeps>/report/:
  spread.py      main, long, wallclock, ablation (with CKA) and scaling suites
  dose.py        the distillation dose sweep under results/spread/dose (docs/distillation_dose.md)
  stability.py   long-training stability candidates under results/spread/stability (2M env steps)
  maddpg_sweep.py  the MADDPG sweep under results/spread/maddpg_sweep (docs/maddpg.md)
  maddpg_tag_form.py  MADDPG's form on tag under results/tag/maddpg_form (docs/maddpg.md)
  power.py       how many reporting seeds: the power suite's paired Method I and IPPO runs (docs/protocol.md)
  reference.py   simple_reference: the references and the first look (docs/reference.md)
  tag.py         self-play, fixed pools, cross-seed play (cross_seed.py), exploitability, the headline
  benchmarks.py  throughput benchmark; the best-response recipe's check (under tag/report/)
  sweeps.py      the exploratory sweeps under results/sweeps, one row per run (also compare_results.py --by-run)
  tables.py      what they share: finished runs, caption facts, markdown rows, score tables
Every number is recomputed from the runs' summary.json and metrics.csv with fixed bootstrap seeds, so the
same results/ give the same tables (compare_results.py --check).
"""
