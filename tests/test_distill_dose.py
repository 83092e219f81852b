"""The distillation dose: distillation's own gradient clip and number of steps per event, and the
alignment it achieves, measured on the agents' observations (latest rollout, test episodes)."""

import copy
import json
import math

import numpy as np
import pytest
import torch

import train_method_i
from memeplex.alignment import pair_alignment
from memeplex.buffers import ObservationMemory
from method_i import AgentGroup, Config, Distiller

N, OBS = 3, 6


def _setup(**kw):
    """(config, group, memory D with observations) of a ring of N agents: the distillation's inputs."""
    torch.manual_seed(0)
    cfg = Config(topology="ring", **kw)
    group = AgentGroup([f"a{i}" for i in range(N)], OBS, 2, cfg)
    memory = ObservationMemory(N, OBS, cfg.obs_buffer_size, cfg.probe_size)
    memory.remember(np.random.default_rng(0).normal(size=(N, 100, OBS)).astype(np.float32))
    return cfg, group, memory


def _spy_clip(group) -> list:
    """Record every max_norm the group's optimizer clips at (the clip still happens)."""
    calls, clip = [], group.optimizer.clip_grad_norm_
    group.optimizer.clip_grad_norm_ = lambda max_norm: (calls.append(max_norm), clip(max_norm))[1]
    return calls


def test_the_default_clip_is_ppos_and_0_or_inf_mean_none():
    assert Config().distill_clip == Config().max_grad_norm == 0.5
    assert Config(max_grad_norm=2.0).distill_clip == 2.0
    assert Config(distill_max_grad_norm=0).distill_clip is None
    assert Config(distill_max_grad_norm=math.inf).distill_clip is None
    assert Config(distill_max_grad_norm=3.0).distill_clip == 3.0
    with pytest.raises(ValueError, match="distill_steps"):
        Config(distill_steps=0)


@pytest.mark.parametrize("own, expected", [(3.0, [3.0]), (0.0, []), (math.inf, []), (-1.0, [0.5])])
def test_distillation_clips_at_its_own_norm_not_ppos(own, expected):
    cfg, group, memory = _setup(distill_max_grad_norm=own, distill_weight=10.0)
    calls = _spy_clip(group)
    Distiller(cfg, N).step(group, memory, torch.Generator().manual_seed(0))
    assert calls == expected


def _norms_at_step(**kw) -> list:
    """Every student's gradient norm as Adam receives it in one distillation step."""
    cfg, group, memory = _setup(distill_weight=10.0, **kw)
    seen, step = [], group.optimizer.step
    group.optimizer.step = lambda agents=None: (seen.append(_grad_norms(group)), step(agents))[1]
    Distiller(cfg, N).step(group, memory, torch.Generator().manual_seed(0))
    return seen[0]


def test_the_gradient_reaches_adam_clipped_at_distillations_own_norm():
    assert min(_norms_at_step(distill_max_grad_norm=0)) > 0.5  # unclipped: above PPO's clip
    assert _norms_at_step(distill_max_grad_norm=2.0) == pytest.approx([2.0] * N, rel=1e-4)
    assert _norms_at_step() == pytest.approx([0.5] * N, rel=1e-4)  # default: PPO's


def _grad_norms(group) -> list:
    grads = [p.grad.reshape(N, -1) for p in group.optimizer.params if p.grad is not None]
    return torch.cat(grads, dim=1).norm(dim=1).tolist()


@pytest.mark.parametrize("steps", [1, 4])
def test_distill_steps_is_the_number_of_adam_steps_per_event(steps):
    cfg, group, memory = _setup(distill_steps=steps)
    before = group.optimizer.steps.clone()
    losses = Distiller(cfg, N).step(group, memory, torch.Generator().manual_seed(0))
    made = group.optimizer.steps - before  # [tensors, agents]: Adam steps per tensor and agent
    assert made.max().item() == steps and made.min().item() == 0  # encoders moved, heads and log_std not
    assert all(loss > 0 for loss in losses)


def test_the_default_step_is_todays_step_bit_for_bit():
    """distill_steps 1, clip at max_grad_norm: the group's own gradient step (AgentGroup.gradient_step)."""
    cfg, group, memory = _setup()
    old = copy.deepcopy(group)
    distiller = Distiller(cfg, N)
    distiller.step(group, memory, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)  # today's step, written out
    samples = memory.sample(cfg.distill_batch_size, generator)
    with torch.no_grad():
        targets = distiller.targets(old, samples, distiller.teachers, generator)
    latents = old.encode(samples[distiller.students], distiller.students)
    total = 0.0
    for k, i in enumerate(distiller.students):
        total = total + cfg.distill_weight * torch.stack([((latents[k] - targets[i][0]) ** 2).sum(-1).mean()]).mean()
    old.gradient_step(total, distiller.students)
    for (name, a), b in zip(group.state_dict().items(), old.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("which", ["shared", "own"])
def test_own_optimizer_keeps_distillation_out_of_ppos_adam(which):
    """own: the step goes through a second Adam over the encoder (PPO's moments and step counts untouched);
    shared: through PPO's. Either way the students' encoders move."""
    cfg, group, memory = _setup(distill_optimizer=which)
    ppo_before, enc_before = copy.deepcopy(group.optimizer.state_dict()), group.enc_w[0].detach().clone()
    Distiller(cfg, N).step(group, memory, torch.Generator().manual_seed(0))
    ppo_after = group.optimizer.state_dict()
    untouched = all(torch.equal(a, b) for a, b in zip(ppo_before["exp_avg_sq"], ppo_after["exp_avg_sq"]))
    assert untouched == (which == "own") and torch.equal(ppo_before["steps"], ppo_after["steps"]) == untouched
    assert (group.distill_optimizer is group.optimizer) == (which == "shared")
    assert not torch.equal(group.enc_w[0], enc_before)
    with pytest.raises(ValueError, match="distill_optimizer"):
        Config(distill_optimizer="sgd")


def test_pair_alignment_is_1_and_0_for_identical_encoders_and_lower_for_unrelated():
    z = torch.randn(1, 500, 8).expand(3, -1, -1)
    assert pair_alignment(z, [(0, 1), (1, 2)]) == pytest.approx((1.0, 0.0))
    z = torch.randn(2, 500, 8)
    cka, distance = pair_alignment(z, [(0, 1)])
    assert cka < 0.2 and distance > 1.0
    assert all(math.isnan(v) for v in pair_alignment(z, []))


# ---------------------------------------------------------------- learning outcomes
SHORT = ["--max-steps", "6144", "--num-envs", "4", "--rollout-length", "64", "--update-epochs", "4",
         "--eval-interval", "6144", "--eval-episodes", "4", "--final-eval-episodes", "10", "--no-progress",
         "--torch-threads", "1"]  # fmt: skip
HIGH_DOSE = "--distill-interval 1 --distill-steps 100 --distill-weight 1 --distill-max-grad-norm 0".split()


def _run(tmp_path, seed: int, dose: list) -> tuple:
    """(summary.json, updates.csv rows) of a short spread run at a dose."""
    argv = [*SHORT, "--seed", str(seed), "--run-name", "d", *dose, "--results-dir", str(tmp_path / "r"),
            "--checkpoint-dir", str(tmp_path / "c")]  # fmt: skip
    assert train_method_i.main(argv) == 0
    run = tmp_path / "r" / "spread" / "method_i" / f"d_s{seed}"
    rows = (run / "updates.csv").read_text().splitlines()
    header = rows[0].split(",")
    updates = [dict(zip(header, map(float, r.split(",")))) for r in rows[1:]]
    return json.loads((run / "summary.json").read_text()), updates


@pytest.mark.kernel_sensitive
@pytest.mark.parametrize("seed", [101, 102])
def test_a_high_dose_makes_the_encoders_of_a_ring_agree_on_test_observations(tmp_path, seed):
    summary, updates = _run(tmp_path, seed, HIGH_DOSE)
    assert summary["test_cka"] > 0.95 and summary["test_rel_distance"] < 0.2
    assert updates[-1]["rollout_rel_distance"] < 0.2  # about 1 for unrelated encoders (the dose 0 test)


@pytest.mark.kernel_sensitive
@pytest.mark.parametrize("dose", [["--topology", "none"], ["--distill-weight", "0"]])
def test_at_dose_0_the_encoders_do_not_move_toward_each_other(tmp_path, dose):
    """Unrelated encoders stay about as far apart as at the start (relative distance near 1; agreeing
    ones are below 0.2, as a high dose makes them), with a CKA clearly below a high dose's."""
    summary, updates = _run(tmp_path, 101, dose)
    assert summary["test_rel_distance"] > 0.5 and updates[-1]["rollout_rel_distance"] > 0.5
    high, _ = _run(tmp_path / "high", 101, HIGH_DOSE)
    assert summary["test_cka"] < high["test_cka"] - 0.05
