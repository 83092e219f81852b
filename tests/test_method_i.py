"""Unit tests of the LA-IPPO maths: GAE, PPO loss, distillation and its targets,
topologies, log_std clamp, per-agent Adam, reward scaling, checkpoints."""

import numpy as np
import pytest
import torch

import method_i
from memeplex import alignment, checkpoints, ppo, stacked
from memeplex.buffers import ObservationMemory
from memeplex.envs import spec, vec
from memeplex.errors import CheckpointError
from memeplex.normalisation import RewardScaler, update_moments
from memeplex.policy_gradient import compute_gae, ppo_losses
from memeplex.stacked import StackedAdam
from method_i import (
    LAIPPO,
    AgentGroup,
    Config,
    Distiller,
    peer_targets,
    random_encoder_targets,
    shuffled_targets,
    topology_pairs,
)


# ---------------------------------------------------------------- GAE
def test_gae_hand_computed_with_truncation_and_two_envs():
    gamma, lam = 0.9, 0.5
    # shape [T=3, envs=2]; env 0 is truncated after t=1 (bootstrap V(final obs) = 4),
    # env 1 runs through and is bootstrapped from V(s_3) = 10 after the rollout.
    rewards = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    values = np.array([[0.5, 0.0], [1.0, 0.0], [1.5, 0.0]])
    next_values = np.array([[1.0, 0.0], [4.0, 0.0], [2.0, 10.0]])
    dones = np.array([[0, 0], [1, 0], [0, 0]])
    adv, ret = compute_gae(rewards, values, next_values, dones, gamma, lam)
    # env 0: deltas 1.4, 4.6, 3.3; A2 = 3.3, A1 = 4.6 (episode boundary), A0 = 1.4 + 0.45 * 4.6
    # env 1: deltas 0, 0, 10;     A2 = 10, A1 = 4.5, A0 = 2.025
    expected = np.array([[3.47, 2.025], [4.6, 4.5], [3.3, 10.0]])
    np.testing.assert_allclose(adv, expected, rtol=1e-6)
    np.testing.assert_allclose(ret, expected + values, rtol=1e-6)


def test_learner_bootstraps_truncation_from_final_obs_per_env(monkeypatch):
    """The learner feeds GAE V(final obs) at a truncation, V(s_{t+1}) inside an
    episode, and nothing across the boundary; each env is its own stream."""
    agents, obs_dims, act_dims = ["a", "b"], {"a": 3, "b": 3}, {"a": 2, "b": 2}
    learner = LAIPPO(agents, obs_dims, act_dims, Config(topology="none", update_epochs=1, rollout_length=3), num_envs=2)
    g = learner.groups[0]
    captured = {}
    real_gae = ppo.compute_gae

    def spy(rewards, values, next_values, dones, gamma, lam):
        captured.update(values=values.copy(), next_values=next_values.copy(), dones=dones.copy())
        return real_gae(rewards, values, next_values, dones, gamma, lam)

    monkeypatch.setattr(ppo, "compute_gae", spy)
    rng = np.random.default_rng(0)
    obs = lambda: {a: rng.normal(size=(2, 3)).astype(np.float32) for a in agents}
    final = obs()
    dones_seq = [np.array([False, False]), np.array([True, False]), np.array([False, False])]
    for t in range(3):
        learner.act_and_store(obs())
        learner.store_step({a: np.ones(2, np.float32) for a in agents}, dones_seq[t], np.zeros(2, bool), final)
    next_obs = obs()
    v_final = g.value(torch.as_tensor(learner._group_obs(g, final))).numpy()  # [A, E]
    v_next = g.value(torch.as_tensor(learner._group_obs(g, next_obs))).numpy()
    learner.learn(next_obs)
    vals, nxt, dones = captured["values"], captured["next_values"], captured["dones"]
    np.testing.assert_allclose(nxt[0], vals[1])  # inside the episode: V(s_1)
    np.testing.assert_allclose(nxt[1][:, 0], v_final[:, 0], rtol=1e-6)  # env 0 truncated: V(final obs)
    np.testing.assert_allclose(nxt[1][:, 1], vals[2][:, 1])  # env 1 continues: V(s_2)
    np.testing.assert_allclose(nxt[2], v_next, rtol=1e-6)  # end of rollout: V(next obs)
    assert dones[1].tolist() == [[1, 0], [1, 0]] and dones[0].sum() == 0


def test_termination_is_not_bootstrapped():
    learner = LAIPPO(["a"], {"a": 2}, {"a": 1}, Config(topology="none", rollout_length=1), num_envs=1)
    learner.act_and_store({"a": np.ones((1, 2), np.float32)})
    learner.store_step(
        {"a": np.zeros(1, np.float32)}, np.array([True]), np.array([True]), {"a": np.ones((1, 2), np.float32)}
    )
    assert learner.buffers[0].next_values[0, 0, 0] == 0.0


# ---------------------------------------------------------------- PPO loss
def test_ppo_clipped_loss_tiny_case():
    # ratios 1.5, 0.5, 0.9 with advantages +1, -1, +1 and clip 0.2:
    # -min(1.5, 1.2) = -1.2;  -min(-0.5, -0.8) = 0.8;  -min(0.9, 0.9) = -0.9
    ratio = torch.tensor([1.5, 0.5, 0.9])
    adv = torch.tensor([1.0, -1.0, 1.0])
    loss, kl, clip_frac = ppo_losses(ratio.log(), torch.zeros(3), adv, 0.2)
    assert loss.item() == pytest.approx((-1.2 + 0.8 - 0.9) / 3)
    assert clip_frac.item() == pytest.approx(2 / 3)
    assert kl.item() > 0


def test_ppo_loss_has_no_gradient_when_clipped_in_the_improving_direction():
    new = torch.tensor([np.log(1.5)], requires_grad=True)
    loss, _, _ = ppo_losses(new, torch.zeros(1), torch.tensor([1.0]), 0.2)
    loss.backward()
    assert new.grad.item() == 0.0


# ---------------------------------------------------------------- topologies
def test_topology_pairs():
    assert topology_pairs("all-to-all", 3) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert topology_pairs("ring", 3) == [(0, 1), (1, 2), (2, 0)]
    assert topology_pairs("star", 3) == [(1, 0), (2, 0)]
    assert topology_pairs("none", 3) == []
    assert len(topology_pairs("all-to-all", 4)) == 12
    assert topology_pairs("ring", 4) == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert topology_pairs("star", 4) == [(1, 0), (2, 0), (3, 0)]
    with pytest.raises(ValueError, match="unknown topology"):
        topology_pairs("mesh", 3)


def test_only_same_observation_space_agents_are_grouped():
    learner = LAIPPO(
        ["p0", "p1", "p2", "prey"],
        {"p0": 16, "p1": 16, "p2": 16, "prey": 14},
        {a: 5 for a in ["p0", "p1", "p2", "prey"]},
        Config(),
    )
    assert [g.agent_ids for g in learner.groups] == [["p0", "p1", "p2"], ["prey"]]
    assert learner.distillers[1].pairs == []


# ---------------------------------------------------------------- distillation
def _group(topology, n=3, **kw):
    """(group, its memory D, distill(seed): one distillation step of the group on D, its per-agent losses)."""
    torch.manual_seed(0)
    cfg = Config(topology=topology, distill_weight=1.0, lr=1e-2, **kw)
    g = AgentGroup([f"a{i}" for i in range(n)], 6, 2, cfg)
    memory = ObservationMemory(n, 6, cfg.obs_buffer_size, cfg.probe_size)
    memory.remember(np.random.default_rng(0).normal(size=(n, 100, 6)).astype(np.float32))
    g.update_normaliser(torch.as_tensor(np.random.default_rng(1).normal(2.0, 3.0, size=(n, 50, 6)).astype(np.float32)))
    distiller = Distiller(cfg, n)
    return g, memory, lambda seed=0: distiller.step(g, memory, torch.Generator().manual_seed(seed))


def _snapshot(g):
    return {k: v.detach().clone() for k, v in g.state_dict().items()}


def test_distillation_moves_only_the_students_encoder():
    g, _, distill = _group("star")  # students 1, 2 distill toward the hub 0
    for p in g.parameters():  # give every agent Adam momentum, as after PPO updates
        p.grad = torch.randn_like(p)
    g.optimizer.step()
    before = _snapshot(g)
    adam_before = [t.clone() for t in g.optimizer.exp_avg]
    losses = distill(0)
    after = _snapshot(g)
    assert np.isnan(losses[0]) and losses[1] > 0 and losses[2] > 0
    for name in before:
        unchanged_rows = [0] if name.startswith("enc_") else [0, 1, 2]
        for i in unchanged_rows:  # hub entirely, every policy/value head and log_std: bit-identical
            assert torch.equal(before[name][i], after[name][i]), (name, i)
        if name.startswith("enc_w"):
            for i in (1, 2):
                assert not torch.equal(before[name][i], after[name][i]), (name, i)
    for b, a in zip(adam_before, g.optimizer.exp_avg):  # the hub's Adam state is untouched too
        assert torch.equal(b[0], a[0])


@pytest.mark.kernel_sensitive  # an optimisation outcome: must hold at every kernel level
def test_distillation_pulls_student_latents_toward_teacher():
    g, memory, distill = _group("star", n=2)
    obs = torch.as_tensor(memory.obs[1][None])
    dist = lambda: ((g.encode(obs, [1]) - g.encode(obs, [0])) ** 2).sum(-1).mean().item()
    d0 = dist()
    for _ in range(20):
        distill(0)
    assert dist() < 0.5 * d0


def test_distillation_uses_teacher_own_normaliser():
    """f_j(o) is agent j's own pipeline on the raw o: identical encoders that
    differ only in normaliser statistics still have a non-zero distill loss."""
    g, _, distill = _group("star", n=2)
    with torch.no_grad():
        for p in (*g.enc_w, *g.enc_b):
            p[1] = p[0]
        g.norm_mean[1] += 1.0
    assert distill(0)[1] > 0
    with torch.no_grad():
        g.norm_mean[1] = g.norm_mean[0]
        g.norm_var[1] = g.norm_var[0]
        for p in (*g.enc_w, *g.enc_b):
            p[1] = p[0]
    assert distill(0)[1] == pytest.approx(0.0, abs=1e-10)


def test_all_to_all_distillation_keeps_heads_fixed():
    g, _, distill = _group("all-to-all")
    before = _snapshot(g)
    distill(0)
    after = _snapshot(g)
    for name in ("head_w", "head_b", "log_std"):
        assert torch.equal(before[name], after[name])
    assert not torch.equal(before["enc_w.0"], after["enc_w.0"])


def test_peer_targets_are_each_teachers_latent_of_the_students_observations():
    g, memory, _ = _group("all-to-all")
    samples = torch.as_tensor(memory.obs[:, :8])
    with torch.no_grad():
        targets = peer_targets(g, samples, {1: [0, 2]})
        assert list(targets) == [1] and len(targets[1]) == 2
        for j, target in zip((0, 2), targets[1]):  # teacher j's own normaliser and encoder on student 1's o
            assert torch.equal(target, g.encode(samples[1:2], [j])[0])
        assert not torch.allclose(targets[1][0], g.encode(samples[1:2], [1])[0])  # not the student's own


def test_distillation_loss_is_the_mean_over_teachers_of_the_squared_latent_distance():
    g, memory, _ = _group("all-to-all")
    distiller = Distiller(g.cfg, 3)
    assert distiller.students == [0, 1, 2] and distiller.teachers == {0: [1, 2], 1: [0, 2], 2: [0, 1]}
    with torch.no_grad():  # the batch the step will draw: the same generator stream, before any student moves
        samples = memory.sample(g.cfg.distill_batch_size, torch.Generator().manual_seed(3))
        expected = [
            np.mean([((g.encode(samples[i : i + 1], [i]) - g.encode(samples[i : i + 1], [j])) ** 2).sum(-1).mean()
                     for j in distiller.teachers[i]])
            for i in range(3)
        ]  # fmt: skip
    losses = distiller.step(g, memory, torch.Generator().manual_seed(3))
    np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_distillation_stops_the_gradient_at_the_teacher():
    """The teacher's latents are constants: no gradient reaches its encoder rows, whatever the target."""
    for target in ("peer", "shuffled"):
        g, memory, distill = _group("star", n=2, distill_target=target)  # student 1 <- hub 0
        distill(0)
        for p in (*g.enc_w, *g.enc_b):
            assert p.grad[1].abs().sum() > 0 and torch.equal(p.grad[0], torch.zeros_like(p.grad[0]))
        assert g.head_w.grad is None and g.log_std.grad is None  # the heads are outside the loss


def test_distillation_waits_for_observations():
    cfg = Config(topology="ring", distill_weight=1.0)
    g = AgentGroup(["a", "b"], 3, 2, cfg)
    before = _snapshot(g)
    memory = ObservationMemory(2, 3, cfg.obs_buffer_size, cfg.probe_size)  # D_i still empty
    assert all(np.isnan(Distiller(cfg, 2).step(g, memory, torch.Generator())))
    assert all(torch.equal(v, _snapshot(g)[k]) for k, v in before.items())


def test_distillation_off_for_ippo():
    learner = LAIPPO(["a", "b"], {"a": 3, "b": 3}, {"a": 2, "b": 2}, Config(topology="none"))
    assert learner.distillers[0].pairs == [] and not learner.cfg.distills


# ---------------------------------------------------------------- per-agent Adam
def test_stacked_adam_equals_one_torch_adam_per_agent():
    torch.manual_seed(0)
    stacked = torch.nn.Parameter(torch.randn(3, 4, 5))
    singles = [torch.nn.Parameter(stacked[i].detach().clone()) for i in range(3)]
    opt = StackedAdam([stacked], 3, lr=1e-2)
    torch_opts = [torch.optim.Adam([p], lr=1e-2, eps=1e-5) for p in singles]
    for step in range(6):
        grad = torch.randn(3, 4, 5)
        agents = None if step % 2 == 0 else [1, 2]  # every other step only agents 1 and 2 step
        stacked.grad = grad.clone()
        opt.step(agents)
        for i in range(3) if agents is None else agents:
            singles[i].grad = grad[i].clone()
            torch_opts[i].step()
    for i in range(3):
        torch.testing.assert_close(stacked[i].detach(), singles[i].detach(), rtol=1e-5, atol=1e-6)
    assert opt.steps[0].tolist() == [3, 6, 6]


def test_flat_adam_step_and_clipping_equal_the_per_tensor_ones_bit_for_bit():
    torch.manual_seed(0)
    shapes = [(3, 6, 8), (3, 1, 8), (3, 8, 3), (3, 1, 3), (3, 1, 2)]
    per_tensor = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    flat = [torch.nn.Parameter(p.detach().clone()) for p in per_tensor]
    a, b = StackedAdam(per_tensor, 3, lr=2e-3), StackedAdam(flat, 3, lr=2e-3)
    for step in range(4):
        grads = [torch.randn(s) * 10 ** (step - 2) for s in shapes]  # clipped on some steps, not on others
        a.zero_grad()
        b.zero_grad(flat=True)  # the gradients accumulate into the flat buffer, as in backward
        for pa, pb, g in zip(per_tensor, flat, grads):
            pa.grad = g.clone()
            pb.grad.add_(g)
        assert b.flat_grads() and not a.flat_grads()
        torch.testing.assert_close(a.clip_grad_norm_(0.5), b.clip_grad_norm_(0.5), rtol=0, atol=0)
        a.step()
        b.step()
        for x, y in zip([*per_tensor, *a.exp_avg, *a.exp_avg_sq], [*flat, *b.exp_avg, *b.exp_avg_sq]):
            assert torch.equal(x, y)
    assert torch.equal(a.steps, b.steps)


def test_gradient_norm_is_clipped_per_agent():
    torch.manual_seed(0)
    grads = [torch.randn(2, 4, 3), torch.randn(2, 1, 3)]
    for g in grads:
        g[0] *= 100.0  # agent 0: a huge gradient
        g[1] *= 0.01  # agent 1: a small one, well under the limit
    small = [g[1].clone() for g in grads]
    before = stacked.clip_grad_norm_per_agent(grads, max_norm=0.5)
    after = torch.cat([g.reshape(2, -1) for g in grads], 1).norm(dim=1)
    assert before[0] > 0.5 > before[1]
    assert after[0].item() == pytest.approx(0.5, rel=1e-4)  # clipped to the limit over all its tensors
    for g, s in zip(grads, small):  # agent 1 is untouched by agent 0's size
        assert torch.equal(g[1], s)


# ---------------------------------------------------------------- log_std bounds
def test_log_std_pushed_past_a_bound_comes_back_and_stays_in_bounds():
    g = AgentGroup(["a"], 3, 2, Config())
    with torch.no_grad():  # raw parameters beyond both bounds (where a clamp in the forward pass left them stuck)
        g.log_std[0, 0] = torch.tensor([5.0, -5.0])
    for _ in range(3):  # the loss asks for a smaller first and a larger second std
        _, _, log_std = g(torch.zeros(1, 4, 3))
        g.gradient_step((log_std[..., 0] - log_std[..., 1]).sum())
    first, second = g.log_std.detach().flatten().tolist()
    assert first < method_i.LOG_STD_MAX and second > method_i.LOG_STD_MIN  # back inside the bounds
    for _ in range(20):  # a loss pushing outward: the parameter stops at the bounds, never beyond
        _, _, log_std = g(torch.zeros(1, 4, 3))
        g.gradient_step((log_std[..., 1] - log_std[..., 0]).sum())
    assert g.log_std.detach().flatten().tolist() == [method_i.LOG_STD_MAX, method_i.LOG_STD_MIN]
    _, logprob, _ = g.act(torch.zeros(1, 4, 3))
    assert torch.isfinite(logprob).all()


# ---------------------------------------------------------------- global RNG state
def test_learner_and_checkpoints_never_touch_global_rng(tmp_path):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    learner, obs = _trained_learner()  # build, act, learn and distil
    checkpoints.save_checkpoint(learner.state_dict(), tmp_path / "ck.pt")
    loaded = LAIPPO.from_state_dict(checkpoints.load_checkpoint(tmp_path / "ck.pt"))
    loaded.act(obs)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state))
    # the seed alone decides the initial weights and the action noise
    again, _ = _trained_learner()
    for p1, p2 in zip(learner.groups[0].parameters(), again.groups[0].parameters()):
        assert torch.equal(p1, p2)


def test_sampled_logprob_matches_gaussian_density():
    g = AgentGroup(["a", "b"], 3, 2, Config())
    obs = torch.randn(2, 5, 3)
    action, logprob, _ = g.act(obs)
    mean, _, log_std = g(obs)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(action).sum(-1)
    torch.testing.assert_close(logprob, expected.detach(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kw", [{"topology": "mesh"}, {"lr": 0.0}, {"distill_interval": 0}, {"init_log_std": 3.0}, {"activation": "gelu"}]
)
def test_bad_config_rejected(kw):
    with pytest.raises(ValueError):
        Config(**kw)


# ---------------------------------------------------------------- checkpoints
def _trained_learner(steps=2):
    agents, obs_dims, act_dims = spec.env_info("spread")
    learner = LAIPPO(
        agents, obs_dims, act_dims, Config(update_epochs=1, distill_interval=1, rollout_length=8), num_envs=2
    )
    envs = vec.VecEnv("spread", 2, seed=0)
    obs = envs.reset()
    for _ in range(steps):
        for _ in range(8):
            obs, rew, dones, term, final, _ = envs.step(learner.act_and_store(obs))
            learner.store_step(rew, dones, term, final)
        learner.learn(obs, lr_frac=0.5)
    return learner, obs


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    learner, obs = _trained_learner()
    checkpoints.save_checkpoint(learner.state_dict(), tmp_path / "ck.pt")
    loaded = LAIPPO.from_state_dict(checkpoints.load_checkpoint(tmp_path / "ck.pt"))
    a1, a2 = learner.act(obs, deterministic=True), loaded.act(obs, deterministic=True)
    for agent in a1:
        np.testing.assert_array_equal(a1[agent], a2[agent])
    for t1, t2 in zip(learner.groups[0].optimizer.exp_avg_sq, loaded.groups[0].optimizer.exp_avg_sq):
        assert torch.equal(t1, t2)
    assert loaded.num_updates == learner.num_updates and loaded.cfg == learner.cfg


def test_loading_mismatched_checkpoint_fails_clearly(tmp_path):
    """The loaders check a checkpoint against the env (checkpoints.check_compatible, a one-line
    CheckpointError); the learner itself only asserts that a state fits it."""
    learner, _ = _trained_learner(steps=1)
    state = learner.state_dict()
    other = LAIPPO(
        ["adversary_0", "adversary_1", "adversary_2", "agent_0"],
        {"adversary_0": 16, "adversary_1": 16, "adversary_2": 16, "agent_0": 14},
        {a: 5 for a in ["adversary_0", "adversary_1", "adversary_2", "agent_0"]},
    )
    with pytest.raises(CheckpointError, match="do not match"):
        checkpoints.check_compatible(state, other.agent_ids, other.obs_dims, other.act_dims)
    with pytest.raises(AssertionError):
        other.load_state_dict(state)
    state["obs_dims"] = {**state["obs_dims"], "agent_0": 17}
    with pytest.raises(CheckpointError, match="spaces for agent_0"):
        checkpoints.check_compatible(state, *spec.env_info("spread"))
    with pytest.raises(AssertionError):
        learner.load_state_dict(state)
    with pytest.raises(CheckpointError, match="not an LA-IPPO checkpoint"):
        checkpoints.check_compatible({"format": "something-else"}, *spec.env_info("spread"))
    with pytest.raises(AssertionError):
        LAIPPO.from_state_dict({"format": "something-else"})
    run = {"format": checkpoints.RUN_FORMAT, "algo": "method_i", "env": "tag", "learner": learner.state_dict(),
           "progress": {"global_step": 16}, "args": {}}  # fmt: skip
    checkpoints.save_checkpoint(run, tmp_path / "ck.pt")  # a spread learner labelled tag: the loader tells
    with pytest.raises(CheckpointError, match="do not match"):
        checkpoints.load_learner(tmp_path / "ck.pt")


# ---------------------------------------------------------------- reward scaling
def test_reward_scaling_divides_by_std_of_discounted_return(monkeypatch):
    g = AgentGroup(["a"], 2, 1, Config(gamma=0.5, norm_reward=True))
    rewards = -np.ones((4, 1, 2), np.float32)  # [T, A, E]
    dones = np.zeros((4, 1, 2), np.float32)
    dones[1, :, 1] = 1  # env 1's episode ends after t=1: its return restarts
    scaled = RewardScaler(0.5)(rewards, dones, (g.ret_mean, g.ret_var, g.ret_count))
    returns = np.array([[-1, -1.5, -1.75, -1.875], [-1, -1.5, -1, -1.5]])
    assert g.ret_var.item() == pytest.approx(returns.var(), rel=1e-3)  # prior weight 1e-4 is negligible
    np.testing.assert_allclose(scaled, rewards / returns.std(), rtol=1e-3)
    assert (scaled < 0).all()  # scaling keeps the sign
    # in the learner: --norm-reward scales with the group's statistics; without it GAE sees the rewards as stored
    seen = {}
    real_gae = ppo.compute_gae
    monkeypatch.setattr(ppo, "compute_gae", lambda r, *a: seen.update(rewards=r) or real_gae(r, *a))
    for norm_reward in (True, False):
        learner = LAIPPO(["a"], {"a": 2}, {"a": 1}, Config(norm_reward=norm_reward, rollout_length=2, update_epochs=1))
        for _ in range(2):
            learner.act_and_store({"a": np.ones((1, 2), np.float32)})
            learner.store_step({"a": -np.ones(1, np.float32)}, np.array([False]), np.array([False]), None)
        learner.learn({"a": np.ones((1, 2), np.float32)})
        scaler = learner.reward_scalers[0]
        assert (seen["rewards"] is learner.buffers[0].rewards) == (not norm_reward)
        assert (learner.groups[0].ret_count.item() > 1) == norm_reward == (scaler.discounted_return is not None)


def test_running_moments_merge_batches_like_one():
    x = torch.as_tensor(np.random.default_rng(0).normal(3.0, 2.0, size=(2, 50, 4)).astype(np.float32))
    mean, var, count = torch.zeros(2, 1, 4), torch.ones(2, 1, 4), torch.full((2,), 1e-9, dtype=torch.float64)
    update_moments(mean, var, count, x[:, :20])
    update_moments(mean, var, count, x[:, 20:])
    torch.testing.assert_close(mean, x.mean(1, keepdim=True), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(var, x.var(1, unbiased=False, keepdim=True), rtol=1e-5, atol=1e-5)
    assert count.tolist() == pytest.approx([50, 50])


# ---------------------------------------------------------------- observation memory D_i
def test_observation_memory_keeps_the_latest_observations_and_the_first_as_probe():
    memory = ObservationMemory(2, 1, size=5, probe_size=4)
    batch = lambda start, n: np.arange(start, start + n, dtype=np.float32)[None, :, None].repeat(2, 0)  # [2, n, 1]
    memory.remember(batch(0, 3))
    assert memory.count == 3 and memory.obs[0, -3:, 0].tolist() == [0, 1, 2]
    assert set(memory.sample(16, torch.Generator().manual_seed(0)).flatten().tolist()) == {0, 1, 2}  # filled rows only
    memory.remember(batch(3, 4))
    assert memory.count == 5 and memory.obs[1, :, 0].tolist() == [2, 3, 4, 5, 6]  # time order, oldest dropped
    assert memory.probe[:, 0].tolist() == [0, 1, 0, 1]  # both agents' first observations, fixed
    samples = memory.sample(8, torch.Generator().manual_seed(0))
    assert samples.shape == (2, 8, 1) and set(samples.flatten().tolist()) <= {2, 3, 4, 5, 6}


# ---------------------------------------------------------------- controls and diagnostics
def test_linear_cka():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 8, generator=g)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    assert alignment.linear_cka(x, x) == pytest.approx(1.0)
    assert alignment.linear_cka(x, 3.0 * x @ q + 1.0) == pytest.approx(1.0)  # rotation, scale and shift
    assert alignment.linear_cka(x, torch.randn(500, 8, generator=g)) < 0.1  # unrelated


def _group_with_buffer(target, seed=0):
    """(group, its memory D, its distiller) for a distill_target on the default ring topology."""
    cfg = Config(distill_target=target, distill_batch_size=16, obs_buffer_size=32)
    g = AgentGroup(["a", "b", "c"], 4, 2, cfg, torch.Generator().manual_seed(seed))
    memory = ObservationMemory(3, 4, cfg.obs_buffer_size, cfg.probe_size)
    memory.remember(np.random.default_rng(seed).normal(size=(3, 32, 4)).astype(np.float32))
    return g, memory, Distiller(cfg, 3)


def test_shuffled_control_targets_other_observations_of_a_teacher():
    g, memory, distiller = _group_with_buffer("shuffled")
    samples = torch.as_tensor(memory.obs[:, :16])
    assert distiller.targets is shuffled_targets
    with torch.no_grad():
        targets = shuffled_targets(g, samples, distiller.teachers, torch.Generator().manual_seed(1))
        every = g.encode(samples[0].expand(3, -1, -1))  # [agent, sample, latent] on student 0's observations
    (t0,) = targets[0]
    for b in range(16):  # each target is a teacher's (1 or 2, never 0 itself) latent of another observation
        hits = [(j, c) for j in range(3) for c in range(16) if torch.equal(every[j, c], t0[b])]
        assert hits and all(j != 0 and c != b for j, c in hits)


@pytest.mark.kernel_sensitive  # an optimisation outcome: must hold at every kernel level
def test_random_encoder_control_is_frozen_and_pulls_the_student():
    g, memory, distiller = _group_with_buffer("random-encoder")
    samples = torch.as_tensor(memory.obs[:, :16])
    frozen = [getattr(g, f"random_w{k}").clone() for k in range(len(g.enc_w))]
    losses = [distiller.step(g, memory, torch.Generator().manual_seed(k))[0] for k in range(30)]
    assert losses[-1] < losses[0]  # the student moves toward the random encoder's latents
    assert all(torch.equal(w, getattr(g, f"random_w{k}")) for k, w in enumerate(frozen))  # which never move
    with torch.no_grad():  # and its target is not a peer's latent
        (target,) = random_encoder_targets(g, samples, {0: [1]}, torch.Generator())[0]
        assert not torch.allclose(target, g.encode(samples[:1], [1])[0])


def test_policy_only_checkpoint_acts_like_the_full_one(tmp_path):
    from memeplex import checkpoints

    learner, obs = _trained_learner()
    state = {"format": checkpoints.RUN_FORMAT, "algo": "method_i", "env": "spread", "learner": learner.state_dict(),
             "progress": {"global_step": 16}, "args": {}}  # fmt: skip
    checkpoints.save_checkpoint(checkpoints.policy_only(state), tmp_path / "slim.pt")
    checkpoints.save_checkpoint(state, tmp_path / "full.pt")
    assert (tmp_path / "slim.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    policy, _ = checkpoints.load_policy(tmp_path / "slim.pt", "spread")
    for a, x in learner.act(obs, deterministic=True).items():
        np.testing.assert_array_equal(policy(obs, None)[a], x)
