"""MAPPO and the PPO options it brought: the critic is centralised and the actors are not, value
normalisation is undone wherever a value is used, parameter sharing shares, and train_mappo.py runs,
evaluates and resumes exactly like the other PPO trainers."""

import signal

import numpy as np
import pytest
import torch

import eval_method_i
import train_mappo
import train_method_i
import train_ppo
from conftest import dirs
from mappo import MAPPO, MAPPOConfig
from memeplex import checkpoints
from memeplex.errors import UsageError
from memeplex.normalisation import ValueNormaliser
from memeplex.policy_gradient import compute_gae, value_loss
from memeplex.ppo import rollout_batch
from method_i import LAIPPO, AgentGroup, Config
from test_faults import SMALL, TAG, outcome, run_dirs, stop_after

AGENTS = ["a0", "a1", "a2"]
OBS, ACT = 5, 2


def learner(cls=MAPPO, **cfg):
    config = (MAPPOConfig if cls is MAPPO else Config)(**cfg)
    return cls(AGENTS, dict.fromkeys(AGENTS, OBS), dict.fromkeys(AGENTS, ACT), config, num_envs=4, seed=3)


@pytest.mark.parametrize("share", [True, False])
def test_the_critic_sees_every_agent_and_each_actor_only_its_own(share):
    """Perturbing agent j's observation leaves agent i's action distribution as it was and moves the critic's
    value of agent i (and of every agent)."""
    m = learner(share_params=share)
    g, critic = m.groups[0], m.critics[0]
    obs = torch.randn(3, 8, OBS, generator=torch.Generator().manual_seed(0))
    moved = obs.clone()
    moved[2] += 1.0  # agent j = 2
    with torch.no_grad():
        (mean, _, log_std), (mean2, _, log_std2) = g(obs), g(moved)
        value, value2 = critic.value(g, obs), critic.value(g, moved)
    assert torch.equal(mean[:2], mean2[:2]) and torch.equal(log_std, log_std2)  # agents 0 and 1 act as before
    assert not torch.allclose(mean[2], mean2[2])  # agent 2's own observation moved its actions
    assert value.shape == (3, 8)
    assert (value - value2).abs().amin(dim=1).gt(0).all()  # every agent's value, agent 0's and 1's included


def test_the_ablation_critic_sees_only_each_agents_own_observation():
    """critic_input own: agent 2's observation moves agent 2's value and no other agent's."""
    m = learner(critic_input="own")
    g, critic = m.groups[0], m.critics[0]
    obs = torch.randn(3, 8, OBS, generator=torch.Generator().manual_seed(0))
    moved = obs.clone()
    moved[2] += 1.0
    with torch.no_grad():
        value, value2 = critic.value(g, obs), critic.value(g, moved)
    assert value.shape == (3, 8) and torch.equal(value[:2], value2[:2])
    assert (value[2] - value2[2]).abs().gt(0).all()
    with pytest.raises(ValueError, match="critic_input"):
        MAPPOConfig(critic_input="global")


def test_value_normaliser_is_undone_exactly():
    torch.manual_seed(0)
    norm = ValueNormaliser(2)
    first, second = torch.randn(2, 300) * 7 + 3, torch.randn(2, 100) * 7 - 2
    norm.update(first)
    norm.update(second)
    both = torch.cat([first, second], 1).double()
    assert torch.allclose(norm.mean, both.mean(1)) and torch.allclose(norm.var, both.var(1, unbiased=False))
    z = norm.normalise(both.float())
    assert torch.allclose(z.mean(1), torch.zeros(2), atol=1e-5) and torch.allclose(z.std(1), torch.ones(2), atol=1e-2)
    assert torch.allclose(norm.denormalise(z), both.float(), atol=1e-4)


@pytest.mark.parametrize("cls", [MAPPO, LAIPPO])
def test_value_targets_are_normalised_and_values_denormalised_for_gae(cls):
    """With value normalisation the rollout's values (what GAE uses) are the network's outputs de-normalised
    with the statistics before the update; PPO's targets are GAE's returns normalised with the statistics
    after merging those returns, and its old values the network's raw outputs."""
    m = learner(cls, value_norm=True, topology="none")
    norm = m.critics[0].value_norm if cls is MAPPO else m.groups[0].value_norm
    norm.mean.fill_(5.0)
    norm.var.fill_(4.0)
    rng = np.random.default_rng(0)
    raw = []
    for _ in range(m.rollout_length):
        obs = {a: rng.normal(size=(4, OBS)).astype(np.float32) for a in AGENTS}
        o = torch.as_tensor(np.stack([obs[a] for a in AGENTS]))
        raw.append(m.critics[0].value(m.groups[0], o) if cls is MAPPO else m.groups[0].value(o))
        m.act_and_store(obs)
        m.store_step(
            {a: rng.normal(size=4).astype(np.float32) for a in AGENTS}, np.zeros(4, bool), np.zeros(4, bool), None
        )
    buf = m.buffers[0]
    raw = torch.stack(raw).numpy()  # [T, A, E]
    np.testing.assert_allclose(buf.values, 5.0 + 2.0 * raw, rtol=1e-5, atol=1e-5)
    last = m.values(0, np.stack([obs[a] for a in AGENTS]))  # with the statistics before the update
    batch = rollout_batch(m, 0, buf, m.reward_scalers[0], obs)
    _, ret = compute_gae(buf.rewards, buf.values, np.concatenate([buf.values[1:], last[None]]), buf.dones, m.cfg.gamma,
                         m.cfg.gae_lambda)  # fmt: skip
    flat = lambda x: np.moveaxis(x, 1, 0).reshape(3, -1)
    assert not np.isclose(norm.mean.numpy(), 5.0).any()  # the statistics took in the returns
    np.testing.assert_allclose(norm.denormalise(batch["returns"]).numpy(), flat(ret), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(batch["values"].numpy(), flat(raw), rtol=1e-4, atol=1e-4)


def test_value_loss_options():
    v, target, old = torch.tensor([[0.0, 30.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 29.0]])
    assert torch.allclose(value_loss(v, target), torch.tensor([(0.5 + 450.0) / 2]))
    assert torch.allclose(value_loss(v, target, huber_delta=10.0), torch.tensor([(0.5 + 10 * (30 - 5)) / 2]))
    # clipped: V_old + clip(V - V_old, +-0.2) = [0.3, 29.2]; the larger loss per sample
    clipped = value_loss(v, target, old, clip_coef=0.2)
    assert torch.allclose(clipped, torch.tensor([(max(0.5, 0.5 * 0.7**2) + max(450.0, 0.5 * 29.2**2)) / 2]))


def test_parameter_sharing_shares():
    """One set of weights for the group, whose gradient is the sum of every agent's."""
    cfg = Config(share_params=True, topology="none")
    g = AgentGroup(AGENTS, OBS, ACT, cfg, torch.Generator().manual_seed(0))
    assert all(p.shape[0] == 1 for p in g.parameters())
    obs = torch.randn(3, 6, OBS, generator=torch.Generator().manual_seed(1))
    mean, value, _ = g(obs)
    assert torch.equal(g(obs[:1].expand(3, -1, -1))[0][0], g(obs[:1].expand(3, -1, -1))[0][2])  # one policy
    grads = []
    for k in range(3):
        g.zero_grad()
        (g(obs)[0][k].sum() + g(obs)[1][k].sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in g.parameters() if p.grad is not None]))
        assert grads[-1].abs().sum() > 0  # agent k's samples reach the shared weights
    g.zero_grad()
    (mean.sum() + value.sum()).backward()
    total = torch.cat([p.grad.flatten() for p in g.parameters() if p.grad is not None])
    assert torch.allclose(total, sum(grads), atol=1e-5)


def test_shared_learner_trains_one_network_and_refuses_distillation(tmp_path):
    m = learner(LAIPPO, share_params=True, topology="none", value_norm=True)
    rng = np.random.default_rng(0)
    before = [p.detach().clone() for p in m.groups[0].parameters()]
    for _ in range(m.rollout_length):
        obs = {a: rng.normal(size=(4, OBS)).astype(np.float32) for a in AGENTS}
        m.act_and_store(obs)
        m.store_step(
            {a: rng.normal(size=4).astype(np.float32) for a in AGENTS}, np.zeros(4, bool), np.zeros(4, bool), None
        )
    stats = m.learn(obs)
    assert all(not torch.equal(b, p) for b, p in zip(before, m.groups[0].parameters()) if b.shape[-1] != 1)
    assert stats["latent_distance"] == 0.0  # every agent is the one network
    with pytest.raises(ValueError, match="nothing to distil"):
        Config(share_params=True)  # the default topology distils
    with pytest.raises(UsageError, match="nothing to distil"):
        train_method_i.main(["--share-params", *dirs(tmp_path)])  # Method I's default distils
    assert not any(tmp_path.rglob("*_s1"))  # and leaves no run behind


@pytest.mark.parametrize("env_flags", [[], TAG], ids=["spread", "tag"])
def test_tiny_mappo_run_trains_loads_and_evaluates(env_flags, tmp_path):
    assert train_mappo.main([*SMALL, *env_flags, "--run-name", "r", *dirs(tmp_path)]) == 0
    env = "tag" if env_flags else "spread"
    results, ckpt = run_dirs(tmp_path, env, "mappo")
    state = checkpoints.load_checkpoint(ckpt / "latest.pt")
    assert state["algo"] == "mappo" and len(state["learner"]["critics"]) == (2 if env == "tag" else 1)
    policy, _ = checkpoints.load_policy(ckpt / "latest.pt", env)  # the actors, as every algorithm's policy loads
    assert not checkpoints.resumable(checkpoints.policy_only(state))
    assert eval_method_i.main(["--checkpoint", str(ckpt / "latest.pt"), "--episodes", "2"]) == 0
    assert (results / "summary.json").exists()


def test_ippo_options_run(tmp_path):
    """Value normalisation, the MAPPO value losses, layer norm and sharing as IPPO options."""
    flags = ["--value-norm", "--huber-delta", "10", "--clip-value-loss", "--layer-norm", "--share-params"]
    assert train_ppo.main([*SMALL, *flags, "--run-name", "r", *dirs(tmp_path)]) == 0


def tensors(x):
    """Every tensor and number of a nested state, flattened in order."""
    if isinstance(x, dict):
        return [t for k in sorted(x, key=str) for t in tensors(x[k])]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in tensors(v)]
    return [x]


def test_sigterm_then_resume_is_the_uninterrupted_run(tmp_path, monkeypatch):
    """The critics, their Adam and value normalisers are in the checkpoint: a run stopped by SIGTERM and
    resumed ends with the uninterrupted run's checkpoint tensors, rows and summary."""
    argv = [*SMALL, "--run-name", "r"]
    assert train_mappo.main([*argv, *dirs(tmp_path / "whole")]) == 0
    stop_after(monkeypatch, 3)
    assert train_mappo.main([*argv, *dirs(tmp_path / "parted")]) == 128 + signal.SIGTERM
    monkeypatch.undo()
    assert train_mappo.main([*dirs(tmp_path / "parted"), "--run-name", "r", "--resume"]) == 0
    (whole, whole_ckpt), (parted, parted_ckpt) = (
        run_dirs(tmp_path / d, "spread", "mappo") for d in ("whole", "parted")
    )
    assert outcome(parted) == outcome(whole)
    a, b = (checkpoints.load_checkpoint(d / "latest.pt")["learner"] for d in (whole_ckpt, parted_ckpt))
    assert len(tensors(a["critics"])) > 10
    for x, y in zip(tensors(a), tensors(b), strict=True):
        assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
