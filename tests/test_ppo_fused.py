"""The hand-written PPO step (memeplex.ppo_fused) takes the same gradients as autograd on ppo.ppo_update's loss,
and a whole update with it lands where the autograd update lands (up to rounding)."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memeplex import ppo, ppo_fused  # noqa: E402
from method_i import AgentGroup, Config  # noqa: E402

A, B, OBS, ACT = 3, 256, 18, 5


def group_and_minibatch(cfg: Config, seed: int = 0):
    """A group with trained-looking weights and a minibatch whose ratios are partly clipped, partly exactly 1."""
    gen = torch.Generator().manual_seed(seed)
    group = AgentGroup(["a", "b", "c"], OBS, ACT, cfg, gen)
    with torch.no_grad():  # move every weight off its initialisation, log_std off its constant start
        for p in group.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    obs = torch.randn(A, B, OBS, generator=gen)
    actions = torch.randn(A, B, ACT, generator=gen)
    with torch.no_grad():
        mean, _, log_std = group._forward(group._tensors(), obs, normalised=True)
        logprob = (-0.5 * ((actions - mean) / log_std.exp()) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    noise = 0.3 * torch.randn(A, B, generator=gen)
    noise[:, : B // 4] = 0.0  # ratio exactly 1: the two branches of the clipped objective tie
    old_logprob = (logprob + noise).detach()
    adv, returns = torch.randn(A, B, generator=gen), torch.randn(A, B, generator=gen)
    return group, (obs, actions, old_logprob[..., None], adv[..., None], returns[..., None])


def gradients_and_diagnostics(group, minibatch, fused: bool):
    """The step's gradients (flat, in the Adam's order) and diagnostics, with the Adam step left out."""
    group.apply_gradients = lambda *args, **kwargs: None
    if fused:
        grads = ppo_fused.GradientViews(group)
        diag = ppo_fused.minibatch_step(group, grads, *(t.transpose(1, 2) for t in minibatch))
    else:
        diag = ppo.autograd_step(group, minibatch)
    return torch.cat([p.grad.flatten() for p in group.optimizer.params]).clone(), diag


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("norm_adv", [True, False])
def test_gradients_equal_autograds(activation, norm_adv):
    cfg = Config(topology="none", activation=activation, norm_adv=norm_adv, hidden_sizes=(32, 48), latent_dim=40)
    (g1, mb), (g2, _) = group_and_minibatch(cfg), group_and_minibatch(cfg)
    ref, ref_diag = gradients_and_diagnostics(g1, mb, fused=False)
    got, diag = gradients_and_diagnostics(g2, mb, fused=True)
    clip_frac = ref_diag[4]
    assert (clip_frac > 0.1).all() and (clip_frac < 0.9).all()  # both branches of the objective are exercised
    assert ref.abs().max() > 1e-2  # not a vacuous comparison of zeros
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(diag, ref_diag, rtol=1e-5, atol=1e-6)


def test_an_update_lands_where_autograds_does():
    """A whole ppo_update (2 epochs x 2 minibatches: the packing, the shuffles, the clip, Adam and the log_std
    projection) from the same state: both move the weights alike. Adam's first steps are lr * sign(gradient) for
    tiny gradients, so rounding moves a weight by up to ~1e-3 of its step; later, a ratio that lands on the other
    side of the clip on one path alone makes PPO's updates diverge as any rounding change does (more epochs)."""
    cfg = Config(topology="none", update_epochs=2)
    start, (obs, actions, old_logprob, adv, returns) = group_and_minibatch(cfg, seed=1)
    batch = {"obs": obs, "actions": actions, "logprobs": old_logprob[..., 0], "advantages": adv[..., 0],
             "returns": returns[..., 0]}  # fmt: skip
    after = {}
    for backward in ("autograd", "fused"):
        group, _ = group_and_minibatch(dataclasses.replace(cfg, ppo_backward=backward), seed=1)
        ppo.ppo_update(group, batch, torch.Generator().manual_seed(0))
        after[backward] = torch.cat([p.detach().flatten() for p in group.parameters()])
    before = torch.cat([p.detach().flatten() for p in start.parameters()])
    moved, apart = (after["autograd"] - before).abs().max(), (after["fused"] - after["autograd"]).abs().max()
    assert moved > 5e-3 and apart < 1e-2 * moved


@pytest.mark.parametrize(
    "change",
    [
        dict(layer_norm=True),
        dict(huber_delta=1.0),
        dict(clip_value_loss=True),
        dict(share_params=True),
        dict(ppo_backward="autograd"),
    ],  # fmt: skip
)
def test_options_it_does_not_cover_take_autograd(change):
    assert ppo_fused.applies(Config(topology="none"))
    assert not ppo_fused.applies(Config(topology="none", **change))
    assert not ppo_fused.applies(Config(topology="none"), critic=object())  # MAPPO's centralised critic
