"""MAPPO: PPO with decentralised actors and a centralised critic per team.

Every agent acts on its own observation through the actors of method_i (an
AgentGroup per team: observation normaliser, encoder, Gaussian policy head;
by default one network shared by the team's agents).  Each team's critic is a
separate MLP on the global state s = concat_i(norm_i(o_i)), the team's agents'
normalised observations concatenated, with one value output per agent (mpe2's
spread rewards are partly local, so the agents' returns differ):

    V(s) = [V_1(s), ..., V_A(s)]

GAE uses the critic's values; PPO's actor loss is memeplex.ppo.ppo_update's, and
the value loss trains the critic alone, with its own Adam (its own learning
rate).  Execution uses the actors only: a MAPPO checkpoint's learner is an
LA-IPPO state (the actors) plus `critics`, so it loads as a policy like an
LA-IPPO one (memeplex.checkpoints.load_policy), and the critics, their Adam and
value normalisers are what --resume needs besides.

On tag each team (the predators, the prey) is one group with its own critic:
the state of a team is its own agents' observations, never the other team's.

Top to bottom: MAPPOConfig (MAPPO's defaults), CentralCritic, MAPPO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn as nn

from memeplex.normalisation import ValueNormaliser
from memeplex.stacked import orthogonal
from method_i import ACTIVATIONS, LAIPPO, Config, Topology

CriticInput = Literal["team", "own"]


@dataclass
class MAPPOConfig(Config):
    """MAPPO's hyperparameters: method_i.Config's PPO and network fields with the MAPPO authors'
    published MPE settings as defaults (Yu et al. 2022, "The Surprising Effectiveness of PPO in
    Cooperative Multi-Agent Games": their MPE tables and code defaults), and the critic's learning
    rate.  Not taken from them: the rollout (ours: --num-envs x rollout_length steps), the running
    observation normaliser (theirs: a layer norm of the input) and the initial log std."""

    lr: float = 7e-4
    """the actors' Adam learning rate (the MAPPO authors' MPE setting)"""
    anneal_lr: bool = False
    """anneal the learning rates (actors' and critic's) linearly to 0 over the run (the authors' MPE runs: no)"""
    gamma: float = 0.99
    """discount factor (the authors' MPE setting)"""
    vf_coef: float = 1.0
    """value loss coefficient (the critic's loss; the authors' MPE setting)"""
    max_grad_norm: float = 10.0
    """gradient-norm clip of each network, actor and critic (the authors' MPE setting)"""
    num_minibatches: int = 1
    """minibatches per epoch (the authors' MPE setting)"""
    value_norm: bool = True
    """value normalisation of the critic's targets (the authors' MPE setting: ValueNorm)"""
    huber_delta: float = 10.0
    """Huber value loss with this delta (the authors' MPE setting); 0: the squared error"""
    clip_value_loss: bool = True
    """PPO's value clipping on the critic (the authors' MPE setting)"""
    share_params: bool = True
    """one actor for all agents of a team (the authors' MPE setting); false: one actor per agent"""
    layer_norm: bool = True
    """layer normalisation after every hidden layer of the actors and critics (the authors' MPE setting)"""
    topology: Topology = "none"
    """MAPPO does not distil"""
    critic_lr: float = 7e-4
    """the critic's own Adam learning rate (the authors' MPE setting)"""
    critic_input: CriticInput = "team"
    """team = MAPPO: the critic's state is the team's observations concatenated; own = the ablation that keeps
    everything else: one critic network, shared by the team's agents, on each agent's own observation (IPPO's
    value estimate, in a network separate from the actor)"""

    def __post_init__(self):
        super().__post_init__()
        if self.critic_lr <= 0:
            raise ValueError("critic_lr must be positive")
        if self.critic_input not in get_args(CriticInput):
            raise ValueError(
                f"unknown critic_input {self.critic_input!r}; choose from {', '.join(get_args(CriticInput))}"
            )
        if self.distills:
            raise ValueError("MAPPO does not distil: topology must be none")


class CentralCritic(nn.Module):
    """A team's critic: an MLP (the actors' hidden sizes) from the global state, the team's A agents'
    normalised observations [A, B, D] concatenated into [B, A * D], to one value per agent [A, B];
    with its own Adam, and its value normaliser (None without value_norm).  With critic_input own:
    the MLP from each agent's own observation [D] to its value, applied to every agent."""

    def __init__(self, num_agents: int, obs_dim: int, cfg: MAPPOConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg, self.act_fn = cfg, ACTIVATIONS[cfg.activation]
        self.team = cfg.critic_input == "team"
        inputs, outputs = (num_agents * obs_dim, num_agents) if self.team else (obs_dim, 1)
        sizes = [inputs, *cfg.hidden_sizes, cfg.latent_dim, outputs]
        gain = np.sqrt(2) if cfg.activation == "relu" else 5 / 3
        self.layers = nn.ModuleList()
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layer = nn.Linear(a, b)
            with torch.no_grad():  # orthogonal weights (unit gain on the value layer), zero biases
                layer.weight.copy_(orthogonal(1, a, b, gain if k < len(sizes) - 2 else 1.0, generator)[0].T)
                layer.bias.zero_()
            self.layers.append(layer)
        self.value_norm = ValueNormaliser(num_agents) if cfg.value_norm else None
        self.optimizer = torch.optim.Adam(self.parameters(), lr=cfg.critic_lr, eps=1e-5)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Values [A, B] (normalised with value_norm) of the group's normalised observations [A, B, D]."""
        # the state: agent 0's observation, then 1's, ... (own: each agent's observation, a batch row each)
        x = obs.transpose(0, 1).reshape(obs.shape[1], -1) if self.team else obs
        for layer in self.layers[:-1]:
            x = self.act_fn(layer(x))
            if self.cfg.layer_norm:
                x = torch.nn.functional.layer_norm(x, x.shape[-1:])
        return self.layers[-1](x).T if self.team else self.layers[-1](x).squeeze(-1)

    @torch.no_grad()
    def value(self, group, obs: torch.Tensor) -> torch.Tensor:
        """Values [A, E] of raw observations [A, E, D], normalised by the group's (actors') normalisers."""
        return self(group._normalise(group._acting_tensors(), obs))

    def gradient_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()

    def set_lr_scale(self, scale: float) -> None:
        """Anneal with the actors: critic_lr times the actors' current fraction of their lr."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.critic_lr * scale


class MAPPO(LAIPPO):
    """LAIPPO's actors, rollout and PPO update (method_i), with a CentralCritic per group (team)
    giving every value estimate and learning from the value loss."""

    config_class = MAPPOConfig

    def __init__(
        self, agent_ids, obs_dims: dict, act_dims: dict, cfg: MAPPOConfig | None = None, num_envs: int = 1, seed=0
    ):
        super().__init__(agent_ids, obs_dims, act_dims, cfg or MAPPOConfig(), num_envs, seed)
        self.critics = [CentralCritic(len(g), g.obs_dim, self.cfg, self.generator) for g in self.groups]

    def state_dict(self) -> dict:
        """LAIPPO's state (the actors: what acting loads) and each critic's weights, value normaliser and Adam."""
        critics = [{"params": c.state_dict(), "optimizer": c.optimizer.state_dict()} for c in self.critics]
        return {**super().state_dict(), "critics": critics}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for critic, saved in zip(self.critics, state["critics"]):
            critic.load_state_dict(saved["params"])
            critic.optimizer.load_state_dict(saved["optimizer"])
