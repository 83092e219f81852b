"""The batched worlds (memeplex.envs) against mpe2's PettingZoo parallel API, bit for bit."""

import io
from collections import Counter

import numpy as np
import pytest
import torch
from mpe2 import simple_reference_v3, simple_spread_v3, simple_tag_v3
from pettingzoo.utils.env_logger import EnvLogger

from memeplex.envs.scenarios import make_world

pytestmark = pytest.mark.kernel_sensitive  # bit-identity to mpe2 must hold at every kernel level

CONFIGS = {
    "spread": ("spread", simple_spread_v3, dict(N=3, local_ratio=0.5, max_cycles=25, continuous_actions=True)),
    "spread6": ("spread", simple_spread_v3, dict(N=6, local_ratio=0.5, max_cycles=25, continuous_actions=True)),
    "tag": (
        "tag",
        simple_tag_v3,
        dict(num_good=1, num_adversaries=3, num_obstacles=2, max_cycles=25, continuous_actions=True),
    ),
    "reference": ("reference", simple_reference_v3, dict(local_ratio=0.5, max_cycles=25, continuous_actions=True)),
}
KEYS = ["spread", "tag", "reference"]


@pytest.fixture(autouse=True)
def quiet_pettingzoo():
    """PettingZoo logs a warning for every out-of-range action it clips."""
    logger = EnvLogger.get_logger()
    disabled, logger.disabled = logger.disabled, True
    yield
    logger.disabled = disabled
    EnvLogger.flush()


class Reference:
    """E mpe2 envs through the PettingZoo parallel API, batched like the batched worlds."""

    def __init__(self, module, kwargs, num_envs):
        self.envs = [module.parallel_env(**kwargs) for _ in range(num_envs)]
        self.agents = list(self.envs[0].possible_agents)

    def reset(self, seeds, envs):
        return {e: self.envs[e].reset(seed=s)[0] for e, s in zip(envs, seeds)}

    def step(self, actions):
        return [env.step({a: actions[a][e] for a in self.agents})[:4] for e, env in enumerate(self.envs)]

    def state(self, e):
        """(pos, vel) [entities, 2] float64 of env e's world, mpe2's internal state."""
        ents = self.envs[e].unwrapped.world.entities
        return np.array([en.state.p_pos for en in ents]), np.array([en.state.p_vel for en in ents])

    def comm(self, e):
        """[agents, dim_c]: every agent's comm state, and the goal landmark index of every agent."""
        w = self.envs[e].unwrapped.world
        return np.array([ag.state.c for ag in w.agents]), [w.landmarks.index(ag.goal_b) for ag in w.agents]

    def contacts(self, e):
        """Touching (predator, prey) pairs, counted on the mpe2 world with MPE's is_collision."""
        raw = self.envs[e].unwrapped
        sc, w = raw.scenario, raw.world
        return sum(sc.is_collision(p, q) for p in sc.adversaries(w) for q in sc.good_agents(w))


def random_actions(env, rng, clip=True):
    """Normal(0.5, 1) actions, clipped as the repository does (or raw).  On tag
    the predators of the even envs also steer towards the prey so that contacts
    (and the prey's speed limit) are exercised often."""
    acts = {a: rng.normal(0.5, 1.0, (env.num_envs, env.act_dims[a])) for a in env.agents}
    if env.name == "tag":
        prey = env.pos[:, env.good_slice.start]
        for i in range(env.adversary_slice.stop):
            d = 3.0 * (prey - env.pos[:, i])
            chase = np.stack([0.0 * d[:, 0], -d[:, 0], d[:, 0], -d[:, 1], d[:, 1]], axis=1)
            acts[env.agents[i]][::2] += chase[::2]
    if clip:
        return {a: np.clip(x, 0.0, 1.0).astype(np.float32) for a, x in acts.items()}
    return {a: x.astype(np.float32) for a, x in acts.items()}


def assert_state_equal(env, ref, e, where):
    """The float64 world state, which the float32 observations would round."""
    pos, vel = ref.state(e)
    assert np.array_equal(env.pos[e], pos), f"{where}: positions in env {e} differ by {np.abs(env.pos[e] - pos).max()}"
    assert np.array_equal(env.vel[e], vel), f"{where}: velocities in env {e} differ by {np.abs(env.vel[e] - vel).max()}"
    if env.name == "reference":
        comm, goal = ref.comm(e)
        assert np.array_equal(env.comm[e], comm), f"{where}: messages in env {e} differ"
        assert env.goal[e].tolist() == goal, f"{where}: goals in env {e} differ"


def assert_obs_equal(obs, ref_obs, e, where):
    assert set(obs) == set(ref_obs)
    for a, want in ref_obs.items():
        got = obs[a][e]
        assert got.dtype == want.dtype == np.float32
        assert np.array_equal(got, want), f"{where}: obs of {a} in env {e} differ by {np.abs(got - want).max()}"


def coverage(env, stats):
    """Count the events whose code paths the comparison should exercise."""
    nA = env.num_agents
    p = env.pos
    d = np.linalg.norm(p[:, :nA, None] - p[:, None, :], axis=-1)
    touching = d < env.sizes[:nA, None] + env.sizes[None, :]
    stats["agent-agent overlaps"] += int(np.triu(touching[:, :, :nA], 1).sum())
    if env.name == "tag":
        stats["agent-obstacle overlaps"] += int(touching[:, :, nA:].sum())
        stats["contacts"] += int(env.contacts().sum())
        speed = np.linalg.norm(env.vel[:, :nA], axis=-1)
        stats["speed clamped"] += int(np.isclose(speed, env.max_speed, rtol=0, atol=1e-12).sum())
        x = np.abs(p[:, env.good_slice])
        stats["prey bound linear"] += int(((x >= 0.9) & (x < 1.0)).sum())
        stats["prey bound exp"] += int((x >= 1.0).sum())
    if env.name == "reference":
        stats["messages clipped to 0 or 1"] += int(((env.comm == 0) | (env.comm == 1)).sum())
        stats["messages inside (0, 1)"] += int(((env.comm > 0) & (env.comm < 1)).sum())
        for g in range(3):
            stats[f"goal {g}"] += int((env.goal == g).sum())


def run_lockstep(key, num_envs, steps, seed, env=None, clip=True):
    """Step the batched world and mpe2 side by side from the same seeds and actions,
    resetting every finished env (every third with a fresh seed, the others
    continuing their RNG, as a training loop does); assert that everything
    is equal, bit for bit.  Returns coverage counts."""
    name, module, kwargs = CONFIGS[key]
    env = env or make_world(name, num_envs, **kwargs)
    ref = Reference(module, kwargs, num_envs)
    assert env.agents == ref.agents
    rng = np.random.default_rng(seed)
    seeds = [seed * 1000 + e for e in range(num_envs)]
    obs = env.reset(seeds=seeds)
    for e, o in ref.reset(seeds, range(num_envs)).items():
        assert_state_equal(env, ref, e, "first reset")
        assert_obs_equal(obs, o, e, "first reset")
    stats = Counter()
    for t in range(steps):
        actions = random_actions(env, rng, clip)
        obs, rew, term, trunc = env.step(actions)
        for e, (o, r, te, tr) in enumerate(ref.step(actions)):
            assert_state_equal(env, ref, e, f"step {t}")
            assert_obs_equal(obs, o, e, f"step {t}")  # at truncation: the episode's final observation
            for a in env.agents:
                assert rew[a].dtype == np.float64
                assert rew[a][e] == r[a], f"step {t}: reward of {a} in env {e}: {rew[a][e]!r} != {r[a]!r}"
            assert term[e] == any(te.values()) and trunc[e] == any(tr.values())
            if env.name == "tag":
                assert env.contacts()[e] == ref.contacts(e)
        stats["env steps"] += num_envs
        coverage(env, stats)
        done = np.flatnonzero(trunc).tolist()
        if len(done):
            stats["episodes"] += len(done)
            new = [seed * 1000 + 100 * (t + 1) + e if e % 3 == 0 else None for e in done]
            obs = env.reset(seeds=new, envs=done)
            for e, o in ref.reset(new, done).items():
                assert_state_equal(env, ref, e, f"reset after step {t}")
                assert_obs_equal(obs, o, e, f"reset after step {t}")
    return stats


@pytest.mark.parametrize(
    "key,num_envs,steps", [("spread", 8, 250), ("tag", 8, 250), ("spread6", 4, 60), ("reference", 8, 250)]
)
def test_matches_mpe2_bit_for_bit(key, num_envs, steps):
    stats = run_lockstep(key, num_envs, steps, seed=1)
    assert stats["env steps"] == num_envs * steps
    assert stats["episodes"] == num_envs * (steps // 25)
    # the comparison went through every branch of the physics and the rewards
    assert stats["agent-agent overlaps"] > 0
    if key == "tag":
        for what in ("agent-obstacle overlaps", "contacts", "speed clamped", "prey bound linear", "prey bound exp"):
            assert stats[what] > 0, what
    if key == "reference":  # (agents overlap without pushing: they do not collide)
        for what in ("messages clipped to 0 or 1", "messages inside (0, 1)", "goal 0", "goal 1", "goal 2"):
            assert stats[what] > 0, what


@pytest.mark.parametrize("key", KEYS)
def test_raw_out_of_range_and_float64_actions_are_handled_as_mpe2_does(key):
    """Unclipped float32 actions (PettingZoo's wrapper clips them) and float64
    actions (differences taken in float64, as mpe2 does for them)."""
    run_lockstep(key, 2, 60, seed=2, clip=False)
    name, module, kwargs = CONFIGS[key]
    env, ref = make_world(name, 2, **kwargs), Reference(module, kwargs, 2)
    obs, rng = env.reset(seeds=[5, 6]), np.random.default_rng(3)
    ref.reset([5, 6], [0, 1])
    for t in range(25):
        shape = lambda a: (2, env.act_dims[a])
        actions = {
            a: rng.normal(0.5, 1.0, shape(a)) if k % 2 else rng.random(shape(a), dtype=np.float32)
            for k, a in enumerate(env.agents)
        }  # float64 and float32 mixed
        obs, rew, _, _ = env.step(actions)
        for e, (o, r, _, _) in enumerate(ref.step(actions)):
            assert_obs_equal(obs, o, e, f"step {t}")
            assert all(rew[a][e] == r[a] for a in env.agents)


def test_the_comparison_detects_small_deviations():
    """The lockstep check must be able to fail: a damping off by 1e-12 (spread)
    or the pair forces summed in the reverse order (tag, where an agent has 5
    collision partners) are caught, at the latest by the float64 state check;
    so are reference's goals drawn in the other order."""
    name, _, kwargs = CONFIGS["spread"]
    wrong = make_world(name, 4, **kwargs)
    wrong.damping += 1e-12
    with pytest.raises(AssertionError, match="differ"):
        run_lockstep("spread", 4, 50, seed=1, env=wrong)
    name, _, kwargs = CONFIGS["tag"]
    wrong = make_world(name, 4, **kwargs)
    wrong._partners, wrong._pair_dmin = wrong._partners[:, ::-1].copy(), wrong._pair_dmin[:, ::-1].copy()
    with pytest.raises(AssertionError, match="differ"):
        run_lockstep("tag", 4, 50, seed=1, env=wrong)
    # reference: the two goals drawn in the other order (the same draws, swapped)
    name, _, kwargs = CONFIGS["reference"]
    wrong = make_world(name, 4, **kwargs)
    wrong.draw_reset = lambda e, rng: wrong.goal.__setitem__((e, slice(None, None, -1)), rng.integers(3, size=2))
    with pytest.raises(AssertionError, match="differ"):
        run_lockstep("reference", 4, 50, seed=1, env=wrong)


def test_layout_and_spaces_match_mpe2():
    for name, module, kwargs in CONFIGS.values():
        env, ref = make_world(name, 3, **kwargs), module.parallel_env(**kwargs)
        world = ref.unwrapped.world
        assert env.agents == list(ref.possible_agents)
        assert env.obs_dims == {a: ref.observation_space(a).shape[0] for a in env.agents}
        assert env.act_dims == {a: ref.action_space(a).shape[0] for a in env.agents}
        assert env.act_dims == {a: 15 if name == "reference" else 5 for a in env.agents}
        assert env.entity_names == [en.name for en in world.entities]
        assert env.pos.shape == env.vel.shape == (3, len(world.entities), 2)
        assert env.sizes.tolist() == [en.size for en in world.entities]
        assert env.agent_slice == slice(0, len(world.agents))
        assert env.landmark_slice == slice(len(world.agents), len(world.entities))
        assert env.adversary.tolist() == [getattr(ag, "adversary", False) for ag in world.agents]
        obs = env.observe()
        for a in env.agents:
            assert obs[a].dtype == np.float32 and obs[a].shape == (3, env.obs_dims[a]) and obs[a].flags.c_contiguous
    tag = make_world("tag", 1)
    assert tag.accel.tolist() == [3.0, 3.0, 3.0, 4.0] and tag.max_speed.tolist() == [1.0, 1.0, 1.0, 1.3]
    assert tag.adversary_slice == slice(0, 3) and tag.good_slice == slice(3, 4)


def test_reset_arguments():
    env = make_world("spread", 4)
    env.reset(seeds=[1, 2, 3, 4])
    before = env.pos.copy()
    for _ in range(3):
        env.step({a: np.full((4, 5), 0.5, np.float32) for a in env.agents})
    env.reset(seeds=[np.int64(9), None], envs=np.array([False, True, False, True]))
    assert env.steps.tolist() == [3, 0, 3, 0]
    one = make_world("spread", 1)
    one.reset(seeds=[9])
    assert np.array_equal(env.pos[1], one.pos[0]) and not np.array_equal(env.pos[3], before[3])
    with pytest.raises(ValueError, match="seeds"):
        env.reset(seeds=[1, 2])
    with pytest.raises(ValueError, match="unsupported"):
        make_world("spread", 2, curriculum=True)
    with pytest.raises(ValueError):
        make_world("tag", 2, continuous_actions=False)


@pytest.mark.parametrize("key", KEYS)
def test_state_dict_round_trip_continues_bit_for_bit(key):
    name, _, kwargs = CONFIGS[key]
    a = make_world(name, 4, **kwargs)
    rng = np.random.default_rng(7)
    a.reset(seeds=[11, 12, 13, 14])
    for _ in range(40):  # mid-episode after one reset without seeds
        *_, trunc = a.step(random_actions(a, rng))
        if trunc.any():
            a.reset(envs=trunc)
    buf = io.BytesIO()
    torch.save({"env": a.state_dict()}, buf)
    buf.seek(0)
    b = make_world(name, 4, **kwargs)  # a different (entropy-seeded) state until loaded
    b.load_state_dict(torch.load(buf, weights_only=True)["env"])
    assert np.array_equal(a.pos, b.pos) and np.array_equal(a.vel, b.vel) and np.array_equal(a.steps, b.steps)
    assert np.array_equal(a.comm, b.comm) and (key != "reference" or np.array_equal(a.goal, b.goal))
    for _ in range(60):  # two more episode ends: the resets draw from the restored RNGs
        actions = random_actions(a, rng)
        out_a, out_b = a.step(actions), b.step(actions)
        for x, y in zip(out_a[:2], out_b[:2]):
            assert all(np.array_equal(x[k], y[k]) for k in x)
        assert np.array_equal(out_a[3], out_b[3])
        if key == "tag":
            assert np.array_equal(a.contacts(), b.contacts())
        if out_a[3].any():
            oa, ob = a.reset(envs=out_a[3]), b.reset(envs=out_b[3])
            assert all(np.array_equal(oa[k], ob[k]) for k in oa)
    assert np.array_equal(a.pos, b.pos) and np.array_equal(a.vel, b.vel)
    with pytest.raises(ValueError):
        make_world(name, 3, **kwargs).load_state_dict(a.state_dict())


@pytest.mark.parametrize("key", KEYS)
def test_to_mpe2_observes_and_renders_the_batched_state(key):
    name, module, kwargs = CONFIGS[key]
    env = make_world(name, 3, **kwargs)
    played = module.parallel_env(render_mode="rgb_array", **kwargs)  # plays env 1's episode itself
    target = module.parallel_env(render_mode="rgb_array", **kwargs)  # only receives the state
    env.reset(seeds=[1, 2, 3])
    played.reset(seed=2)
    target.reset(seed=99)
    rng = np.random.default_rng(4)
    for _ in range(10):
        actions = random_actions(env, rng)
        obs = env.step(actions)[0]
        played.step({a: actions[a][1] for a in env.agents})
    env.to_mpe2(target, 1)
    for a in env.agents:
        assert np.array_equal(target.unwrapped.observe(a), obs[a][1])
    assert target.unwrapped.steps == 10
    assert np.array_equal(target.render(), played.render())
    # the copied RNG continues as env 1's: the next reset draws the same world
    target.reset()
    obs = env.reset(envs=[1])
    for a in env.agents:
        assert np.array_equal(target.unwrapped.observe(a), obs[a][1])
    played.close()
    target.close()
