"""The batched MPE world: E copies of one particle world stepped together.

`BatchedWorld` holds the state of E independent environment instances in
NumPy float64 arrays and steps all of them with array code (no Python loop
over envs; the only loops are over a handful of agents/entity pairs, each a
whole-batch operation).  It is what every scenario shares: the physics, the
resets, the observations (gathered as observations.py lays them out) and the
state (saved and copied to mpe2 by snapshot.py); a scenario (spread.py, tag.py,
reference.py) is a subclass that names mpe2's world, its defaults and reset
ranges, its observation columns and its rewards, and, if it has any, its own
per-env state (reference: goals and messages).  Together they reproduce mpe2 1.1.1 (the reference; see
`_mpe_utils/core.py`, `_mpe_utils/simple_env.py` and the scenario modules) for
the configurations this repository uses, continuous actions only.  The float64
world state and every observation, reward and truncation flag equal what mpe2's
PettingZoo parallel API gives for the same reset seeds and actions, bit for bit
(tests/test_mpe_batched.py checks it over thousands of env steps).  No
operation is reordered: the collision forces on an agent are accumulated one
partner at a time in mpe2's order, and every expression keeps mpe2's
evaluation order and float32/float64 types (see the comments in `step`).

API (scenarios.make_world(name, num_envs, **env_kwargs) makes one)
---
Scenario(num_envs, **env_kwargs)
    env_kwargs as for mpe2's `parallel_env` (only the scenario's `defaults` are
    accepted).  Every env gets its own RNG (seeded from OS entropy, as an
    unseeded mpe2 env) and is reset once, as mpe2's constructor does; call
    `reset(seeds=...)` for reproducible episodes.

Attributes (read-only by convention):
    name, num_envs, env_kwargs, max_cycles
    agents            list[str], mpe2's `possible_agents` order (tag: adversaries first)
    obs_dims, act_dims  dict agent -> int (act_dims: 5, [no-op, -x, +x, -y, +y], plus dim_c
                      message entries for speaking agents: reference's 15)
    entity_names      list[str], mpe2's `world.entities` order: agents, then landmarks
    num_agents, num_landmarks, num_entities
    agent_slice       slice of the agents in the entity axis   (0 .. num_agents)
    landmark_slice    slice of the landmarks (spread: targets; tag: obstacles)
    sizes             [entities] float64 radii
    adversary         [agents] bool (tag: True for the predators, which come first; spread: all False)
    adversary_slice, good_slice   slices of predators and prey in the agent axis
    accel             [agents] float64 action sensitivity (5.0 where mpe2 has none)
    max_speed         [agents] float64 (inf where mpe2 has none)
    movable, collide  [entities] bool; mass [entities] float64 (all 1.0)
    dt, damping, contact_force, contact_margin   mpe2's World constants (0.1, 0.25, 100, 1e-3)
    pos, vel          [E, entities, 2] float64 world state (landmark velocities stay 0);
                      change them only through reset/load_state_dict (a direct
                      write leaves contacts() stale until the next step or reset)
    steps             [E] int64, steps taken in the current episode
    cam_range         [E] float64, mpe2's `original_cam_range` of the episode (render zoom)
    comm              [E, agents, dim_c] float64, every agent's comm state (the message it
                      sent at the last step, zeros after a reset; silent agents: dim_c = 0 here)
    rngs              list of E numpy Generators (gymnasium's `np_random`), one per env

Methods:
    reset(seeds=None, envs=None) -> obs
        Reset the envs with indices `envs` (default: all; a bool mask works too).
        `seeds`: None, or one entry per reset env, each an int >= 0 (a fresh RNG
        made exactly as mpe2's `reset(seed=s)` does) or None (continue that env's
        RNG, as mpe2's `reset()`).  The draws are mpe2's `reset_world`'s, in its
        order.  Returns `observe()` for all envs (obs agent -> [E, D] float32).
    step(actions) -> (obs, rewards, terminated, truncated)
        actions: agent -> [E, act_dim] float32 (float64 is accepted and handled as mpe2
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
* spread and tag agents are silent (their comm state, all zeros, is written by
  to_mpe2); reference agents speak: state.c = action.c + 0.0, the clipped
  message in the action's dtype, set after the physics of the same step.
* agents that do not collide (reference) feel no contact forces.
"""

from __future__ import annotations

import operator

import numpy as np

from memeplex.envs import snapshot
from memeplex.envs.observations import Observations


def new_rng(seed):
    """The RNG mpe2 makes in `reset(seed=...)` (gymnasium.utils.seeding.np_random)."""
    from gymnasium.utils import seeding

    return seeding.np_random(None if seed is None else operator.index(seed))[0]


def env_indices(envs, num_envs: int) -> np.ndarray:
    """The env indices `envs` names: None = all, a bool mask [num_envs] or indices."""
    if envs is None:
        return np.arange(num_envs)
    idx = np.asarray(envs)
    if idx.dtype == bool:
        if idx.shape != (num_envs,):
            raise ValueError("a boolean envs mask must have shape (num_envs,)")
        return np.flatnonzero(idx)
    idx = idx.astype(np.intp, casting="safe").reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= num_envs):
        raise IndexError("env index out of range")
    return idx


def action_force(actions: dict, agents: list, sensitivity: np.ndarray, dim_c: int = 0) -> tuple:
    """(u, c): u [agents, E, 2] float64 as SimpleEnv._set_action (continuous),
    `sensitivity` [agents, 1, 1]; c [agents, E, dim_c] float64, the messages
    as World.update_agent_state sets them (the clipped action entries 5 ..,
    in the action's dtype, + 0.0)."""
    acts = [np.asarray(actions[a]) for a in agents]
    if all(x.dtype == acts[0].dtype for x in acts):
        batches = [np.array(acts)]  # [agents, E, act_dim], in the actions' dtype
    else:  # mixed dtypes: every agent in its own dtype
        batches = [x[None] for x in acts]
    u, c = [], []
    for x in batches:
        # ClipOutOfBoundsWrapper: clip to [0, 1], keeping the dtype (max/min
        # rather than np.clip only differs on -0.0, which "0.0 +" below erases)
        x = np.minimum(np.maximum(x, 0.0), 1.0)
        # u = zeros(2) (float64); u[0] += a[2] - a[1]; u[1] += a[4] - a[3]:
        # the differences in the action dtype (float32), then widened
        u.append(np.add(0.0, x[..., 2:5:2] - x[..., 1:4:2], dtype=np.float64))
        # state.c = action.c + 0.0 (no comm noise): in the action's dtype, exactly widened
        c.append(np.add(x[..., 5 : 5 + dim_c], 0.0, dtype=x.dtype).astype(np.float64))
    u, c = (u[0], c[0]) if len(u) == 1 else (np.concatenate(u), np.concatenate(c))
    u *= sensitivity  # u *= sensitivity (accel, or 5.0)
    return u, c


class BatchedWorld:
    """E copies of one MPE scenario stepped together; see the module docstring.

    A scenario subclass sets `name`, `defaults` (mpe2's keyword arguments it
    accepts, with their defaults), `reset_ranges` ((lo, hi) of the agents' and
    of the landmarks' uniform start positions) and implements `mpe2_world`,
    `obs_extra` (or `obs_cols`), `obs_groups` and `rewards`; a scenario with
    per-env state of its own (reference) sets `state_width` and implements
    the hooks under "the scenario's own state"."""

    name: str
    defaults: dict
    reset_ranges: tuple
    state_width = 0  # the scenario's per-env state values in the observation row (observations.py)

    def __init__(self, num_envs: int, **env_kwargs):
        unknown = set(env_kwargs) - set(self.defaults)
        if unknown:
            raise ValueError(f"unsupported {self.name} kwargs: {sorted(unknown)} (supported: {sorted(self.defaults)})")
        kw = {**self.defaults, **env_kwargs}
        if not kw["continuous_actions"]:
            raise ValueError("only continuous_actions=True is implemented")
        self.configure(kw)
        num_envs = operator.index(num_envs)
        if num_envs < 1:
            raise ValueError("num_envs must be >= 1")
        self.num_envs, self.env_kwargs = num_envs, kw
        self.max_cycles = int(kw["max_cycles"])
        self._read_world(self.mpe2_world(kw))
        E, nE = num_envs, self.num_entities
        self.comm = np.zeros((E, self.num_agents, self.dim_c if self.speaks else 0))
        self._obs = Observations(
            self.agents, num_envs, self.num_entities, self.obs_groups(), self.obs_cols, self.state_width
        )
        self.obs_dims = self._obs.dims
        self.act_dims = {a: 5 + self.comm.shape[2] for a in self.agents}
        self.pos = np.zeros((E, nE, 2))
        self.vel = np.zeros((E, nE, 2))
        self.steps = np.zeros(E, dtype=np.int64)
        self.cam_range = np.zeros(E)
        self.rngs = [new_rng(None) for _ in range(E)]
        self._contacts = None  # tag's contact counts of the current state, once computed
        self.reset()  # as mpe2's constructor, which resets its world with an unseeded RNG

    # ------------------------------------------------------- the scenario's part

    def configure(self, kw: dict) -> None:
        """Check the scenario's keyword values (ValueError where mpe2 rejects them)
        and keep what its rewards need."""

    @staticmethod
    def mpe2_world(kw: dict):
        """mpe2's own world for this configuration: the entity properties are read
        from it, so that sizes, accelerations and constants cannot drift."""
        raise NotImplementedError

    def obs_cols(self, i: int, layout: Observations) -> list:
        """Agent i's observation columns: by default the standard start then `obs_extra`."""
        return layout.standard(i) + self.obs_extra(i, layout)

    def obs_extra(self, i: int, layout: Observations) -> list:
        """The columns that end agent i's observation, after the landmarks' and the
        other agents' relative positions (see observations.py)."""
        raise NotImplementedError

    def obs_groups(self) -> list:
        """[(lo, hi), ...]: agent ranges whose observations have one length."""
        raise NotImplementedError

    def rewards(self, dist: np.ndarray) -> np.ndarray:
        """[agents, E] float64 from dist[e, i, j] = |p_j - p_i| (agent i, entity j)."""
        raise NotImplementedError

    def contacts(self) -> np.ndarray:
        """[E] int64: touching (predator, prey) pairs in the current state (tag only)."""
        raise ValueError("contacts() is defined for tag only")

    # -------------------------------------------- the scenario's own state

    def draw_reset(self, e: int, rng) -> None:
        """reset_world's draws that come before the positions (reference: the goals)."""

    def obs_state(self):
        """[E, state_width] float64: the scenario's values in the observation row, or None."""
        return None

    def extra_state(self) -> dict:
        """The scenario's own state as plain lists (state_dict)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore `extra_state()`."""

    def extra_to_mpe2(self, raw, e: int) -> None:
        """The scenario's own state of env e into an mpe2 env's world (to_mpe2)."""

    # ------------------------------------------------------------ construction

    def _read_world(self, world) -> None:
        """The entity properties and constants of mpe2's world, as arrays."""
        ents = world.entities
        for ag in world.agents:  # what the vectorised step assumes of mpe2's world
            assert ag.movable and not ag.u_noise and not ag.c_noise and ag.action_callback is None
            assert ag.silent == world.agents[0].silent and ag.collide == world.agents[0].collide
        self.speaks = not world.agents[0].silent
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
        # An agent that does not collide has none (all agents alike, asserted above).
        colliders = np.flatnonzero(self.collide)
        self._partners = np.array(
            [[j for j in colliders if j != i and self.collide[i]] for i in range(nA)], dtype=np.intp
        ).reshape(nA, -1)
        self._pair_dmin = self.sizes[:nA, None] + self.sizes[self._partners]  # size_a + size_b (commutative)
        self._unit_mass = bool(np.all(self.mass[:nA] == 1.0))
        self._clamp = bool(np.isfinite(self.max_speed).any())
        self._dmin_agents = self.sizes[:nA, None] + self.sizes[None, :nA]
        self._sens = self.accel[:, None, None]  # u is built agent-major, [agents, E, 2]

    # ------------------------------------------------------------ reset & step

    def reset(self, seeds=None, envs=None) -> dict:
        idx = env_indices(envs, self.num_envs)
        if seeds is None:
            seeds = [None] * len(idx)
        seeds = list(seeds)
        if len(seeds) != len(idx):
            raise ValueError(f"{len(seeds)} seeds for {len(idx)} envs")
        nA, L = self.num_agents, self.num_landmarks
        (alo, ahi), (llo, lhi) = self.reset_ranges
        for e, s in zip(idx.tolist(), seeds):
            if s is not None:
                self.rngs[e] = new_rng(s)
            rng = self.rngs[e]
            self.draw_reset(e, rng)
            # reset_world: every agent's uniform(lo, hi, 2) in order, then every
            # landmark's; one call per group draws the same doubles in the same order.
            self.pos[e, :nA] = rng.uniform(alo, ahi, (nA, 2))
            self.pos[e, nA:] = rng.uniform(llo, lhi, (L, 2))
        self.vel[idx] = 0.0
        self.comm[idx] = 0.0  # state.c = zeros(dim_c)
        self.steps[idx] = 0
        self.cam_range[idx] = np.abs(self.pos[idx]).max(axis=(1, 2))
        self._contacts = None
        return self._observe()[0]

    def step(self, actions: dict):
        nA = self.num_agents
        pos, vel = self.pos, self.vel
        # World.apply_action_force: p_force = u + 0.0 (no motor noise)
        force, comm = action_force(actions, self.agents, self._sens, self.comm.shape[2])
        force = force.transpose(1, 0, 2)  # [E, agents, 2]

        # World.apply_environment_force for the agents (the only movable
        # entities): F_ij computed with delta = p_i - p_j is bitwise -F_ji (every
        # operation is sign-symmetric), so each agent's pair forces equal mpe2's,
        # and they are added one partner at a time in mpe2's order (no reordering).
        if self._partners.shape[1]:  # (agents that do not collide have no partners)
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
        self.comm[...] = comm.transpose(1, 0, 2)  # World.update_agent_state, after the physics
        self.steps += 1

        obs, dist = self._observe()
        rew = self.rewards(dist)
        truncated = self.steps >= self.max_cycles
        terminated = np.zeros(self.num_envs, dtype=bool)
        return obs, {a: rew[i] for i, a in enumerate(self.agents)}, terminated, truncated

    def _observe(self):
        """(obs, dist) of the current state (Observations.gather)."""
        return self._obs.gather(self.pos, self.vel, self.obs_state())

    def observe(self) -> dict:
        return self._observe()[0]

    # --------------------------------------------------------- state & render

    def state_dict(self) -> dict:
        """Every env's state as plain data (see snapshot.py)."""
        return snapshot.state_dict(self)

    def load_state_dict(self, state: dict) -> None:
        snapshot.load_state_dict(self, state)
        self._contacts = None

    def to_mpe2(self, env, e: int) -> None:
        """Env e's state into an mpe2 env of the same configuration (see snapshot.py)."""
        snapshot.to_mpe2(self, env, e)
