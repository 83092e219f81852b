"""The MPE environments of memeplex.

spec.py       the envs by name (spread, spread-N, tag): specs, sizes, teams, one mpe2 env, training seeds
vec.py        the training envs of a run (VecEnv; backends "batched" and "mpe2")
scenarios.py  the batched worlds by name; world.py the physics every scenario shares,
              spread.py and tag.py the scenarios, observations.py and snapshot.py their observations and state
"""
