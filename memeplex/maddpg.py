"""MADDPG with evolutionary hyperparameter optimisation, on AgileRL 2.58.

The parts of train_maddpg.py's loop, each a plain function: the population
(AgileRL's `MADDPG.population`), one member's training turn (`collect`), its
fitness games (`fitness`), the step budget of a generation
(`member_budget`), and the next generation (tournament selection, then
mutations of every member but the elite); the actors as plain tensors for the
run's checkpoints (`actor_state`) and as a deterministic policy (`ActorPolicy`).
AgileRL is imported only inside
the functions that need it: it pulls in transformers and jax (8-27 s), which
--help and one-line errors must not wait for.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import os
import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from memeplex.envs import spec

FITNESS_SESSION = 10**6  # fitness episodes use training-style seeds in their own session block
ACT_SATURATION = 0.99  # |tanh output| above this counts as saturated


@dataclass
class MADDPGConfig:
    """MADDPG and evolutionary-HPO hyperparameters: each defined here once,
    documented under its field; train_maddpg.py generates its options from it."""

    # -- evolution (AgileRL TournamentSelection + Mutations)
    population_size: int = 4
    """MADDPG agents in the population; 1 = plain MADDPG: nothing to select, so no fitness games and no mutation"""
    evo_steps: int = 5_000
    """env steps each member trains between tournaments"""
    fitness_episodes: int = 5
    """deterministic episodes (fresh seeds each generation) for a member's fitness; they count against --max-steps"""
    tournament_size: int = 2
    """members per tournament (unused by a population of 1)"""
    elitism: bool = True
    """keep the fittest member (the elite) unchanged in the next generation: never mutated"""
    mut_none: float = 0.4
    """relative probability of no mutation"""
    mut_architecture: float = 0.2
    """relative probability of an architecture mutation"""
    mut_new_layer: float = 0.2
    """within architecture mutations, probability of adding a layer (else nodes)"""
    mut_parameters: float = 0.2
    """relative probability of a parameter-noise mutation"""
    mut_rl_hp: float = 0.2
    """relative probability of mutating an RL hyperparameter (within the ranges below)"""
    mutation_sd: float = 0.1
    """std of parameter-noise mutations"""
    lr_range: tuple[float, ...] = (1e-4, 1e-2)
    """range of lr_actor and lr_critic under RL-hyperparameter mutations"""
    batch_size_range: tuple[int, ...] = (128, 1024)
    """range of batch_size under RL-hyperparameter mutations"""
    learn_step_range: tuple[int, ...] = (1, 8)
    """range of learn_step under RL-hyperparameter mutations, in multiples of --num-envs"""
    # -- MADDPG
    # The MADDPG defaults below were chosen by the sweep on spread (docs/maddpg.md, "What holds MADDPG back"),
    # tuning seeds 101-103 at 200k env steps, a single member with shared networks; a population of 4 is best with
    # --expl-noise 0.1
    learn_step: int = 50
    """env steps (over all envs) between learning calls"""
    batch_size: int = 1024
    """replay minibatch size"""
    buffer_size: int = 100_000
    """replay buffer capacity (transitions)"""
    learning_delay: int = 1_000
    """transitions stored before learning starts"""
    lr_actor: float = 1e-2
    """actor learning rate"""
    lr_critic: float = 1e-2
    """critic learning rate"""
    gamma: float = 0.95
    """discount factor"""
    tau: float = 0.01
    """soft target-update rate"""
    expl_noise: float = 0.2
    """exploration noise scale (std of the Gaussian noise on the actor's [-1, 1] output)"""
    expl_noise_final: float = -1.0
    """exploration noise scale at the end of the run (--max-steps), reached linearly from expl_noise; -1: no decay"""
    ou_noise: bool = False
    """Ornstein-Uhlenbeck instead of independent Gaussian exploration noise"""
    output_activation: Literal["Tanh", "Softsign", "Softmax"] = "Softmax"
    """actor output activation, chosen on spread's tuning seeds at 200k env steps for both forms
    (results/spread/tuning/chosen-200k.md; on reference Tanh was chosen). Softmax makes the 5 action entries a
    probability vector, the soft action of the MADDPG paper's actor (without its Gumbel noise). Tanh saturates: +x
    and -x pinned at 1 give zero force and the zero-action score; Softsign's gradient decays polynomially, not
    exponentially"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """actor: obs -> ENCODER -> latent(ENCODER) -> HEAD -> actions (AgileRL's head needs a hidden layer)"""
    shared_networks: bool = True
    """AgileRL's grouping by name: agents of one kind share an actor and a critic (spread: agent_0/1/2; tag: the
    predators, the prey alone); --no-shared-networks: one per agent, as in the MADDPG paper. Shared won on spread
    (every per-agent tuning configuration scored at random) and on tag's tuning seeds (docs/maddpg.md)"""
    actor_reg: float = 1e-3
    """weight of a penalty on the mean square of the actor's pre-activation outputs in the actor loss (the MADDPG
    paper's code: 1e-3), against saturation; AgileRL's loss has none: added by a gradient hook (regularise)"""
    grad_clip: float = 0.5
    """max global gradient norm of every actor and critic update (the MADDPG paper's code: 0.5); 0: none, as in
    AgileRL: added by an optimiser step hook (regularise)"""

    def __post_init__(self):
        self.lr_range, self.batch_size_range, self.learn_step_range, self.hidden_sizes = (
            tuple(self.lr_range),
            tuple(self.batch_size_range),
            tuple(self.learn_step_range),
            tuple(self.hidden_sizes),
        )
        positive = (
            "population_size",
            "evo_steps",
            "fitness_episodes",
            "tournament_size",
            "mutation_sd",
            "learn_step",
            "batch_size",
            "buffer_size",
            "lr_actor",
            "lr_critic",
            "tau",
        )
        checks = [(getattr(self, k) > 0, f"--{k.replace('_', '-')} must be positive") for k in positive]
        checks += [
            (getattr(self, k) >= 0, f"--{k.replace('_', '-')} must be non-negative")
            for k in (
                "actor_reg",
                "grad_clip",
                "mut_none",
                "mut_architecture",
                "mut_new_layer",
                "mut_parameters",
                "mut_rl_hp",
                "expl_noise",
                "learning_delay",
            )
        ]
        checks += [
            (self.expl_noise_final >= 0 or self.expl_noise_final == -1, "--expl-noise-final must be >= 0 (or -1)"),
            (  # a single member plays no tournament: --population-size 1 needs no --tournament-size 1
                self.population_size == 1 or self.tournament_size <= self.population_size,
                "--tournament-size cannot exceed --population-size",
            ),
            (len(self.hidden_sizes) == 2 and min(self.hidden_sizes) > 0, "--hidden-sizes takes ENCODER HEAD > 0"),
        ]
        for name in ("lr_range", "batch_size_range", "learn_step_range"):
            r = getattr(self, name)
            checks.append(
                (len(r) == 2 and 0 < r[0] <= r[1], f"--{name.replace('_', '-')} takes MIN MAX with 0 < MIN <= MAX")
            )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# ----------------------------------------------------------------------------
# The population
# ----------------------------------------------------------------------------


@functools.cache
def algo_class(shared: bool):
    """AgileRL's MADDPG, or IndependentMADDPG, its classic form in which every
    agent is its own group with its own actor and critic (AgileRL groups ids by
    prefix, so agent_0/1/2 would otherwise share one)."""
    from agilerl.algorithms import MADDPG

    if shared:
        return MADDPG

    class IndependentMADDPG(MADDPG):
        def get_group_id(self, agent_id):
            return agent_id

    return IndependentMADDPG


def make_population(cfg: MADDPGConfig, num_envs: int, agents, obs_spaces, act_spaces):
    from agilerl.algorithms.core.registry import HyperparameterConfig, RLParameter

    hp = HyperparameterConfig(
        lr_actor=RLParameter(min=cfg.lr_range[0], max=cfg.lr_range[1]),
        lr_critic=RLParameter(min=cfg.lr_range[0], max=cfg.lr_range[1]),
        batch_size=RLParameter(min=cfg.batch_size_range[0], max=cfg.batch_size_range[1], dtype=int),
        learn_step=RLParameter(
            min=cfg.learn_step_range[0] * num_envs,
            max=cfg.learn_step_range[1] * num_envs,
            dtype=int,
            grow_factor=1.5,
            shrink_factor=0.75,
        ),
    )
    enc, head = cfg.hidden_sizes
    net_config = {
        "latent_dim": enc,
        "encoder_config": {"hidden_size": [enc]},
        "head_config": {"hidden_size": [head], "output_activation": cfg.output_activation},
    }
    return algo_class(cfg.shared_networks).population(
        cfg.population_size,
        obs_spaces,
        act_spaces,
        agent_ids=agents,
        net_config=net_config,
        hp_config=hp,
        O_U_noise=cfg.ou_noise,
        expl_noise=float(cfg.expl_noise),
        vect_noise_dim=num_envs,
        batch_size=cfg.batch_size,
        lr_actor=float(cfg.lr_actor),
        lr_critic=float(cfg.lr_critic),
        learn_step=cfg.learn_step,
        gamma=float(cfg.gamma),
        tau=float(cfg.tau),
        device="cpu",
    )


def make_mutations(cfg: MADDPGConfig, seed: int):
    """AgileRL's Mutations with the elite kept: AgileRL 2.58 mutates the elite by default
    (mutate_elite=True), so the fittest member would not survive a generation unchanged.
    Mutations(rand_seed=...) seeds numpy and torch globally: build it before seeding the run."""
    from agilerl.hpo.mutation import Mutations

    return Mutations(
        no_mutation=cfg.mut_none,
        architecture=cfg.mut_architecture,
        new_layer_prob=cfg.mut_new_layer,
        parameters=cfg.mut_parameters,
        activation=0.0,
        rl_hp=cfg.mut_rl_hp,
        mutation_sd=cfg.mutation_sd,
        rand_seed=seed,
        mutate_elite=not cfg.elitism,
    )  # without elitism there is no elite to spare


def make_tournament(cfg: MADDPGConfig):
    from agilerl.hpo.tournament import TournamentSelection

    return TournamentSelection(cfg.tournament_size, cfg.elitism, cfg.population_size)


SELECTION_ATTEMPTS = 20


def next_generation(pop, tournament, mutations):
    """Tournament selection (the elite first, when elitism is on), then mutations of every
    member but the elite. A population of 1 has nothing to select: it is returned as it is.

    AgileRL 2.58 cannot carry some architecture mutations of separate per-agent networks
    (--no-shared-networks) over to the critics: it raises MutationError after mutating part of a
    member. The selection works on clones, so the old population is intact: select and mutate
    again with fresh draws (a generation that mutates cleanly is unaffected)."""
    if len(pop) < 2:
        return pop
    from agilerl.hpo.mutation import MutationError

    for attempt in range(1, SELECTION_ATTEMPTS + 1):
        _, selected, _ = tournament.select(pop)
        try:
            return mutations.mutation(selected)
        except MutationError as exc:
            print(f"AgileRL mutation failed ({str(exc).split('.')[0]}.): selecting and mutating again "
                  f"({attempt} of {SELECTION_ATTEMPTS})", file=sys.stderr, flush=True)  # fmt: skip
    raise RuntimeError(f"AgileRL's mutations failed {SELECTION_ATTEMPTS} times in a row")


def member_actors(member, agent_ids) -> dict:
    return {a: member.actors[member.get_group_id(a)] for a in agent_ids}


def member_hyperparameters(member) -> dict:
    return {
        "lr_actor": float(member.lr_actor),
        "lr_critic": float(member.lr_critic),
        "batch_size": int(member.batch_size),
        "learn_step": int(member.learn_step),
    }


def snapshot(member, agents) -> dict:
    """The member's actors and hyperparameters, copied: the tournament deletes
    the networks of members it evicts."""
    actors = member_actors(member, agents)
    return {
        "index": member.index,
        "actors": {a: actor_state(actors[a]) for a in agents},
        "hyperparameters": member_hyperparameters(member),
    }


# ----------------------------------------------------------------------------
# One generation: training turns, fitness games, the budget
# ----------------------------------------------------------------------------


def transition(obs, raw_actions, rewards, next_obs, dones, terminated, final_obs):
    """One vector step as replay data: at an episode end the stored next
    observation is the real final one (not the next episode's reset), and
    done is the termination flag (a time-limit truncation is bootstrapped)."""
    stored_next = {a: np.where(dones[:, None], final_obs[a], next_obs[a]) for a in obs}
    done = {a: terminated.astype(np.float32) for a in obs}
    return {"obs": obs, "action": raw_actions, "reward": rewards, "next_obs": stored_next, "done": done}


def noise_schedule(cfg: MADDPGConfig, max_steps: int):
    """The exploration noise scale at a global env step (linear from expl_noise to expl_noise_final at
    max_steps), or None without a decay (AgileRL's constant expl_noise)."""
    if cfg.expl_noise_final < 0:
        return None
    start, end = float(cfg.expl_noise), float(cfg.expl_noise_final)
    return lambda step: start + (end - start) * min(1.0, step / max_steps)


class _PreactivationPenalty(torch.autograd.Function):
    """Identity forward; backward adds the gradient of weight * mean(x ** 2): the penalty in the loss of
    whatever backward pass runs through x, without changing AgileRL's loss code."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x)
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad + ctx.weight * 2.0 * x / x.numel(), None


class ActorPenaltyHook:
    """Forward pre-hook on an actor's output activation: its input (the pre-activation) gets the penalty
    while gradients are on, i.e. in MADDPG's actor update only (acting and the target actors run without)."""

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, module, inputs):
        if torch.is_grad_enabled() and inputs[0].requires_grad:
            return (_PreactivationPenalty.apply(inputs[0], self.weight),)
        return None


class GradClipHook:
    """Optimiser step pre-hook: clip the global gradient norm of the optimiser's parameters."""

    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def __call__(self, optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, self.max_norm)


def regularise(member, cfg: MADDPGConfig) -> None:
    """Give a member the MADDPG paper's two regularisers that AgileRL's MADDPG lacks (--actor-reg,
    --grad-clip), as PyTorch hooks on its networks and optimisers; AgileRL's learn() is unchanged. Idempotent,
    and called at every training turn: networks and optimisers that a mutation, a clone or a resume made
    anew get them too."""
    if cfg.actor_reg > 0:
        for actor in member.actors.values():
            activation = actor.head_net.model[-1]
            if not any(isinstance(h, ActorPenaltyHook) for h in activation._forward_pre_hooks.values()):
                activation.register_forward_pre_hook(ActorPenaltyHook(cfg.actor_reg))
    if cfg.grad_clip > 0:
        for _, opt in torch_optimizers(member):
            if not any(isinstance(h, GradClipHook) for h in opt._optimizer_step_pre_hooks.values()):
                opt.register_step_pre_hook(GradClipHook(cfg.grad_clip))


def collect(member, envs, memory, n_steps: int, progress, cfg: MADDPGConfig, capture_grama: bool, status=None,
            noise=None):  # fmt: skip
    """Train one member for n_steps env steps on fresh training episodes, learning every
    learn_step env steps from the shared replay buffer. Returns (steps, training episode scores).
    status(env steps, learning), if given, is told of every vector step: its env steps and whether
    the member learns yet (not while the replay buffer fills up to the learning delay).
    noise(global env step), if given, sets the exploration noise scale before every vector step
    (noise_schedule)."""
    from agilerl.components.data import MultiAgentTransition, transition_to_tensordict

    regularise(member, cfg)
    member.set_training_mode(True)
    member.init_training_step(capture_grama)
    progress.session += 1
    envs.session = progress.session
    obs = envs.reset()
    member.reset_action_noise(list(range(envs.num_envs)))
    steps, pending, scores = 0, 0, []
    while steps < n_steps:
        if noise is not None:
            scale = noise(progress.global_step + steps)
            for t in member.expl_noise.values():
                t.fill_(scale)
        env_actions, raw_actions = member.get_action(obs)
        next_obs, rewards, dones, terminated, final_obs, finished = envs.step(env_actions)
        td = transition_to_tensordict(
            MultiAgentTransition(**transition(obs, raw_actions, rewards, next_obs, dones, terminated, final_obs))
        )
        td.batch_size = torch.Size([envs.num_envs])
        memory.add(td)
        steps += envs.num_envs
        pending += envs.num_envs
        while pending >= member.learn_step:  # learn_step counts env steps over all envs (it may mutate)
            pending -= member.learn_step
            if len(memory) >= member.batch_size and len(memory) >= cfg.learning_delay:
                member.learn(memory.sample(member.batch_size))
                progress.learn_calls += 1
        if status is not None:
            status(envs.num_envs, len(memory) >= cfg.learning_delay)
        if dones.any():
            member.reset_action_noise(np.flatnonzero(dones).tolist())
        scores.extend(ep["score"] for ep in finished)
        obs = next_obs
    member.add_scores(scores)
    member.finalize_training_step(steps)
    return steps, scores


def fitness(member, agents, seeds, evaluator) -> tuple:
    """(fitness, env steps it took): the run's evaluator's score of the member's deterministic policy
    (evaluators.Evaluator.score: spread its mean score; tag the mean win-rate of its predators and
    its prey against the random team and every snapshot in the rolling pool)."""
    score, steps = evaluator.score(ActorPolicy(member_actors(member, agents), agents), seeds)
    member.metrics.add_fitness(score)  # (member.fitness is a read-only copy)
    return score, steps


def fitness_seeds(run_seed: int, generation: int, episodes: int) -> list:
    return [spec.train_env_seed(run_seed, k, FITNESS_SESSION + generation) for k in range(episodes)]


def member_budget(cfg: MADDPGConfig, env: str, max_steps: int, global_step: int, num_envs: int, games: int) -> int:
    """Env steps each member trains in the next generation: --evo-steps, or less in the last
    generation so that training and the fitness episodes stay within --max-steps (0: none fits).
    games: episodes a fitness seed plays (evaluators.Evaluator.score_games)."""
    fitness_steps = (
        cfg.population_size * cfg.fitness_episodes * games * spec.episode_length(env) if cfg.population_size > 1 else 0
    )
    room = (max_steps - global_step - fitness_steps) // cfg.population_size
    whole = lambda n: n // num_envs * num_envs  # members collect whole vector steps
    return max(0, min(whole(cfg.evo_steps + num_envs - 1), whole(room)))


# ----------------------------------------------------------------------------
# The actors as plain tensors (checkpoints) and as a deterministic policy
# ----------------------------------------------------------------------------


class ActorPolicy:
    """Deterministic policy of a set of AgileRL actors (no noise), for the
    shared evaluation protocol; also records tanh-output saturation."""

    def __init__(self, actors: dict, agent_ids):
        self.actors = actors  # agent id -> DeterministicActor (shared actors may repeat)
        self.agent_ids = list(agent_ids)
        self.saturated, self.outputs = 0, 0

    def __call__(self, obs, worlds=None):
        out = {}
        with torch.no_grad():
            for a in self.agent_ids:
                actor = self.actors[a]
                raw = actor(torch.as_tensor(obs[a], dtype=torch.float32))
                self.saturated += int((raw.abs() > ACT_SATURATION).sum())
                self.outputs += raw.numel()
                out[a] = actor.rescale_output_action(raw).numpy()
        return out

    def saturation(self) -> float:
        """The fraction of action outputs so far with |tanh output| > ACT_SATURATION."""
        return self.saturated / max(self.outputs, 1)


def actor_state(actor) -> dict:
    """An actor as plain tensors and strings: loadable with weights_only=True."""
    init = {}
    for k, v in actor.init_dict.items():
        if hasattr(v, "low") and hasattr(v, "high"):  # a gymnasium Box
            init[k] = {"box_low": torch.as_tensor(v.low), "box_high": torch.as_tensor(v.high)}
        else:
            init[k] = v
    return {"init": copy.deepcopy(init), "state_dict": {k: v.detach().clone() for k, v in actor.state_dict().items()}}


def actor_from_state(state):
    """The DeterministicActor actor_state saved, in eval mode."""
    from agilerl.networks.actors import DeterministicActor
    from gymnasium import spaces

    init = {
        k: spaces.Box(v["box_low"].numpy(), v["box_high"].numpy()) if isinstance(v, dict) and "box_low" in v else v
        for k, v in state["init"].items()
    }
    actor = DeterministicActor(**init)
    actor.load_state_dict(state["state_dict"])
    actor.eval()
    return actor


def load_actor_policy_from(actors: dict, agents) -> ActorPolicy:
    """The policy of saved actors {agent: actor_state(...)}."""
    return ActorPolicy({a: actor_from_state(actors[a]) for a in agents}, agents)


# ----------------------------------------------------------------------------
# The population in the run's checkpoint (for --resume)
# ----------------------------------------------------------------------------


def population_state(pop) -> dict:
    """Every member in AgileRL's own checkpoint format, as bytes (uint8 tensors) carried by the run's
    checkpoint, and which optimiser state tensors members share: AgileRL 2.58 gives a member cloned
    without a mutation of its networks (or only of the other optimiser's learning rate) the very Adam
    moments of the member it was cloned from, so both move them; a resumed run must share them too."""
    members = []
    for member in pop:
        buf = io.BytesIO()
        member.save_checkpoint(buf)
        members.append(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8))
    first, shared = {}, {}
    for where, state in _optimizer_states(pop):
        for key, value in state.items():
            if torch.is_tensor(value):
                owner = first.setdefault(id(value), (where, key))
                if owner != (where, key):
                    shared[f"{where}/{key}"] = owner
    return {"members": members, "shared": json.dumps(shared)}


def population_from_state(state: dict, cls) -> list:
    """The population population_state saved, its shared optimiser state shared again. AgileRL's loader
    unpickles whole objects (weights_only=False): used only to resume the run that wrote them, never for
    evaluation. It also rebuilds the actors without what MADDPG's constructor does to them: their
    encoders' mutations are disabled again (the critics have another encoder), else a resumed run draws
    other mutations, some of which AgileRL cannot apply."""
    pop = [cls.load(io.BytesIO(m.numpy().tobytes()), device="cpu") for m in state["members"]]
    for member in pop:
        for actor in [*member.actors.values(), *member.actor_targets.values()]:
            actor.encoder.disable_mutations()
    states = dict(_optimizer_states(pop))
    for target, (where, key) in json.loads(state["shared"]).items():
        target_where, target_key = target.rsplit("/", 1)
        states[target_where][target_key] = states[where][key]
    return pop


def torch_optimizers(member):
    """("optimiser/agent", torch optimiser) of each of a member's AgileRL optimisers (one per network group)."""
    for config in member.registry.optimizers:
        optimizers = getattr(member, config.name).optimizer
        for agent, opt in optimizers.items() if isinstance(optimizers, dict) else [("", optimizers)]:
            yield f"{config.name}/{agent}", opt


def _optimizer_states(pop):
    """("member/optimiser/agent/parameter", that parameter's optimiser state) for every member, in order."""
    for k, member in enumerate(pop):
        for where, opt in torch_optimizers(member):
            params = [p for group in opt.param_groups for p in group["params"]]
            for i, p in enumerate(params):
                if p in opt.state:
                    yield f"{k}/{where}/{i}", opt.state[p]


def seed_networks(pop, rng) -> None:
    """AgileRL draws the size of a node mutation from each network's own generator, which it seeds from the
    OS: give every member's networks `rng`, so that the run's seed decides its mutations."""
    for member in pop:
        for network in member.evolvable_attributes(networks_only=True).values():
            network.rng = rng


def fix_hash_seed() -> None:
    """Re-execute the running script once with PYTHONHASHSEED=0. AgileRL's mutations
    depend on the iteration order of sets of strings, which Python randomises
    per process, so the same --seed gave a different run after the first
    tournament; with the hash seed fixed, a seed reproduces its run exactly
    (tests/test_maddpg.py)."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
