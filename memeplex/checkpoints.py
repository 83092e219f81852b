"""Every checkpoint format of the repository and its loader.

A training run's checkpoint (format `memeplex-run/1`, torch.save of plain
tensors, numbers and strings, loadable with weights_only=True) carries the
algorithm, the env, the run's arguments and progress, and either
  * `learner`: an LA-IPPO state dict (train_method_i.py, train_ppo.py), or a
    MAPPO one (train_mappo.py: LA-IPPO's actors plus its critics), or
  * `actors`: the best MADDPG member's actors (train_maddpg.py), each as its
    constructor arguments and weights.
`load_policy` turns any of them into a deterministic policy(obs, worlds);
loading checks the env, agents and spaces and never touches global RNG state.
Also here: finding the checkpoint an eval script evaluates, and loading pool
snapshots as policies (pools.py finds them).
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import numpy as np

from memeplex.envs import spec
from memeplex.errors import CheckpointError, UsageError
from memeplex.files import atomic_write

RUN_FORMAT = "memeplex-run/1"
LA_IPPO_ALGOS = ("method_i", "ppo", "mappo")  # a `learner` of LA-IPPO's format (MAPPO's: the actors and critics)
ALGOS = (*LA_IPPO_ALGOS, "maddpg")


def save_checkpoint(obj: dict, path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(path) -> dict:
    """torch.load(weights_only=True) with one-line errors for the usual failures."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a torch file
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a readable torch checkpoint ({type(exc).__name__})"
        ) from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path} is not a memeplex checkpoint")
    return state


def load_run_checkpoint(path, env_name: str | None = None, algos=ALGOS) -> dict:
    """A training run's checkpoint, checked to be of one of `algos` and, if given, of env `env_name`."""
    state = load_checkpoint(path)
    algo = state.get("algo")
    if state.get("format") != RUN_FORMAT or algo not in algos:
        scripts = {**dict.fromkeys(LA_IPPO_ALGOS, "eval_method_i.py"), "maddpg": "eval_maddpg.py"}
        hint = f"; use {scripts[algo]}" if state.get("format") == RUN_FORMAT and algo in scripts else ""
        raise CheckpointError(f"{path} is not a training checkpoint of {' or '.join(sorted(set(algos)))}{hint}")
    if env_name is not None and state["env"] != env_name:
        raise CheckpointError(f"{path} was trained on {state['env']!r}, not {env_name!r}")
    return state


def policy_only(state: dict) -> dict:
    """A run checkpoint reduced to what acting needs (the shipped checkpoints, the pool's snapshots):
    LA-IPPO without its optimiser, observation buffer, return statistics and env state (MAPPO: and its
    critics); MADDPG's best member's actors without the population's training state."""
    state = {k: v for k, v in state.items() if k not in ("envs", "training")}
    if "learner" in state:
        groups = [
            {
                **g,
                "optimizer": None,
                "distill_optimizer": None,
                "obs_buffer": None,
                "obs_buffer_count": 0,
                "discounted_return": None,
            }
            for g in state["learner"]["groups"]
        ]
        state["learner"] = {k: v for k, v in state["learner"].items() if k != "critics"} | {"groups": groups}
    return state


def resumable(state: dict) -> bool:
    """A full training checkpoint, which --resume continues, rather than a policy-only one."""
    if state.get("algo") == "maddpg":
        return "training" in state
    groups = state.get("learner", {}).get("groups", [])
    if state.get("algo") == "mappo" and "critics" not in state.get("learner", {}):
        return False
    return bool(groups) and all(g.get("optimizer") is not None for g in groups)


def check_belongs(state: dict, path, algo: str, env: str, run_name: str, seed: int) -> None:
    """CheckpointError unless `state` is a full training checkpoint of this very run."""
    if state.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{path} is not a training run's checkpoint")
    if state.get("algo") != algo:
        raise CheckpointError(f"{path} is a {state.get('algo')} checkpoint, not one of this {algo} run")
    if not resumable(state):
        raise CheckpointError(f"{path} holds only a policy (a shipped checkpoint?), not the training state to resume")
    saved = state.get("args", {})
    for what, have, want in (("env", state.get("env"), env), ("run name", saved.get("run_name"), run_name),
                             ("seed", saved.get("seed"), seed)):  # fmt: skip
        if have != want:
            raise CheckpointError(f"{path} belongs to another run ({what} {have!r}, this run's is {want!r})")


def resume_checkpoint(directory, algo: str, env: str, run_name: str, seed: int, rows: list) -> tuple:
    """(path, state) of the newest intact training checkpoint of a run whose evaluations all have their row
    in `rows` (metrics.csv): latest.pt, or a newer step_<N>.pt (a run killed before it saved latest.pt),
    or an older one when latest.pt cannot be read or rows it counts are missing (a damaged metrics.csv).
    A policy-only step file (a pool snapshot whose evaluation a kill cut short) is passed over; every
    checkpoint used must belong to the run (check_belongs)."""
    for path, state in _newest_first(Path(directory)):
        if path.name != "latest.pt" and state.get("algo") == algo and not resumable(state):
            continue
        check_belongs(state, path, algo, env, run_name, seed)
        step, evals = state["progress"]["global_step"], state["progress"]["evals"]
        if sum(r["step"] <= step for r in rows) >= evals:
            return path, state
        print(f"{path}: metrics.csv lacks rows of its {evals} evaluations: passed over", file=sys.stderr)
    raise UsageError(f"--resume: no intact training checkpoint in {directory} to resume from")


def _newest_first(directory: Path):
    """(path, state) of the readable checkpoints of a run directory, the newest (highest step) first."""

    def read(path):
        try:
            return load_checkpoint(path)
        except CheckpointError as exc:
            print(f"{exc}: passed over", file=sys.stderr)

    latest = read(directory / "latest.pt") if (directory / "latest.pt").exists() else None
    latest_step = latest.get("progress", {}).get("global_step", -1) if latest else -1
    steps = {int(p.stem[5:]): p for p in directory.glob("step_*.pt") if p.stem[5:].isdigit()}
    for step in sorted(steps, reverse=True):
        if latest is not None and step <= latest_step:
            yield directory / "latest.pt", latest
            latest = None
        state = read(steps[step])
        if state is not None:
            yield steps[step], state
    if latest is not None:
        yield directory / "latest.pt", latest


def load_learner(path, env_name=None):
    """(LAIPPO, checkpoint dict) from a train_method_i.py / train_ppo.py / train_mappo.py checkpoint
    (MAPPO's: its actors, as an LAIPPO that acts like it)."""
    return _learner_from(load_run_checkpoint(path, env_name, LA_IPPO_ALGOS), path)


def _learner_from(state: dict, path):
    from method_i import LAIPPO

    if "learner" not in state:
        raise CheckpointError(f"{path} holds no LA-IPPO learner")
    check_compatible(state["learner"], *spec.env_info(state["env"]))
    return LAIPPO.from_state_dict(state["learner"]), state


# ----------------------------------------------------------------------------
# MADDPG actors (their serialisation: maddpg.actor_state)
# ----------------------------------------------------------------------------


def load_actor_policy(path, env_name=None):
    """(maddpg.ActorPolicy, checkpoint dict) from a train_maddpg.py checkpoint."""
    return _actor_policy_from(load_run_checkpoint(path, env_name, ("maddpg",)), path)


def _actor_policy_from(state: dict, path):
    if "actors" not in state:
        raise CheckpointError(f"{path} holds no MADDPG actors")
    agents, obs_dims, _ = spec.env_info(state["env"])
    if list(state["agent_ids"]) != agents or any(int(state["obs_dims"][a]) != obs_dims[a] for a in agents):
        raise CheckpointError(f"{path}: agents/spaces {state['agent_ids']} do not match the {state['env']} environment")
    from memeplex.maddpg import load_actor_policy_from  # torch at first use, as for LA-IPPO

    return load_actor_policy_from(state["actors"], agents), state


# ----------------------------------------------------------------------------
# Any checkpoint as a policy
# ----------------------------------------------------------------------------


def load_policy(path, env_name: str | None = None):
    """The deterministic policy(obs, worlds) stored in any training checkpoint
    of this repository (Method I, IPPO, MAPPO: its actors, or MADDPG), and the checkpoint dict.
    Loading leaves the global RNG state of python, numpy and torch as it was
    (building an AgileRL actor draws initial weights from torch's)."""
    with untouched_global_rng():
        state = load_run_checkpoint(path, env_name)  # read once, then built by its algorithm
        if state["algo"] == "maddpg":
            return _actor_policy_from(state, path)
        learner, state = _learner_from(state, path)
        return (lambda obs, world_state: learner.act(obs, deterministic=True)), state


@contextlib.contextmanager
def untouched_global_rng():
    """Restore python's, numpy's and torch's global RNG state on exit."""
    import random

    import torch

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


# The final policies of reporting seed 1 that a clone ships (policy-only), per env and algorithm: what the eval
# scripts evaluate when no --checkpoint is given and no run of your own exists.
SHIPPED = {
    "spread": {
        "method_i": "shipped-main-tuned_s1",
        "ppo": "shipped-main-tuned_s1",
        "maddpg": "shipped-main-tuned-pop4_s1",
    },
    "tag": {"method_i": "shipped-selfplay_s1", "ppo": "shipped-selfplay_s1", "maddpg": "shipped-selfplay_s1"},
}


def find_checkpoint(path, algo_dirs, env: str | None = None, root="checkpoints") -> Path:
    """The checkpoint to evaluate: `path` if given; else the newest latest.pt of a run of your own under
    <root>/<env>/<algo>/ (env default spread); else the shipped checkpoint of algo_dirs[0] on that env."""
    if path is not None:
        return Path(path)
    env = env or "spread"
    own = [p for algo in algo_dirs for p in Path(root).glob(f"{env}/{algo}/*/latest.pt")]
    own = [p for p in own if not p.parent.name.startswith("shipped-")]
    if own:
        chosen = max(own, key=lambda p: p.stat().st_mtime)
        print(f"using your newest {env} checkpoint: {chosen}", file=sys.stderr)
        return chosen
    shipped = Path(root) / env / algo_dirs[0] / SHIPPED.get(env, {}).get(algo_dirs[0], "none") / "latest.pt"
    if not shipped.is_file():
        raise UsageError(f"no checkpoint under {root}/{env}/{{{','.join(algo_dirs)}}}/; train one or pass --checkpoint")
    print(f"using the shipped checkpoint (no run of your own on {env}): {shipped}", file=sys.stderr)
    return shipped


# Pool snapshots as policies (pools.pool_set_runs finds them)


def snapshot_label(algo: str, path) -> str:
    return f"{algo}@{int(Path(path).stem.split('_')[1])}"


def load_snapshots(found_runs: dict) -> dict:
    """{algo: [(label, policy)]} for the checkpoints pool_set_runs found."""
    return {
        algo: [(snapshot_label(algo, path), load_policy(path, "tag")[0]) for path in paths]
        for algo, paths in found_runs.items()
    }


# ----------------------------------------------------------------------------
# An LA-IPPO learner's state against an environment
# ----------------------------------------------------------------------------


def check_compatible(state: dict, agent_ids, obs_dims: dict, act_dims: dict) -> None:
    """Raise CheckpointError unless `state` is an LA-IPPO learner's state_dict (method_i.LAIPPO)
    trained on these agents and spaces."""
    from method_i import CHECKPOINT_FORMAT

    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"not an LA-IPPO checkpoint (format {state.get('format')!r})")
    if list(state["agent_ids"]) != list(agent_ids):
        raise CheckpointError(
            f"checkpoint agents {list(state['agent_ids'])} do not match the environment's {list(agent_ids)}"
        )
    for a in agent_ids:
        if int(state["obs_dims"][a]) != int(obs_dims[a]) or int(state["act_dims"][a]) != int(act_dims[a]):
            raise CheckpointError(
                f"checkpoint spaces for {a} (obs {state['obs_dims'][a]}, act {state['act_dims'][a]}) do not match "
                f"the environment's (obs {obs_dims[a]}, act {act_dims[a]})"
            )
