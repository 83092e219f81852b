"""Method I: Latent-Aligned Independent PPO (LA-IPPO).

Each agent i owns one network: a running observation normaliser and an encoder
f_i(o) -> latent m_i, a Gaussian policy head g_i(m_i) with a state-independent
log_std kept in [LOG_STD_MIN, LOG_STD_MAX] (projected back after every
optimiser step, so its gradient never dies at a bound), and a value head V_i(m_i).

Phase 1, every update: independent PPO (clipped surrogate + c1 * value loss
- c2 * entropy) on the agent's own rewards, gradients flowing through the
encoder, GAE computed per environment and per agent.

Phase 2, every `distill_interval` updates: for every pair (i <- j) of the
topology, agent i takes `distill_steps` gradient steps (each on a fresh batch,
its gradient norm clipped at `distill_max_grad_norm`, by default PPO's) on

    distill_weight * mean_{j in teachers(i)} E_{o ~ D_i} ||f_i(o) - stopgrad(f_j(o))||^2

where D_i is agent i's buffer of recent raw observations and f_j includes
agent j's own observation normaliser.  Only i's encoder receives gradient; j
is never touched.  The loss is averaged over i's teachers so that the weight
means the same under every topology.

Agents that share an observation space form a "group".  A group keeps its
agents' networks (and one Adam per agent, used by both phases) in one
nn.Module with their weights stacked, and evaluates all of them at once with
batched matrix products, so acting and learning cost one call per group, not
one per agent.  The learning rate is annealed linearly to 0.

Top to bottom: Config; phase 2, the Distiller and its targets (peer_targets, and
the controls shuffled_targets and random_encoder_targets); the networks
(AgentGroup); phase 1, ppo_update; the learner LAIPPO, whose `learn` runs both.
Small helpers come from memeplex: the policy-gradient maths (GAE, clipped loss),
running statistics, rollout and observation storage, latent alignment, the
stacked per-agent Adam.  This module contains only the algorithm: no
environments, CLI, plotting or checkpoint files (memeplex.checkpoints checks a
saved learner against an env).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import numpy as np
import torch
import torch.nn as nn

from memeplex.alignment import latent_alignment, pair_alignment
from memeplex.buffers import ObservationMemory, RolloutBuffer
from memeplex.normalisation import RewardScaler, ValueNormaliser, update_moments
from memeplex.policy_gradient import LOG_SQRT_2PI
from memeplex.ppo import PPO_DIAGNOSTICS, ppo_update, rollout_batch
from memeplex.stacked import StackedAdam, orthogonal

LOG_STD_MIN, LOG_STD_MAX = -2.0, 0.5
Topology = Literal["all-to-all", "ring", "star", "none"]
TOPOLOGIES = get_args(Topology)
Activation = Literal["tanh", "relu"]
DistillTarget = Literal["peer", "shuffled", "random-encoder"]
DistillOptimizer = Literal["shared", "own"]
PPOBackward = Literal["fused", "autograd"]
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
DISTILLATION_FIELDS = (
    "topology",
    "distill_interval",
    "distill_weight",
    "obs_buffer_size",
    "distill_batch_size",
    "distill_target",
    "distill_steps",
    "distill_max_grad_norm",
    "distill_optimizer",
)
CHECKPOINT_FORMAT = "memeplex-la-ippo/1"  # LAIPPO.state_dict()["format"]


@dataclass
class Config:
    """LA-IPPO hyperparameters: every one defined here once, documented under
    its field; the training scripts generate their options from this class.
    The defaults are the configurations chosen on the tuning seeds 101-103
    (results/spread/tuning/chosen.md): IPPO's best PPO settings, which are
    also Method I's, and Method I's best distillation (ring, weight 0.1,
    every 10 updates)."""

    # -- PPO
    rollout_length: int = 128
    """steps per env per rollout"""
    lr: float = 2e-3
    """Adam learning rate (one Adam per agent, used by PPO and distillation)"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over the run (by steps, or time if --max-time ends first)"""
    gamma: float = 0.95
    """discount factor"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_coef: float = 0.2
    """PPO ratio clip epsilon"""
    ent_coef: float = 0.01
    """entropy bonus coefficient c2"""
    vf_coef: float = 0.5
    """value loss coefficient c1"""
    max_grad_norm: float = 0.5
    """per-agent gradient-norm clip"""
    update_epochs: int = 10
    """PPO epochs per rollout"""
    num_minibatches: int = 2
    """minibatches per epoch"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    obs_norm: bool = True
    """running observation normalisation, owned by each agent's encoder"""
    norm_reward: bool = False
    """scale each agent's rewards by the running std of its discounted return"""
    init_log_std: float = -0.5
    """initial log std of the Gaussian policy (kept in [LOG_STD_MIN, LOG_STD_MAX])"""
    value_norm: bool = False
    """value normalisation: running mean/std of each agent's returns; value targets normalised for the loss,
    predictions de-normalised for GAE and bootstraps (normalisation.ValueNormaliser)"""
    huber_delta: float = 0.0
    """Huber value loss with this delta (0: the squared error 0.5 (V - R)^2)"""
    clip_value_loss: bool = False
    """PPO's value clipping: the larger of the losses of V and of V_old + clip(V - V_old, +-clip_coef)"""
    ppo_backward: PPOBackward = "fused"
    """how the PPO step takes its gradients: fused = written out by hand (memeplex.ppo_fused; about 3x faster,
    equivalent up to rounding), autograd = loss.backward(); options fused does not cover (layer norm, Huber or
    clipped value losses, shared parameters, MAPPO's critic) always use autograd"""
    share_params: bool = False
    """one network (weights, normaliser, Adam) for all agents of a group, trained on all their samples (the loss
    is the mean over the agents); no distillation then: within a group there is no other network to align to"""
    # -- network
    hidden_sizes: tuple[int, ...] = (64,)
    """encoder layers before the latent layer (default: obs -> 64 -> latent, i.e. hidden [64, 64])"""
    latent_dim: int = 64
    """dimension of the latent m = f(o)"""
    activation: Activation = "relu"
    """encoder nonlinearity"""
    layer_norm: bool = False
    """layer normalisation (no learned gain or bias) after every encoder layer's nonlinearity"""
    # -- distillation (DISTILLATION_FIELDS)
    topology: Topology = "ring"
    """who distills from whom (i <- j: i moves toward j); none = IPPO"""
    distill_interval: int = 10
    """distill every k PPO updates"""
    distill_weight: float = 0.1
    """lambda on the distillation loss"""
    obs_buffer_size: int = 512
    """per-agent buffer of recent raw observations D_i that distillation samples from"""
    distill_batch_size: int = 64
    """observations sampled from D_i per distillation step"""
    distill_target: DistillTarget = "peer"
    """peer = Method I: f_j(o) of a teacher on the same o; the controls, same weight and schedule: shuffled = f_j(o')
    of a random teacher on a different observation o' of the batch (regularisation toward peer latents without
    alignment); random-encoder = a frozen randomly initialised encoder of the same shape on o"""
    distill_steps: int = 1
    """gradient steps per distillation event, each on a fresh batch o ~ D_i"""
    distill_max_grad_norm: float = -1.0
    """per-agent gradient-norm clip of a distillation step: negative = max_grad_norm (PPO's clip), 0 or inf = none"""
    distill_optimizer: DistillOptimizer = "shared"
    """the Adam of the distillation steps: shared = the agent's one Adam, which PPO uses too; own = a second Adam per
    agent over the encoder only (same lr and schedule), so distillation's gradients never enter PPO's moments"""
    # -- diagnostics
    probe_size: int = 256
    """fixed batch of observations on which the mean latent distance between agents is logged"""

    def __post_init__(self):
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        checks = [
            (self.topology in TOPOLOGIES, f"unknown topology {self.topology!r}; choose from {', '.join(TOPOLOGIES)}"),
            (
                self.activation in ACTIVATIONS,
                f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}",
            ),
            (
                self.latent_dim > 0 and all(h > 0 for h in self.hidden_sizes),
                "latent_dim and hidden sizes must be positive",
            ),
            (self.lr > 0, "lr must be positive"),
            (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1, "gamma must be in (0, 1] and gae_lambda in [0, 1]"),
            (self.clip_coef > 0, "clip_coef must be positive"),
            (self.update_epochs > 0 and self.num_minibatches > 0, "update_epochs and num_minibatches must be positive"),
            (self.rollout_length > 0 and self.probe_size > 0, "rollout_length and probe_size must be positive"),
            (self.distill_target in get_args(DistillTarget), f"unknown distill_target {self.distill_target!r}"),
            (
                self.distill_optimizer in get_args(DistillOptimizer),
                f"unknown distill_optimizer {self.distill_optimizer!r}",
            ),
            (self.max_grad_norm > 0, "max_grad_norm must be positive"),
            (self.ppo_backward in get_args(PPOBackward), f"unknown ppo_backward {self.ppo_backward!r}"),
            (self.distill_interval > 0, "distill_interval must be positive"),
            (self.huber_delta >= 0, "huber_delta must be non-negative"),
            (
                not (self.share_params and self.distills),
                "share_params leaves one network per group: nothing to distil; use topology none",
            ),
            (self.distill_weight >= 0, "distill_weight must be non-negative"),
            (self.distill_steps > 0, "distill_steps must be positive"),
            (not math.isnan(self.distill_max_grad_norm), "distill_max_grad_norm must be a number"),
            (
                self.obs_buffer_size > 0 and self.distill_batch_size > 0,
                "obs_buffer_size and distill_batch_size must be positive",
            ),
            (
                LOG_STD_MIN <= self.init_log_std <= LOG_STD_MAX,
                f"init_log_std must be in [{LOG_STD_MIN}, {LOG_STD_MAX}]",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def distills(self) -> bool:
        return self.topology != "none" and self.distill_weight > 0

    @property
    def distill_clip(self) -> float | None:
        """The gradient-norm clip of a distillation step (None: no clip)."""
        if self.distill_max_grad_norm < 0:
            return self.max_grad_norm
        return None if self.distill_max_grad_norm in (0, math.inf) else self.distill_max_grad_norm


# ----------------------------------------------------------------------------
# Phase 2: distillation, and its targets
# ----------------------------------------------------------------------------


def topology_pairs(topology: str, n: int) -> list[tuple[int, int]]:
    """Ordered (student, teacher) pairs: i <- j means i moves toward j."""
    if topology == "all-to-all":
        return [(i, j) for i in range(n) for j in range(n) if i != j]
    if topology == "ring":
        return [(i, (i + 1) % n) for i in range(n)] if n > 1 else []
    if topology == "star":
        return [(i, 0) for i in range(1, n)]
    if topology == "none":
        return []
    raise ValueError(f"unknown topology {topology!r}; choose from {', '.join(TOPOLOGIES)}")


class Distiller:
    """Phase 2 for one group of `num_agents` agents: the students and teachers of the
    topology, the distillation steps (`step`) toward the targets of cfg.distill_target,
    and how far apart the agents' encoders are (`alignment`)."""

    def __init__(self, cfg: Config, num_agents: int):
        self.cfg = cfg
        self.pairs = topology_pairs(cfg.topology, num_agents) if cfg.distills else []
        self.students = sorted({i for i, _ in self.pairs})
        self.teachers = {i: [j for s, j in self.pairs if s == i] for i in self.students}
        self.targets = DISTILL_TARGETS[cfg.distill_target]
        # alignment is measured over the topology's pairs, or every ordered pair under topology none
        self.measured_pairs = topology_pairs("all-to-all" if cfg.topology == "none" else cfg.topology, num_agents)

    def step(self, group: AgentGroup, memory: ObservationMemory, generator: torch.Generator) -> list:
        """One distillation event: cfg.distill_steps gradient steps for every student of the topology.

        Student i minimises distill_weight * mean_j ||f_i(o) - sg(target_j(o))||^2
        over its targets, on a batch o ~ D_i.  Targets are computed (without
        gradient) before any student moves, so the order of the pairs does not
        matter.  Only the students' encoders get gradients and only their Adam
        steps.  Returns the per-agent distillation loss of the first step (nan
        for non-students).
        """
        if not self.pairs or memory.count == 0:
            return [float("nan")] * len(group)
        first = [self._step(group, memory, generator) for _ in range(self.cfg.distill_steps)][0]
        return [first.get(i, float("nan")) for i in range(len(group))]

    def _step(self, group: AgentGroup, memory: ObservationMemory, generator: torch.Generator) -> dict:
        """One gradient step of every student on a fresh batch; returns {student: its loss before the step}."""
        samples = memory.sample(self.cfg.distill_batch_size, generator)  # [A, B, D]: agent i's from D_i
        students = self.students
        with torch.no_grad():  # the stop-gradient: targets are constants
            targets = self.targets(group, samples, self.teachers, generator)
        latents = group.encode(samples[students], students)
        total, losses = 0.0, {}
        for k, i in enumerate(students):
            loss_i = torch.stack([((latents[k] - target) ** 2).sum(-1).mean() for target in targets[i]]).mean()
            losses[i] = loss_i.item()
            total = total + self.cfg.distill_weight * loss_i
        # distillation's own clip (cfg.distill_clip; None: none), only the students' Adam steps
        clip = self.cfg.distill_clip
        group.gradient_step(total, students, math.inf if clip is None else clip, group.distill_optimizer)
        return losses

    @torch.no_grad()
    def alignment(self, group: AgentGroup, obs: torch.Tensor) -> tuple:
        """(linear CKA, relative latent distance) between the agents' encoders on the same raw
        observations obs [B, D], averaged over the measured pairs (i, j): CKA(f_i(o), f_j(o)), and
        mean_o ||f_i(o) - f_j(o)|| / mean_o ||f_j(o)|| (0 when the encoders agree, about 1.4 for
        unrelated latents of equal norm)."""
        return pair_alignment(group.encode_all(obs), self.measured_pairs)


# A target function maps (group, samples [A, B, D] with agent i's o ~ D_i in row i, {student i: its teachers},
# generator) to {student i: [target latents [B, latent]]}.


def peer_targets(group: AgentGroup, samples, teachers: dict, generator=None) -> dict:
    """Method I: one target per teacher j, f_j(o) through j's own pipeline (normaliser included)."""
    return {i: [group.encode(samples[i : i + 1], [j])[0] for j in js] for i, js in teachers.items()}


def shuffled_targets(group: AgentGroup, samples, teachers: dict, generator: torch.Generator) -> dict:
    """The shuffled control: one target, each sample's the latent a random teacher of i gives
    to another observation of the batch (toward the peers' latents, without alignment)."""
    out = {}
    for i, js in teachers.items():
        every = group.encode(samples[i].expand(len(group), -1, -1))  # [A, B, latent]: every agent on i's samples
        b = samples.shape[1]
        who = torch.as_tensor(js)[torch.randint(len(js), (b,), generator=generator)]
        shift = torch.randint(1, b, (b,), generator=generator) if b > 1 else torch.zeros(b, dtype=torch.long)
        out[i] = [every[who, (torch.arange(b) + shift) % b]]  # another sample of the batch, never the same one
    return out


def random_encoder_targets(group: AgentGroup, samples, teachers: dict, generator=None) -> dict:
    """The random-encoder control: one target, a frozen random encoder (never trained, no
    information from the peers) after i's own normaliser."""
    students = list(teachers)
    weights = group._tensors(students)._replace(encoder=group.random_encoder(students))
    return {i: [z] for i, z in zip(students, group._encode(weights, samples[students]))}


DISTILL_TARGETS = {"peer": peer_targets, "shuffled": shuffled_targets, "random-encoder": random_encoder_targets}


# ----------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------


class Weights(NamedTuple):
    """An agent group's weights as plain tensors, stacked along the agent axis."""

    norm_mean: torch.Tensor  # [A, 1, obs]
    norm_std: torch.Tensor  # [A, 1, obs]
    encoder: list  # [(W [A, in, out], b [A, 1, out]) per layer]
    head_w: torch.Tensor  # [A, latent, act + 1]: policy mean and value
    head_b: torch.Tensor  # [A, 1, act + 1]
    log_std: torch.Tensor  # [A, 1, act]
    std: torch.Tensor | None = None  # acting only: exp(log_std)
    log_density_const: torch.Tensor | None = None  # acting only: sum(log_std) + act * log(sqrt(2 pi))


def init_encoder(n: int, sizes: list, gain: float, generator: torch.Generator | None) -> list:
    """n stacked encoders' layers [(W [n, in, out], b [n, 1, out])]: orthogonal W, zero b."""
    return [(orthogonal(n, a, b, gain, generator), torch.zeros(n, 1, b)) for a, b in zip(sizes[:-1], sizes[1:])]


class AgentGroup(nn.Module):
    """The networks of agents that share an observation space, stored stacked.

    Every parameter has a leading agent axis, so acting and learning for all
    agents of the group is one batched matmul per layer.  Agent i's network:

        normaliser (running mean/var of i's raw observations)
        encoder    f_i(o) = act(W2 act(W1 norm_i(o) + b1) + b2) = m_i
        heads      [mean_i, V_i] = Wh m_i + bh;  log_std_i in [LOG_STD_MIN, LOG_STD_MAX]

    Methods take observations shaped [agents, batch, obs_dim].  Each agent has
    its own Adam (StackedAdam), which `gradient_step` uses for PPO and distillation.
    The passes that take the weights explicitly (`_tensors`, `_normalise`, `_encode`,
    `_forward`) serve the PPO and distillation steps of this module.  The module's
    state_dict is every tensor of the group a checkpoint keeps: besides the weights
    and normaliser, the reward scaler's running moments (ret_*) and the
    random-encoder control's frozen encoder (random_w{k}, random_b{k}).
    """

    def __init__(self, agent_ids, obs_dim, act_dim, cfg: Config, generator: torch.Generator | None = None):
        super().__init__()
        self.agent_ids = list(agent_ids)
        self.obs_dim, self.act_dim, self.cfg = obs_dim, act_dim, cfg
        self.act_fn = ACTIVATIONS[cfg.activation]
        n = len(self.agent_ids)
        agents, n = n, 1 if cfg.share_params else n  # n networks: one per agent, or one shared
        sizes = [obs_dim, *cfg.hidden_sizes, cfg.latent_dim]
        gain = math.sqrt(2) if cfg.activation == "relu" else 5 / 3
        encoder = init_encoder(n, sizes, gain, generator)
        self.enc_w = nn.ParameterList(nn.Parameter(w) for w, _ in encoder)
        self.enc_b = nn.ParameterList(nn.Parameter(b) for _, b in encoder)
        policy_w = orthogonal(n, cfg.latent_dim, act_dim, 0.01, generator)  # small init
        value_w = orthogonal(n, cfg.latent_dim, 1, 1.0, generator)  # unit init
        self.head_w = nn.Parameter(torch.cat([policy_w, value_w], dim=2))  # policy mean and value: one matmul
        self.head_b = nn.Parameter(torch.zeros(n, 1, act_dim + 1))
        if cfg.distills and cfg.distill_target == "random-encoder":  # the control's frozen targets (not trained)
            for k, (w, b) in enumerate(init_encoder(n, sizes, gain, generator)):
                self.register_buffer(f"random_w{k}", w)
                self.register_buffer(f"random_b{k}", b)
        self.log_std = nn.Parameter(torch.full((n, 1, act_dim), float(cfg.init_log_std)))
        self.register_buffer("norm_mean", torch.zeros(n, 1, obs_dim))
        self.register_buffer("norm_var", torch.ones(n, 1, obs_dim))
        self.register_buffer("norm_count", torch.full((n,), 1e-4, dtype=torch.float64))
        # reward scaling (RewardScaler): running mean/var of each agent's discounted return
        self.register_buffer("ret_mean", torch.zeros(agents, dtype=torch.float64))
        self.register_buffer("ret_var", torch.ones(agents, dtype=torch.float64))
        self.register_buffer("ret_count", torch.full((agents,), 1e-4, dtype=torch.float64))
        self.value_norm = ValueNormaliser(agents) if cfg.value_norm else None  # the value head's targets
        self.optimizer = StackedAdam(self.parameters(), n, lr=cfg.lr)
        own = cfg.distills and cfg.distill_optimizer == "own"  # distillation's Adam: the encoder's own, or PPO's
        self.distill_optimizer = StackedAdam([*self.enc_w, *self.enc_b], n, lr=cfg.lr) if own else self.optimizer
        self._acting = None

    def __len__(self):
        return len(self.agent_ids)

    # -- forward passes ------------------------------------------------------
    def _tensors(self, agents=None) -> Weights:
        """The weights as plain tensors (optionally only some agents' rows)."""
        if agents is None and not self.cfg.share_params:  # the parameters themselves: no indexing ops
            layers = list(zip(self.enc_w, self.enc_b))
            norm_std = (self.norm_var + 1e-8).sqrt()
            return Weights(self.norm_mean, norm_std, layers, self.head_w, self.head_b, self.log_std)
        sel = torch.as_tensor(range(len(self)) if agents is None else agents)
        if self.cfg.share_params:  # every agent's row is the one network's (its gradients sum into it)
            sel = torch.zeros_like(sel)
        return Weights(
            self.norm_mean[sel],
            (self.norm_var[sel] + 1e-8).sqrt(),
            [(w[sel], b[sel]) for w, b in zip(self.enc_w, self.enc_b)],
            self.head_w[sel],
            self.head_b[sel],
            self.log_std[sel],
        )

    def random_encoder(self, agents) -> list:
        """The random-encoder control's frozen encoder layers [(W, b)], the given agents' rows."""
        sel = torch.as_tensor(agents)
        return [
            (self.get_buffer(f"random_w{k}")[sel], self.get_buffer(f"random_b{k}")[sel]) for k in range(len(self.enc_w))
        ]

    def _acting_tensors(self):
        """Detached weights for acting, rebuilt only after the weights change,
        plus the policy's std and the constant part of its log-density."""
        if self._acting is None:
            with torch.no_grad():
                t = self._tensors()
                self._acting = t._replace(
                    std=t.log_std.exp(), log_density_const=t.log_std.sum(-1) + self.act_dim * LOG_SQRT_2PI
                )
        return self._acting

    def changed(self):
        """Call after any change of weights or normaliser statistics."""
        self._acting = None

    def _normalise(self, t, obs):
        return ((obs - t.norm_mean) / t.norm_std).clamp(-10.0, 10.0) if self.cfg.obs_norm else obs

    def _encode(self, t, obs, normalised=False):
        x = obs if normalised else self._normalise(t, obs)
        for w, b in t.encoder:
            x = self.act_fn(torch.baddbmm(b, x, w))
            if self.cfg.layer_norm:
                x = torch.nn.functional.layer_norm(x, x.shape[-1:])
        return x

    def _forward(self, t, obs, normalised=False):
        out = torch.baddbmm(t.head_b, self._encode(t, obs, normalised), t.head_w)
        return out[..., :-1], out[..., -1], t.log_std

    def encode(self, obs: torch.Tensor, agents=None) -> torch.Tensor:
        """Latents m_i = f_i(obs[i]) (obs [A', B, D] -> [A', B, latent]) for the
        agent indices `agents` (default all), each with its own normaliser."""
        return self._encode(self._tensors(agents), obs)

    def forward(self, obs: torch.Tensor):
        """Gaussian mean [A, B, act], value [A, B] and clamped log_std [A, 1, act]."""
        return self._forward(self._tensors(), obs)

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None):
        """(action, logprob, value) for obs [A, B, D]; actions are unclipped samples
        drawn with `generator` (the learner's own: acting never touches global RNG state)."""
        t = self._acting_tensors()
        mean, value, _ = self._forward(t, obs)
        if deterministic:
            return mean, None, value
        noise = torch.randn(mean.shape, generator=generator)
        action = torch.addcmul(mean, t.std, noise)
        # log N(action; mean, std) written in terms of the noise (same value, fewer ops)
        logprob = noise.square().sum(-1).mul_(-0.5).sub_(t.log_density_const)
        return action, logprob, value

    @torch.inference_mode()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self._forward(self._acting_tensors(), obs)[1]

    @torch.no_grad()
    def encode_all(self, obs: torch.Tensor) -> torch.Tensor:
        """Every agent's latent of the same observations: obs [B, D] -> [A, B, latent]."""
        return self._encode(self._acting_tensors(), obs.unsqueeze(0).expand(len(self), -1, -1))

    # -- changes -------------------------------------------------------------
    @torch.no_grad()
    def update_normaliser(self, obs: torch.Tensor) -> None:
        """Merge raw observations [A, N, D] into each agent's running statistics."""
        if not self.cfg.obs_norm:
            return
        if self.cfg.share_params:  # one normaliser: every agent's observations are its samples
            obs = obs.reshape(1, -1, obs.shape[-1])
        update_moments(self.norm_mean, self.norm_var, self.norm_count, obs)
        self.changed()

    def gradient_step(self, loss, agents=None, max_norm: float | None = None, optimizer: StackedAdam | None = None):
        """Backpropagate a sum of per-agent losses, clip each agent's gradient norm separately at max_norm
        (default: PPO's max_grad_norm; inf: no clip), and step the given agents' Adam (default: all) of
        `optimizer` (default: the group's one, PPO's)."""
        opt = optimizer or self.optimizer
        opt.zero_grad(flat=agents is None)  # PPO's loss reaches every parameter: gradients into the flat buffer
        loss.backward()
        self.apply_gradients(agents, max_norm, opt)

    def apply_gradients(self, agents=None, max_norm: float | None = None, optimizer: StackedAdam | None = None):
        """gradient_step after the backward pass, on the gradients in place (memeplex.ppo_fused writes PPO's
        there by hand): the per-agent clip, the Adam step, log_std's projection."""
        opt = optimizer or self.optimizer
        max_norm = self.cfg.max_grad_norm if max_norm is None else max_norm
        if math.isfinite(max_norm):
            opt.clip_grad_norm_(max_norm)
        opt.step(agents)
        with torch.no_grad():  # projected gradient: the parameter itself stays in bounds, so it can come back
            self.log_std.clamp_(LOG_STD_MIN, LOG_STD_MAX)
        self.changed()

    def set_lr(self, lr: float) -> None:
        self.optimizer.lr = self.distill_optimizer.lr = lr


# ----------------------------------------------------------------------------
# The learner
# ----------------------------------------------------------------------------


class LAIPPO:
    """LA-IPPO over a set of agents; agents sharing an observation space form
    a group, and distillation pairs only agents within a group.

    Observations and actions are exchanged as dicts agent_id -> array
    [num_envs, dim]; the training loop calls `act`, `store`, `learn`.
    Per group (the lists are parallel): its networks and Adam (`groups`), its
    rollout (`buffers`), reward scaler, observation memory and distiller.
    """

    config_class = Config  # what from_state_dict builds the config as (mappo.MAPPO: its own)

    def __init__(
        self, agent_ids, obs_dims: dict, act_dims: dict, cfg: Config | None = None, num_envs: int = 1, seed: int = 0
    ):
        self.cfg = cfg = cfg or Config()
        self.agent_ids = list(agent_ids)
        self.obs_dims = {a: int(obs_dims[a]) for a in self.agent_ids}
        self.act_dims = {a: int(act_dims[a]) for a in self.agent_ids}
        self.num_envs, self.rollout_length = num_envs, cfg.rollout_length
        # one local generator for initial weights, action noise, minibatch shuffles and distillation
        # batches: the learner never reads or reseeds global RNG state, and its checkpoint carries the stream
        self.generator = torch.Generator().manual_seed(seed)
        keys = {}
        for a in self.agent_ids:
            keys.setdefault((self.obs_dims[a], self.act_dims[a]), []).append(a)
        self.groups = [AgentGroup(ids, od, ad, cfg, self.generator) for (od, ad), ids in keys.items()]
        self.buffers = [RolloutBuffer(self.rollout_length, num_envs, len(g), g.obs_dim, g.act_dim) for g in self.groups]
        self.reward_scalers = [RewardScaler(cfg.gamma) for _ in self.groups]
        self.memories = [ObservationMemory(len(g), g.obs_dim, cfg.obs_buffer_size, cfg.probe_size) for g in self.groups]
        self.distillers = [Distiller(cfg, len(g)) for g in self.groups]
        self.critics = [None] * len(self.groups)  # MAPPO's centralised critics (mappo.MAPPO); None: the value heads
        self.num_updates = 0
        self.step_in_rollout = 0

    # -- acting -----------------------------------------------------------
    def _group_obs(self, g, obs):
        return np.stack([obs[a] for a in g.agent_ids])  # [A, E, D]

    def act(self, obs: dict, deterministic: bool = False) -> dict:
        """Actions for every agent: dict agent -> [E, act_dim] (unclipped)."""
        out = {}
        for g in self.groups:
            a, _, _ = g.act(torch.as_tensor(self._group_obs(g, obs)), deterministic, self.generator)
            for k, agent in enumerate(g.agent_ids):
                out[agent] = a[k].numpy()
        return out

    def values(self, k: int, obs: np.ndarray, head_value: torch.Tensor | None = None) -> np.ndarray:
        """Group k's value estimates [A, E] of its agents' observations [A, E, D], in units of return:
        the critic's if the group has one, else the value heads' (`head_value` if already computed)."""
        g, critic = self.groups[k], self.critics[k]
        if critic is not None:
            v, norm = critic.value(g, torch.as_tensor(obs)), critic.value_norm
        else:
            v = g.value(torch.as_tensor(obs)) if head_value is None else head_value
            norm = g.value_norm
        return (v if norm is None else norm.denormalise(v)).numpy()

    def act_and_store(self, obs: dict) -> dict:
        """Sample actions, recording obs/action/logprob/value in the rollout."""
        t, out = self.step_in_rollout, {}
        for k, (g, buf) in enumerate(zip(self.groups, self.buffers)):
            o = self._group_obs(g, obs)
            a, logp, v = g.act(torch.as_tensor(o), generator=self.generator)
            a = a.numpy()
            buf.obs[t], buf.actions[t], buf.logprobs[t], buf.values[t] = o, a, logp.numpy(), self.values(k, o, v)
            for k, agent in enumerate(g.agent_ids):
                out[agent] = a[k]
        return out

    def store_step(self, rewards: dict, dones: np.ndarray, terminated: np.ndarray, final_obs: dict | None):
        """Record the outcome of the step just taken.

        `dones[e]`: env e's episode ended at this step; `terminated[e]`: it ended
        by termination (no bootstrap); otherwise by truncation, and the value of
        `final_obs` (the real last observation) is bootstrapped.
        """
        t = self.step_in_rollout
        for k, (g, buf) in enumerate(zip(self.groups, self.buffers)):
            buf.rewards[t] = np.stack([rewards[a] for a in g.agent_ids])
            buf.dones[t] = dones
            buf.next_values[t] = 0.0
            if dones.any():
                trunc = dones & ~terminated
                if trunc.any():
                    v = self.values(k, self._group_obs(g, final_obs))  # [A, E]
                    buf.next_values[t] = np.where(trunc, v, 0.0)
        self.step_in_rollout += 1

    # -- learning ---------------------------------------------------------
    def learn(self, next_obs: dict, lr_frac: float = 0.0) -> dict:
        """PPO on the stored rollout, then distillation every distill_interval
        updates.  `lr_frac` in [0, 1] is the fraction of the run completed (for
        linear LR annealing).  Returns diagnostics."""
        cfg = self.cfg
        assert self.step_in_rollout == self.rollout_length, "rollout not full"
        lr_scale = max(0.0, 1.0 - lr_frac) if cfg.anneal_lr else 1.0
        lr = cfg.lr * lr_scale
        per_agent = {}
        for k, (g, buf, scaler, memory) in enumerate(
            zip(self.groups, self.buffers, self.reward_scalers, self.memories)
        ):
            g.set_lr(lr)
            if self.critics[k] is not None:
                self.critics[k].set_lr_scale(lr_scale)
            batch = rollout_batch(self, k, buf, scaler, next_obs)
            diag = ppo_update(g, batch, self.generator, self.critics[k])
            # normaliser statistics move only after the update, so the update
            # saw exactly the pipeline that generated the actions
            g.update_normaliser(batch["obs"])
            # agent i's buffer D_i: its recent raw observations in time order
            memory.remember(batch["obs"].numpy())
            log_std = g.log_std.detach().mean((1, 2)).expand(len(g)).tolist()  # shared: the one network's
            for k, agent in enumerate(g.agent_ids):
                per_agent[agent] = {key: vals[k] for key, vals in diag.items()}
                per_agent[agent]["log_std"] = log_std[k]
                per_agent[agent]["distill_loss"] = float("nan")
        self.num_updates += 1
        self.step_in_rollout = 0
        if cfg.distills and self.num_updates % cfg.distill_interval == 0:
            for g, memory, distiller in zip(self.groups, self.memories, self.distillers):
                for k, loss in enumerate(distiller.step(g, memory, self.generator)):
                    per_agent[g.agent_ids[k]]["distill_loss"] = loss
        return learn_stats(self, lr, per_agent)

    def alignment(self, obs: dict, prefix: str = "") -> dict:
        """{prefix + "cka", prefix + "rel_distance"}: Distiller.alignment of every group of two or more
        agents on its agents' raw observations obs (dict agent -> [..., D]) pooled, averaged over groups."""
        if not obs:
            return {}
        pooled = lambda g: torch.as_tensor(np.concatenate([np.reshape(obs[a], (-1, g.obs_dim)) for a in g.agent_ids]))
        out = [d.alignment(g, pooled(g)) for g, d in zip(self.groups, self.distillers) if len(g) > 1]
        cka, distance = np.mean(out, axis=0).tolist() if out else (math.nan, math.nan)
        return {prefix + "cka": cka, prefix + "rel_distance": distance}

    # -- persistence ---------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.cfg),
            "agent_ids": list(self.agent_ids),
            "obs_dims": dict(self.obs_dims),
            "act_dims": dict(self.act_dims),
            "num_updates": self.num_updates,
            "groups": [
                {
                    "agent_ids": list(g.agent_ids),
                    "params": g.state_dict(),
                    "optimizer": g.optimizer.state_dict(),
                    "distill_optimizer": None
                    if g.distill_optimizer is g.optimizer
                    else g.distill_optimizer.state_dict(),
                    "obs_buffer": torch.as_tensor(memory.obs),
                    "obs_buffer_count": memory.count,
                    "probe": memory.probe,
                    # --norm-reward: each agent's discounted return so far in every env, carried across rollouts
                    "discounted_return": None if (r := scaler.discounted_return) is None else torch.as_tensor(r),
                }
                for g, memory, scaler in zip(self.groups, self.memories, self.reward_scalers)
            ],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Load a state_dict of a learner on the same agents and spaces (memeplex.checkpoints.check_compatible
        tells a user's checkpoint that is not one; here that is a programming error)."""
        spaces = (state.get("format"), list(state["agent_ids"]), state["obs_dims"], state["act_dims"])
        assert spaces == (CHECKPOINT_FORMAT, self.agent_ids, self.obs_dims, self.act_dims), "not this learner's state"
        self.num_updates = int(state["num_updates"])
        for g, memory, scaler, saved in zip(self.groups, self.memories, self.reward_scalers, state["groups"]):
            g.load_state_dict(saved["params"])
            g.changed()
            if saved.get("optimizer") is not None:  # None in a policy-only checkpoint (checkpoints.policy_only)
                g.optimizer.load_state_dict(saved["optimizer"])
                if g.distill_optimizer is not g.optimizer:
                    g.distill_optimizer.load_state_dict(saved["distill_optimizer"])
                memory.obs = saved["obs_buffer"].numpy().copy()
                memory.count = int(saved["obs_buffer_count"])
                ret = saved.get("discounted_return")  # absent in checkpoints older than this field
                scaler.discounted_return = None if ret is None else ret.numpy().copy()
            memory.probe = saved["probe"]
        self.generator.set_state(state["generator"])

    @classmethod
    def from_state_dict(cls, state: dict, num_envs: int = 1) -> LAIPPO:
        """A learner loaded from a state_dict (memeplex.checkpoints.check_compatible checks a user's first)."""
        assert state.get("format") == CHECKPOINT_FORMAT, f"not an LA-IPPO state (format {state.get('format')!r})"
        config_class = cls.config_class  # a MAPPO state's actors load as LA-IPPO (its config's critic fields aside)
        config = config_class(
            **{f.name: state["config"][f.name] for f in dataclasses.fields(config_class) if f.name in state["config"]}
        )
        learner = cls(state["agent_ids"], state["obs_dims"], state["act_dims"], config, num_envs=num_envs)
        learner.load_state_dict(state)
        return learner


def learn_stats(learner: LAIPPO, lr: float, per_agent: dict) -> dict:
    """LAIPPO.learn's diagnostics: the means over agents (nan-skipping), the latent diagnostics, and per agent."""
    stats = {"lr": lr}
    for key in (*PPO_DIAGNOSTICS, "log_std", "distill_loss"):
        vals = [d[key] for d in per_agent.values() if not math.isnan(d[key])]
        stats[key] = float(np.mean(vals)) if vals else float("nan")
    diagnostics = [
        latent_alignment(g.encode_all(m.probe)) for g, m in zip(learner.groups, learner.memories) if len(g) > 1
    ]
    stats["latent_distance"] = float(np.mean([d for d, _ in diagnostics])) if diagnostics else float("nan")
    stats["latent_cka"] = float(np.mean([c for _, c in diagnostics])) if diagnostics else float("nan")
    # on the latest rollout's observations, every `stride`-th: about probe_size in all, so the cost stays small
    stride = lambda m: max(1, m.latest.shape[0] * m.latest.shape[1] // learner.cfg.probe_size)
    latest = {
        a: m.latest[k, :: stride(m)]
        for g, m in zip(learner.groups, learner.memories)
        for k, a in enumerate(g.agent_ids)
    }
    stats.update(learner.alignment(latest, "rollout_") if all(m.latest is not None for m in learner.memories) else {})
    stats["per_agent"] = per_agent
    return stats
