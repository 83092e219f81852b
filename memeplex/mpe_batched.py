"""MPE `simple_spread_v3` and `simple_tag_v3`, stepped for many envs at once.

`BatchedMPE` holds the state of E independent environment instances in NumPy
float64 arrays and steps all of them with array code (no Python loop over
envs; the only loops are over a handful of agents/entity pairs, each a
whole-batch operation).  It reproduces mpe2 1.1.1 (the reference; see
`_mpe_utils/core.py`, `_mpe_utils/simple_env.py`, `simple_spread/`,
`simple_tag/`) for the configurations this repository uses, continuous actions
only:

    BatchedMPE("spread", E, N=3, local_ratio=0.5, max_cycles=25, continuous_actions=True)
    BatchedMPE("tag", E, num_good=1, num_adversaries=3, num_obstacles=2, max_cycles=25,
               continuous_actions=True)

(the keyword arguments shown are the defaults; `N` and the tag counts are
free; entity sizes, accelerations, speed limits and the world constants are
read from mpe2's own `make_world`).  The float64 world state and every
observation, reward and truncation flag equal what mpe2's PettingZoo parallel
API gives for the same reset seeds and actions, bit for bit
(tests/test_mpe_batched.py checks it over thousands of env steps).  No
operation is reordered: the collision forces on an agent are accumulated one
partner at a time in mpe2's order, and every expression keeps mpe2's
evaluation order and float32/float64 types (see the comments in `step`).

API
---
BatchedMPE(name, num_envs, **env_kwargs)
    name in {"spread", "tag"}; env_kwargs as for mpe2's `parallel_env` (only the
    ones shown above are accepted).  Every env gets its own RNG (seeded from OS
    entropy, as an unseeded mpe2 env) and is reset once, as mpe2's constructor
    does; call `reset(seeds=...)` for reproducible episodes.

Attributes (read-only by convention):
    name, num_envs, env_kwargs, max_cycles
    agents            list[str], mpe2's `possible_agents` order (tag: adversaries first)
    obs_dims, act_dims  dict agent -> int (act_dims are all 5: [no-op, -x, +x, -y, +y])
    entity_names      list[str], mpe2's `world.entities` order: agents, then landmarks
    num_agents, num_landmarks, num_entities
    agent_slice       slice of the agents in the entity axis   (0 .. num_agents)
    landmark_slice    slice of the landmarks (spread: targets; tag: obstacles)
    sizes             [entities] float64 radii (spread agents 0.15, landmarks 0.05;
                      tag adversaries 0.075, prey 0.05, obstacles 0.2)
    adversary         [agents] bool (tag: True for the predators, which come first; spread: all False)
    adversary_slice, good_slice   slices of predators and prey in the agent axis (tag)
    accel             [agents] float64 action sensitivity (spread 5.0; tag 3.0 predators, 4.0 prey)
    max_speed         [agents] float64 (inf where mpe2 has none; tag 1.0 predators, 1.3 prey)
    movable, collide  [entities] bool; mass [entities] float64 (all 1.0)
    dt, damping, contact_force, contact_margin   mpe2's World constants (0.1, 0.25, 100, 1e-3)
    pos, vel          [E, entities, 2] float64 world state (landmark velocities stay 0);
                      change them only through reset/load_state_dict (a direct
                      write leaves contacts() stale until the next step or reset)
    steps             [E] int64, steps taken in the current episode
    cam_range         [E] float64, mpe2's `original_cam_range` of the episode (render zoom)
    rngs              list of E numpy Generators (gymnasium's `np_random`), one per env

Methods:
    reset(seeds=None, envs=None) -> obs
        Reset the envs with indices `envs` (default: all; a bool mask works too).
        `seeds`: None, or one entry per reset env, each an int >= 0 (a fresh RNG
        made exactly as mpe2's `reset(seed=s)` does) or None (continue that env's
        RNG, as mpe2's `reset()`).  The draws are mpe2's `reset_world`'s, in its
        order.  Returns `observe()` for all envs (obs agent -> [E, D] float32).
    step(actions) -> (obs, rewards, terminated, truncated)
        actions: agent -> [E, 5] float32 (float64 is accepted and handled as mpe2
        handles it).  Out-of-range values are clipped to [0, 1] as PettingZoo's
        ClipOutOfBoundsWrapper does (a no-op for already clipped actions).
        Steps every env, including finished ones: there is no auto-reset.
        obs: agent -> [E, D] float32, the state after the step (so the obs of a
        truncating step is the episode's final observation); rewards: agent ->
        [E] float64 (mpe2 returns Python floats, i.e. float64); terminated,
        truncated: [E] bool (these envs never terminate; truncated = steps >= max_cycles).
        All returned arrays are fresh (nothing is overwritten by later calls).
    observe() -> obs of the current state, as above.
    contacts() -> [E] int64 (tag only): touching (predator, prey) pairs in the
        current state, MPE's `is_collision` (distance < sum of radii).
    state_dict() / load_state_dict(state): positions, velocities, step counters,
        render zoom and every env's RNG state, as plain lists/ints/strs (PCG64's
        128-bit integers as decimal strings), so it survives
        torch.save / torch.load(weights_only=True) and JSON.  Loading requires the
        same name, env kwargs and num_envs.
    to_mpe2(env, e): write env e's state (positions, velocities, comm state,
        steps, render zoom and a copy of its RNG) into an mpe2 env of the same
        configuration (e.g. one made with render_mode="rgb_array"), so that
        `env.render()` draws this state and `env.unwrapped.observe(agent)` equals
        `observe()[agent][e]`.

mpe2 details reproduced here (each one matters for bit-identity):
* continuous action -> force: `u = zeros(2); u[0] += a[2] - a[1]; u[1] += a[4] - a[3];
  u *= accel` -- the difference is taken in the action's dtype (float32) and
  only then widened to float64.
* world step: p_force = u (+ 0.0 noise), then for every entity pair (a < b) that
  both collide, force = contact_force * delta / dist * penetration with
  penetration = logaddexp(0, -(dist - dist_min) / k) * k, added to a (+) and b (-)
  if movable.  Integration: pos += vel * dt (old velocity), vel = vel * (1 - damping),
  vel += force / mass * dt, then the max-speed clamp vel = vel / |vel| * max_speed.
* spread agents are silent (their comm state, all zeros, still fills the last
  2 (N - 1) observation entries); spread landmarks do not collide, so only
  agent-agent pairs push.  Tag obstacles collide but do not move.
* spread reward: (0 - sum_l min_a |a - l|) * (1 - local_ratio) + (0 - #agents
  touching this one) * local_ratio.  Tag: every predator gets +10 per touching
  (predator, prey) pair; a prey gets -10 per predator touching it minus
  bound(|x|) + bound(|y|).
"""

from __future__ import annotations

import operator

import numpy as np

__all__ = ["BatchedMPE"]

_DEFAULTS = {
    "spread": {"N": 3, "local_ratio": 0.5, "max_cycles": 25, "continuous_actions": True},
    "tag": {"num_good": 1, "num_adversaries": 3, "num_obstacles": 2, "max_cycles": 25, "continuous_actions": True},
}
# reset_world's uniform ranges: (agents, landmarks)
_RESET_RANGES = {"spread": ((-1.0, 1.0), (-1.0, 1.0)), "tag": ((-1.0, 1.0), (-0.9, 0.9))}


def _mpe2_world(name: str, kw: dict):
    """mpe2's own world for this configuration: the entity properties are read
    from it, so that sizes, accelerations and constants cannot drift."""
    if name == "spread":
        from mpe2.simple_spread.simple_spread import Scenario

        return Scenario().make_world(kw["N"])
    from mpe2.simple_tag.simple_tag import Scenario

    return Scenario().make_world(kw["num_good"], kw["num_adversaries"], kw["num_obstacles"])


def _new_rng(seed):
    """The RNG mpe2 makes in `reset(seed=...)` (gymnasium.utils.seeding.np_random)."""
    from gymnasium.utils import seeding

    return seeding.np_random(None if seed is None else operator.index(seed))[0]


def _rng_state(rng: np.random.Generator) -> dict:
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


def _rng_from_state(d: dict) -> np.random.Generator:
    bg = np.random.PCG64(0)
    bg.state = {
        "bit_generator": "PCG64",
        "state": {"state": int(d["state"]), "inc": int(d["inc"])},
        "has_uint32": int(d["has_uint32"]),
        "uinteger": int(d["uinteger"]),
    }
    return np.random.Generator(bg)


class BatchedMPE:
    """E copies of one MPE env stepped together; see the module docstring."""

    def __init__(self, name: str, num_envs: int, **env_kwargs):
        if name not in _DEFAULTS:
            raise ValueError(f"unknown env {name!r}; choose from {', '.join(_DEFAULTS)}")
        unknown = set(env_kwargs) - set(_DEFAULTS[name])
        if unknown:
            raise ValueError(f"unsupported {name} kwargs: {sorted(unknown)} (supported: {sorted(_DEFAULTS[name])})")
        kw = {**_DEFAULTS[name], **env_kwargs}
        if not kw["continuous_actions"]:
            raise ValueError("only continuous_actions=True is implemented")
        if name == "spread" and not 0.0 <= kw["local_ratio"] <= 1.0:
            raise ValueError("local_ratio is a proportion. Must be between 0 and 1.")
        num_envs = operator.index(num_envs)
        if num_envs < 1:
            raise ValueError("num_envs must be >= 1")
        self.name, self.num_envs, self.env_kwargs = name, num_envs, kw
        self.max_cycles = int(kw["max_cycles"])
        self.local_ratio = float(kw["local_ratio"]) if name == "spread" else None

        world = _mpe2_world(name, kw)
        ents = world.entities
        for ag in world.agents:  # what the vectorised step assumes of mpe2's world
            assert ag.movable and ag.collide and ag.silent and not ag.u_noise and not ag.c_noise
            assert ag.action_callback is None
        for lm in world.landmarks:
            assert not lm.movable and not getattr(lm, "boundary", False)
        self.agents = [ag.name for ag in world.agents]
        self.entity_names = [en.name for en in ents]
        self.num_agents, self.num_landmarks = len(world.agents), len(world.landmarks)
        nA = self.num_agents
        self.num_entities = nE = len(ents)
        self.agent_slice, self.landmark_slice = slice(0, nA), slice(nA, nE)
        self.sizes = np.array([en.size for en in ents], dtype=np.float64)
        self.movable = np.array([en.movable for en in ents])
        self.collide = np.array([en.collide for en in ents])
        self.mass = np.array([en.mass for en in ents], dtype=np.float64)
        self.accel = np.array([5.0 if ag.accel is None else ag.accel for ag in world.agents], dtype=np.float64)
        self.max_speed = np.array([np.inf if ag.max_speed is None else ag.max_speed for ag in world.agents])
        self.adversary = np.array([bool(getattr(ag, "adversary", False)) for ag in world.agents])
        n_adv = int(self.adversary.sum())
        assert self.adversary[:n_adv].all()  # mpe2 puts the predators first
        self.adversary_slice, self.good_slice = slice(0, n_adv), slice(n_adv, nA)
        self.dim_c = world.dim_c
        self.dt, self.damping = world.dt, world.damping
        self.contact_force, self.contact_margin = world.contact_force, world.contact_margin

        # Collision partners of every agent, in increasing entity index: mpe2's
        # double loop (a over entities, b > a) adds the pair forces of entity i
        # in exactly this order (pairs (j, i) for j < i, then (i, j) for j > i).
        colliders = np.flatnonzero(self.collide)
        self._partners = np.array([[j for j in colliders if j != i] for i in range(nA)], dtype=np.intp)
        self._pair_dmin = self.sizes[:nA, None] + self.sizes[self._partners]  # size_a + size_b (commutative)
        self._unit_mass = bool(np.all(self.mass[:nA] == 1.0))
        self._clamp = bool(np.isfinite(self.max_speed).any())
        self._dmin_agents = self.sizes[:nA, None] + self.sizes[None, :nA]
        self._sens = self.accel[:, None, None]  # u is built agent-major, [agents, E, 2]

        self._observation_layout(name, num_envs, n_adv)

        E = num_envs
        self.pos = np.zeros((E, nE, 2))
        self.vel = np.zeros((E, nE, 2))
        self.steps = np.zeros(E, dtype=np.int64)
        self.cam_range = np.zeros(E)
        self.rngs = [_new_rng(None) for _ in range(E)]
        self._contacts = None
        self.reset()  # as mpe2's constructor, which resets its world with an unseeded RNG

    def _observation_layout(self, name: str, num_envs: int, n_adv: int) -> None:
        """Where every agent's observation comes from (see the comment below); sets obs_dims and act_dims."""
        nA, nE = self.num_agents, self.num_entities
        # Observations are gathered from one float64 row per env (a persistent
        # scratch buffer): [pos (2 nE) | vel (2 nE) | 0.0 | rel (nA * nE * 2)],
        # rel[i, j] = p_j - p_i.  Each agent's observation is a fixed list of
        # column indices into that row (the zero column stands in for the
        # silent agents' comm state).
        P0, V0, Z, R0 = 0, 2 * nE, 4 * nE, 4 * nE + 1
        self._buf = np.zeros((num_envs, R0 + 2 * nA * nE))
        self._rel = self._buf[:, R0:].reshape(num_envs, nA, nE, 2)
        assert np.shares_memory(self._rel, self._buf)

        def cols(i):
            c = [V0 + 2 * i, V0 + 2 * i + 1, P0 + 2 * i, P0 + 2 * i + 1]
            for j in [*range(nA, nE), *(j for j in range(nA) if j != i)]:  # landmarks, other agents
                c += [R0 + 2 * (i * nE + j), R0 + 2 * (i * nE + j) + 1]
            if name == "spread":  # the other agents' comm state: zeros
                c += [Z] * (self.dim_c * (nA - 1))
            else:  # the velocities of the other prey
                for g in range(n_adv, nA):
                    if g != i:
                        c += [V0 + 2 * g, V0 + 2 * g + 1]
            return c

        groups = [(0, nA)] if name == "spread" else [(0, n_adv), (n_adv, nA)]
        self._groups = [
            (lo, hi, np.array([cols(i) for i in range(lo, hi)], dtype=np.intp)) for lo, hi in groups if hi > lo
        ]
        self.obs_dims = {self.agents[i]: idx.shape[1] for lo, hi, idx in self._groups for i in range(lo, hi)}
        self.act_dims = {a: 5 for a in self.agents}

    # ------------------------------------------------------------------ reset

    def _env_indices(self, envs):
        if envs is None:
            return np.arange(self.num_envs)
        idx = np.asarray(envs)
        if idx.dtype == bool:
            if idx.shape != (self.num_envs,):
                raise ValueError("a boolean envs mask must have shape (num_envs,)")
            return np.flatnonzero(idx)
        idx = idx.astype(np.intp, casting="safe").reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_envs):
            raise IndexError("env index out of range")
        return idx

    def reset(self, seeds=None, envs=None) -> dict:
        idx = self._env_indices(envs)
        if seeds is None:
            seeds = [None] * len(idx)
        seeds = list(seeds)
        if len(seeds) != len(idx):
            raise ValueError(f"{len(seeds)} seeds for {len(idx)} envs")
        nA, L = self.num_agents, self.num_landmarks
        (alo, ahi), (llo, lhi) = _RESET_RANGES[self.name]
        for e, s in zip(idx.tolist(), seeds):
            if s is not None:
                self.rngs[e] = _new_rng(s)
            rng = self.rngs[e]
            # reset_world: every agent's uniform(lo, hi, 2) in order, then every
            # landmark's; one call per group draws the same doubles in the same order.
            self.pos[e, :nA] = rng.uniform(alo, ahi, (nA, 2))
            self.pos[e, nA:] = rng.uniform(llo, lhi, (L, 2))
        self.vel[idx] = 0.0
        self.steps[idx] = 0
        self.cam_range[idx] = np.abs(self.pos[idx]).max(axis=(1, 2))
        self._contacts = None
        return self._observe()[0]

    # ------------------------------------------------------------------- step

    def _action_force(self, actions) -> np.ndarray:
        """[agents, E, 2] float64, as SimpleEnv._set_action (continuous)."""
        acts = [np.asarray(actions[a]) for a in self.agents]
        if all(x.dtype == acts[0].dtype for x in acts):
            batches = [np.array(acts)]  # [agents, E, 5], in the actions' dtype
        else:  # mixed dtypes: every agent in its own dtype
            batches = [x[None] for x in acts]
        u = []
        for x in batches:
            # ClipOutOfBoundsWrapper: clip to [0, 1], keeping the dtype (max/min
            # rather than np.clip only differs on -0.0, which "0.0 +" below erases)
            x = np.minimum(np.maximum(x, 0.0), 1.0)
            # u = zeros(2) (float64); u[0] += a[2] - a[1]; u[1] += a[4] - a[3]:
            # the differences in the action dtype (float32), then widened
            u.append(np.add(0.0, x[..., 2::2] - x[..., 1:4:2], dtype=np.float64))
        u = u[0] if len(u) == 1 else np.concatenate(u)
        u *= self._sens  # u *= sensitivity (accel, or 5.0)
        return u

    def step(self, actions: dict):
        nA = self.num_agents
        pos, vel = self.pos, self.vel
        # World.apply_action_force: p_force = u + 0.0 (no motor noise)
        force = self._action_force(actions).transpose(1, 0, 2)  # [E, agents, 2]

        # World.apply_environment_force for the agents (the only movable
        # entities): F_ij computed with delta = p_i - p_j is bitwise -F_ji (every
        # operation is sign-symmetric), so each agent's pair forces equal mpe2's,
        # and they are added one partner at a time in mpe2's order (no reordering).
        delta = pos[:, :nA, None, :] - pos[:, self._partners]  # [E, nA, K, 2]
        sq = delta * delta
        dist = np.sqrt(sq[..., 0] + sq[..., 1])
        k = self.contact_margin
        # -(dist - dist_min) == dist_min - dist exactly (IEEE subtraction is sign-symmetric)
        pen = np.logaddexp(0.0, (self._pair_dmin - dist) / k) * k
        f = self.contact_force * delta / dist[..., None] * pen[..., None]
        for j in range(f.shape[2]):
            force = f[:, :, j] + force  # p_force[i] = f_ij + p_force[i]

        # World.integrate_state (agents only; landmarks do not move)
        pos[:, :nA] += vel[:, :nA] * self.dt
        v = vel[:, :nA] * (1 - self.damping)
        if not self._unit_mass:
            force = force / self.mass[:nA, None]  # (x / 1.0 == x, so skipped for unit masses)
        v += force * self.dt
        if self._clamp:
            vsq = v * v
            speed = np.sqrt(vsq[..., 0] + vsq[..., 1])
            fast = speed > self.max_speed
            if fast.any():  # v = v / speed * max_speed where speed > max_speed
                scaled = v / np.where(fast, speed, 1.0)[..., None] * self.max_speed[:, None]
                v = np.where(fast[..., None], scaled, v)
        vel[:, :nA] = v
        self.steps += 1

        obs, dist = self._observe()
        rew = self._rewards(dist)
        truncated = self.steps >= self.max_cycles
        terminated = np.zeros(self.num_envs, dtype=bool)
        return obs, {a: rew[i] for i, a in enumerate(self.agents)}, terminated, truncated

    # ------------------------------------------------- observations & rewards

    def _observe(self):
        """(obs, dist): obs agent -> [E, D] float32; dist[e, i, j] = |p_j - p_i|
        (agent i, entity j) computed as is_collision does, sqrt(dx^2 + dy^2)
        (the squares make it independent of the subtraction's order)."""
        E, nE = self.num_envs, self.num_entities
        buf, rel, pos = self._buf, self._rel, self.pos
        buf[:, : 2 * nE] = pos.reshape(E, -1)
        buf[:, 2 * nE : 4 * nE] = self.vel.reshape(E, -1)
        # the observations' relative positions, e.state.p_pos - agent.state.p_pos
        np.subtract(pos[:, None, :, :], pos[:, : self.num_agents, None, :], out=rel)
        obs = {}
        for lo, hi, idx in self._groups:
            # [agents, E, D]: np.concatenate([...]).astype(np.float32) for every agent and env
            o = buf[:, idx].transpose(1, 0, 2).astype(np.float32, order="C")
            for r in range(hi - lo):
                obs[self.agents[lo + r]] = o[r]
        sq = rel * rel
        return obs, np.sqrt(sq[..., 0] + sq[..., 1])

    def observe(self) -> dict:
        return self._observe()[0]

    def _rewards(self, dist) -> np.ndarray:
        """[agents, E] float64, as SimpleEnv._execute_world_step combines them."""
        nA = self.num_agents
        if self.name == "spread":
            # local: rew = 0; rew -= 1.0 * (is_collision(a, agent) and a != agent); the
            # diagonal (dist 0) always hits, so #others = hits - 1 and rew = 1.0 - hits
            hits = (dist[:, :, :nA] < self._dmin_agents).sum(axis=2)
            local = 1.0 - hits
            # global: rew = 0; for each landmark: rew -= min over agents of the distance
            m = dist[:, :, nA:].min(axis=1)  # [E, L]
            g = 0.0 - m[:, 0]
            for j in range(1, m.shape[1]):
                g = g - m[:, j]
            lr = self.local_ratio
            return (g[:, None] * (1 - lr) + local * lr).T.copy()
        adv, good = self.adversary_slice, self.good_slice
        hits = dist[:, adv, good] < self._dmin_agents[adv, good]  # [E, n_adv, n_good]
        per_prey = hits.sum(axis=1)  # [E, n_good]
        self._contacts = per_prey.sum(axis=1)
        out = np.empty((nA, self.num_envs))
        out[adv] = 10.0 * self._contacts  # rew += 10 for every (prey, predator) collision
        r = 0.0 - 10.0 * per_prey  # rew -= 10 per touching predator
        # boundary penalty: rew -= bound(|x|), then rew -= bound(|y|)
        x = np.abs(self.pos[:, good])
        if x.max() >= 0.9:  # (otherwise both bounds are 0 and r - 0.0 == r)
            b = np.where(
                x < 0.9,
                0.0,
                np.where(
                    x < 1.0,
                    (x - 0.9) * 10,
                    # min(exp(2x - 2), 10); x is capped at 10 (exp(18) > 10) against overflow
                    np.minimum(np.exp(2 * np.minimum(x, 10.0) - 2), 10.0),
                ),
            )
            r = r - b[..., 0]
            r = r - b[..., 1]
        out[good] = r.T
        return out

    def contacts(self) -> np.ndarray:
        """[E] int64: touching (predator, prey) pairs in the current state (tag)."""
        if self.name != "tag":
            raise ValueError("contacts() is defined for tag only")
        if self._contacts is None:
            dist = self._observe()[1]
            adv, good = self.adversary_slice, self.good_slice
            self._contacts = (dist[:, adv, good] < self._dmin_agents[adv, good]).sum(axis=(1, 2))
        return self._contacts.copy()

    # ------------------------------------------------------ state and render

    def state_dict(self) -> dict:
        return {
            "format": "mpe_batched/1",
            "name": self.name,
            "env_kwargs": dict(self.env_kwargs),
            "num_envs": self.num_envs,
            "pos": self.pos.tolist(),
            "vel": self.vel.tolist(),
            "steps": self.steps.tolist(),
            "cam_range": self.cam_range.tolist(),
            "rngs": [_rng_state(r) for r in self.rngs],
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != "mpe_batched/1":
            raise ValueError("not a BatchedMPE state dict")
        mine = (self.name, dict(self.env_kwargs), self.num_envs)
        theirs = (state["name"], dict(state["env_kwargs"]), int(state["num_envs"]))
        if mine != theirs:
            raise ValueError(f"state is for {theirs}, this env is {mine}")
        pos, vel = np.asarray(state["pos"], dtype=np.float64), np.asarray(state["vel"], dtype=np.float64)
        if pos.shape != self.pos.shape or vel.shape != self.vel.shape:
            raise ValueError("state arrays have the wrong shape")
        self.pos[...] = pos
        self.vel[...] = vel
        self.steps[...] = np.asarray(state["steps"], dtype=np.int64)
        self.cam_range[...] = np.asarray(state["cam_range"], dtype=np.float64)
        self.rngs = [_rng_from_state(d) for d in state["rngs"]]
        self._contacts = None

    def to_mpe2(self, env, e: int) -> None:
        raw = env.unwrapped
        names = [en.name for en in raw.world.entities]
        if names != self.entity_names:
            raise ValueError(f"mpe2 env has entities {names}, expected {self.entity_names}")
        for i, en in enumerate(raw.world.entities):
            en.state.p_pos = self.pos[e, i].copy()
            en.state.p_vel = self.vel[e, i].copy()
        for ag in raw.world.agents:
            ag.state.c = np.zeros(raw.world.dim_c)
        raw.steps = int(self.steps[e])
        raw.original_cam_range = np.float64(self.cam_range[e])
        raw.np_random = _rng_from_state(_rng_state(self.rngs[e]))
