"""A batched world's state as plain data (to checkpoint and resume it exactly) and
copied into an mpe2 env (to render it or observe it there)."""

from __future__ import annotations

import numpy as np


def rng_state(rng: np.random.Generator) -> dict:
    """A PCG64 generator's state as plain ints and decimal strings."""
    s = rng.bit_generator.state
    if s["bit_generator"] != "PCG64":
        raise ValueError(f"unsupported bit generator {s['bit_generator']}")
    return {
        "bit_generator": "PCG64",
        "state": str(s["state"]["state"]),
        "inc": str(s["state"]["inc"]),
        "has_uint32": int(s["has_uint32"]),
        "uinteger": int(s["uinteger"]),
    }


def rng_from_state(d: dict) -> np.random.Generator:
    """The generator `rng_state` describes."""
    bg = np.random.PCG64(0)
    bg.state = {
        "bit_generator": "PCG64",
        "state": {"state": int(d["state"]), "inc": int(d["inc"])},
        "has_uint32": int(d["has_uint32"]),
        "uinteger": int(d["uinteger"]),
    }
    return np.random.Generator(bg)


def state_dict(world) -> dict:
    """Positions, velocities, step counters, render zoom, every env's RNG state and the
    scenario's own state (reference: goals, messages) as plain lists/ints/strs, so it
    survives torch.save / torch.load(weights_only=True) and JSON."""
    out = {
        "format": "mpe_batched/1",
        "name": world.name,
        "env_kwargs": dict(world.env_kwargs),
        "num_envs": world.num_envs,
        "pos": world.pos.tolist(),
        "vel": world.vel.tolist(),
        "steps": world.steps.tolist(),
        "cam_range": world.cam_range.tolist(),
        "rngs": [rng_state(r) for r in world.rngs],
    }
    if world.speaks:
        out["comm"] = world.comm.tolist()
    return {**out, **world.extra_state()}


def load_state_dict(world, state: dict) -> None:
    """Restore `state_dict(w)` into `world`, a world of the same name, env kwargs and num_envs."""
    if state.get("format") != "mpe_batched/1":
        raise ValueError("not a batched MPE state dict")
    mine = (world.name, dict(world.env_kwargs), world.num_envs)
    theirs = (state["name"], dict(state["env_kwargs"]), int(state["num_envs"]))
    if mine != theirs:
        raise ValueError(f"state is for {theirs}, this env is {mine}")
    pos, vel = np.asarray(state["pos"], dtype=np.float64), np.asarray(state["vel"], dtype=np.float64)
    if pos.shape != world.pos.shape or vel.shape != world.vel.shape:
        raise ValueError("state arrays have the wrong shape")
    world.pos[...] = pos
    world.vel[...] = vel
    world.steps[...] = np.asarray(state["steps"], dtype=np.int64)
    world.cam_range[...] = np.asarray(state["cam_range"], dtype=np.float64)
    world.rngs = [rng_from_state(d) for d in state["rngs"]]
    if world.speaks:
        world.comm[...] = np.asarray(state["comm"], dtype=np.float64)
    world.load_extra_state(state)


def to_mpe2(world, env, e: int) -> None:
    """Write env e's state (positions, velocities, comm state, the scenario's own state
    (reference: goals and their colours), steps, render zoom and a copy
    of its RNG) into an mpe2 env of the same configuration, so that `env.render()` draws
    it and `env.unwrapped.observe(agent)` equals `world.observe()[agent][e]`."""
    raw = env.unwrapped
    names = [en.name for en in raw.world.entities]
    if names != world.entity_names:
        raise ValueError(f"mpe2 env has entities {names}, expected {world.entity_names}")
    for i, en in enumerate(raw.world.entities):
        en.state.p_pos = world.pos[e, i].copy()
        en.state.p_vel = world.vel[e, i].copy()
    for i, ag in enumerate(raw.world.agents):
        ag.state.c = world.comm[e, i].copy() if world.speaks else np.zeros(raw.world.dim_c)
    world.extra_to_mpe2(raw, e)
    raw.steps = int(world.steps[e])
    raw.original_cam_range = np.float64(world.cam_range[e])
    raw.np_random = rng_from_state(rng_state(world.rngs[e]))
