"""Train the MADDPG baseline: AgileRL 2.58.0 with evolutionary hyperparameter optimisation.

    python train_maddpg.py                          # population 4, 200k env steps (summed over members) on spread
    python train_maddpg.py --population-size 2 --evo-steps 2000 --max-steps 20000
    python train_maddpg.py --env tag                # self-play predator-prey, Elo against a rolling pool

A population of MADDPG agents (AgileRL's `MADDPG.population`) trains in turns:
each member collects `--evo-steps` env steps into a shared replay buffer
(`ReplayBuffer` of `MultiAgentTransition`s) and learns every `--learn-step` env
steps. Then every member's fitness is measured: its mean score over
`--fitness-episodes` deterministic episodes on fresh seeds. Tournament selection
and AgileRL's `Mutations` (architecture, new layer, parameters, RL
hyperparameters) make the next generation; the fittest member (the elite) is
kept unchanged. After each generation, the fittest member is evaluated with the
shared protocol (harness.evaluate) and checkpointed. Run directories are the
same as Method I's.

Fitness episodes are environment interaction that selection learns from, so
they count against --max-steps (summary.json reports them as
`fitness_env_steps`); the last generation's training is shortened to fit the
budget. With --population-size 1 there is nothing to select: no fitness
episodes are played and the single member is never mutated (plain MADDPG).

Transitions at an episode end store the real final observation, which the
vectorised env keeps, and done = termination. The time limit is a truncation
and is bootstrapped, as for Method I. AgileRL's own trainer stores the next
episode's first observation there instead.

On tag, MADDPG learns all four agents (each on its own reward; critics see
everything). A member's fitness is then the mean of its predators' and its
prey's win-rates against the random team and the rolling pool of earlier best
members (AgileRL's test() would sum the rewards of two opposing teams, which
measures nothing); evaluation is the same Elo protocol as Method I's.

By default every agent has its own actor and critic, as in the MADDPG paper.
AgileRL on its own would group agent_0/1/2 into one shared actor and critic
(`--shared-networks` restores that).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time

import functools

import numpy as np
import torch
from tqdm import tqdm

import harness
from harness import UsageError, positive

FITNESS_SESSION = 10**6  # fitness episodes use training-style seeds in their own session block
ACT_SATURATION = 0.99  # |tanh output| above this counts as saturated


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_run_arguments(p, budget_note="summed over all population members; whole generations",
                              envs=("spread", "tag"))
    evo = p.add_argument_group("evolutionary HPO (AgileRL TournamentSelection + Mutations)")
    evo.add_argument("--population-size", type=positive(int), default=4,
                     help="MADDPG agents in the population; 1 = plain MADDPG: nothing to select, so no fitness games "
                          "and no mutation")
    evo.add_argument("--evo-steps", type=positive(int), default=5_000,
                     help="env steps each member trains between tournaments")
    evo.add_argument("--fitness-episodes", type=positive(int), default=5,
                     help="deterministic episodes (fresh seeds each generation) for a member's fitness")
    evo.add_argument("--tournament-size", type=positive(int), default=2, help="members per tournament")
    evo.add_argument("--elitism", action=argparse.BooleanOptionalAction, default=True,
                     help="keep the fittest member (the elite) unchanged in the next generation: never mutated")
    evo.add_argument("--mut-none", type=float, default=0.4, help="relative probability of no mutation")
    evo.add_argument("--mut-architecture", type=float, default=0.2, help="relative probability of an architecture mutation")
    evo.add_argument("--mut-new-layer", type=float, default=0.2,
                     help="within architecture mutations, probability of adding a layer (else nodes)")
    evo.add_argument("--mut-parameters", type=float, default=0.2, help="relative probability of a parameter-noise mutation")
    evo.add_argument("--mut-rl-hp", type=float, default=0.2,
                     help="relative probability of mutating an RL hyperparameter (lr_actor, lr_critic, batch_size, learn_step)")
    evo.add_argument("--mutation-sd", type=positive(float), default=0.1, help="std of parameter-noise mutations")
    m = p.add_argument_group("MADDPG")
    m.add_argument("--learn-step", type=positive(int), default=16, help="env steps (over all envs) between learning calls")
    m.add_argument("--batch-size", type=positive(int), default=128, help="replay minibatch size")
    m.add_argument("--buffer-size", type=positive(int), default=100_000, help="replay buffer capacity (transitions)")
    m.add_argument("--learning-delay", type=int, default=1_000, help="transitions stored before learning starts")
    m.add_argument("--lr-actor", type=positive(float), default=1e-3, help="actor learning rate")
    m.add_argument("--lr-critic", type=positive(float), default=1e-3, help="critic learning rate")
    m.add_argument("--gamma", type=float, default=0.95, help="discount factor")
    m.add_argument("--tau", type=positive(float), default=0.01, help="soft target-update rate")
    m.add_argument("--expl-noise", type=float, default=0.1, help="exploration noise scale (on the tanh output)")
    m.add_argument("--ou-noise", action=argparse.BooleanOptionalAction, default=False,
                   help="Ornstein-Uhlenbeck instead of independent Gaussian exploration noise")
    m.add_argument("--output-activation", choices=["Tanh", "Softsign"], default="Softsign",
                   help="actor output activation (AgileRL option). Tanh saturates: +x and -x pinned at 1 give zero force and the "
                        "zero-action score; Softsign's gradient decays polynomially, not exponentially")
    m.add_argument("--hidden-sizes", type=positive(int), nargs=2, default=[64, 64], metavar=("ENCODER", "HEAD"),
                   help="actor: obs -> ENCODER -> latent(ENCODER) -> HEAD -> actions (AgileRL's head needs a hidden layer)")
    m.add_argument("--shared-networks", action=argparse.BooleanOptionalAction, default=False,
                   help="AgileRL's grouping: agent_0/1/2 share one actor and one critic (default: one per agent)")
    return p


@functools.lru_cache(maxsize=None)
def algo_class(shared: bool):
    """AgileRL's MADDPG (imported here: AgileRL pulls in transformers and jax, which --help and
    one-line errors must not wait for), or IndependentMADDPG, its classic form in which every
    agent is its own group with its own actor and critic (AgileRL groups ids by prefix, so
    agent_0/1/2 would otherwise share one)."""
    from agilerl.algorithms import MADDPG

    if shared:
        return MADDPG

    class IndependentMADDPG(MADDPG):
        def get_group_id(self, agent_id):
            return agent_id

    return IndependentMADDPG


def make_mutations(args):
    """AgileRL's Mutations with the elite kept: AgileRL 2.58 mutates the elite by default
    (mutate_elite=True), so the fittest member would not survive a generation unchanged.
    Mutations(rand_seed=...) seeds numpy and torch globally: build it before seeding the run."""
    from agilerl.hpo.mutation import Mutations

    return Mutations(no_mutation=args.mut_none, architecture=args.mut_architecture, new_layer_prob=args.mut_new_layer,
                     parameters=args.mut_parameters, activation=0.0, rl_hp=args.mut_rl_hp,
                     mutation_sd=args.mutation_sd, rand_seed=args.seed,
                     mutate_elite=not args.elitism)  # without elitism there is no elite to spare


def next_generation(pop, tournament, mutations):
    """Tournament selection (the elite first, when elitism is on), then mutations of every
    member but the elite. A population of 1 has nothing to select: it is returned as it is."""
    if len(pop) < 2:
        return pop
    _, pop, _ = tournament.select(pop)
    return mutations.mutation(pop)


def make_population(args, agents, obs_spaces, act_spaces):
    from agilerl.algorithms.core.registry import HyperparameterConfig, RLParameter

    hp = HyperparameterConfig(
        lr_actor=RLParameter(min=1e-4, max=1e-2), lr_critic=RLParameter(min=1e-4, max=1e-2),
        batch_size=RLParameter(min=32, max=512, dtype=int),
        learn_step=RLParameter(min=args.num_envs, max=8 * args.num_envs, dtype=int, grow_factor=1.5, shrink_factor=0.75))
    enc, head = args.hidden_sizes
    net_config = {"latent_dim": enc, "encoder_config": {"hidden_size": [enc]},
                  "head_config": {"hidden_size": [head], "output_activation": args.output_activation}}
    return algo_class(args.shared_networks).population(
        args.population_size, obs_spaces, act_spaces, agent_ids=agents, net_config=net_config, hp_config=hp,
        O_U_noise=args.ou_noise, expl_noise=float(args.expl_noise), vect_noise_dim=args.num_envs,
        batch_size=args.batch_size, lr_actor=float(args.lr_actor), lr_critic=float(args.lr_critic),
        learn_step=args.learn_step, gamma=float(args.gamma), tau=float(args.tau), device="cpu")


# ----------------------------------------------------------------------------
# Transitions, policies and actor-only checkpoints
# ----------------------------------------------------------------------------


def transition(obs, raw_actions, rewards, next_obs, dones, terminated, final_obs):
    """One vector step as replay data: at an episode end the stored next
    observation is the real final one (not the next episode's reset), and
    done is the termination flag (a time-limit truncation is bootstrapped)."""
    stored_next = {a: np.where(dones[:, None], final_obs[a], next_obs[a]) for a in obs}
    done = {a: terminated.astype(np.float32) for a in obs}
    return {"obs": obs, "action": raw_actions, "reward": rewards, "next_obs": stored_next, "done": done}


class ActorPolicy:
    """Deterministic policy of a set of AgileRL actors (no noise), for the
    shared evaluation protocol; also records tanh-output saturation."""

    def __init__(self, actors: dict, agent_ids):
        self.actors = actors  # agent id -> DeterministicActor (shared actors may repeat)
        self.agent_ids = list(agent_ids)
        self.saturated, self.outputs = 0, 0

    @torch.no_grad()
    def __call__(self, obs, worlds=None):
        out = {}
        for a in self.agent_ids:
            actor = self.actors[a]
            raw = actor(torch.as_tensor(obs[a], dtype=torch.float32))
            self.saturated += int((raw.abs() > ACT_SATURATION).sum())
            self.outputs += raw.numel()
            out[a] = actor.rescale_output_action(raw).numpy()
        return out

    def saturation(self) -> float:
        return self.saturated / max(self.outputs, 1)


def member_actors(member, agent_ids) -> dict:
    return {a: member.actors[member.get_group_id(a)] for a in agent_ids}


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
    from agilerl.networks.actors import DeterministicActor
    from gymnasium import spaces

    init = {k: spaces.Box(v["box_low"].numpy(), v["box_high"].numpy()) if isinstance(v, dict) and "box_low" in v else v
            for k, v in state["init"].items()}
    actor = DeterministicActor(**init)
    actor.load_state_dict(state["state_dict"])
    actor.eval()
    return actor


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    for name in ("mut_none", "mut_architecture", "mut_new_layer", "mut_parameters", "mut_rl_hp", "expl_noise"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be non-negative")
    if args.tournament_size > args.population_size:
        raise UsageError("--tournament-size cannot exceed --population-size")
    args, run = harness.open_run(parser, argv, args, "maddpg")
    return train(args, run)


def train(args, run: harness.RunDir) -> int:
    from agilerl.components.data import MultiAgentTransition, transition_to_tensordict
    from agilerl.components.replay_buffer import ReplayBuffer
    from agilerl.hpo.tournament import TournamentSelection

    torch.set_num_threads(args.torch_threads)
    mutations = make_mutations(args)  # seeds numpy and torch globally: first, then seed everything
    harness.seed_everything(args.seed)
    agents, obs_dims, _ = harness.env_info(args.env)
    spec_env = harness.make_env(args.env)
    obs_spaces = [spec_env.observation_space(a) for a in agents]
    act_spaces = [spec_env.action_space(a) for a in agents]
    pop_dir = run.ckpt / "population"
    if args.resume:  # the population as saved after its last complete generation
        saved = harness.load_checkpoint(run.ckpt / "latest.pt")
        pop = load_population(pop_dir, algo_class(args.shared_networks), args.population_size)
        print(f"resuming {run.path} at step {saved['progress']['global_step']} (the replay buffer starts empty)",
              file=sys.stderr)
    else:
        pop = make_population(args, agents, obs_spaces, act_spaces)
    memory = ReplayBuffer(max_size=args.buffer_size)
    tournament = TournamentSelection(args.tournament_size, args.elitism, args.population_size)
    capture_grama = mutations.parameters_mut > 0  # parameter mutations use gradient statistics from training
    if not args.resume:
        run.write_config({"algo": "maddpg", "args": vars(args), "agilerl_groups": sorted(pop[0].actors.keys()),
                          **harness.provenance()})
    envs = harness.VecEnv(args.env, args.num_envs, args.seed)
    league = harness.make_league(args)  # tag: rolling pool of the best member's snapshots, and Elo
    refs = harness.reference_scores(args.env, "validation", args.eval_episodes) if league is None else {}  # spread only
    progress = {"global_step": 0, "fitness_steps": 0, "train_time": 0.0, "eval_time": 0.0, "generation": 0,
                "best_mean": -math.inf, "best_single": -math.inf, "train_scores": [], "session": 0, "learn_calls": 0}
    if args.resume:
        progress.update(saved["progress"])
        if league is not None and "league" in progress:
            league.load_state_dict(progress["league"])

    def collect(member, n_steps):
        """Train one member for n_steps env steps; returns its training episode scores."""
        member.set_training_mode(True)
        member.init_training_step(capture_grama)
        progress["session"] += 1
        envs.session = progress["session"]
        obs = envs.reset()
        member.reset_action_noise(list(range(args.num_envs)))
        steps, pending, scores = 0, 0, []
        while steps < n_steps:
            env_actions, raw_actions = member.get_action(obs)
            next_obs, rewards, dones, terminated, final_obs, finished = envs.step(env_actions)
            td = transition_to_tensordict(MultiAgentTransition(
                **transition(obs, raw_actions, rewards, next_obs, dones, terminated, final_obs)))
            td.batch_size = torch.Size([args.num_envs])
            memory.add(td)
            steps += args.num_envs
            pending += args.num_envs
            while pending >= member.learn_step:  # learn_step counts env steps over all envs (it may mutate)
                pending -= member.learn_step
                if len(memory) >= member.batch_size and len(memory) >= args.learning_delay:
                    member.learn(memory.sample(member.batch_size))
                    progress["learn_calls"] += 1
            if dones.any():
                member.reset_action_noise(np.flatnonzero(dones).tolist())
            scores.extend(ep["score"] for ep in finished)
            obs = next_obs
        member.add_scores(scores)
        member.finalize_training_step(steps)
        return steps, scores

    def fitness(member):
        """spread: mean deterministic score. tag: mean win-rate of the member's predators and of its
        prey against the random team and every snapshot in the rolling pool (summed rewards of two
        opposing teams, AgileRL's test(), mean nothing). Its env steps count against the budget."""
        seeds = [harness.train_env_seed(args.seed, k, FITNESS_SESSION + progress["generation"])
                 for k in range(args.fitness_episodes)]
        policy = ActorPolicy(member_actors(member, agents), agents)
        if league is None:
            out = harness.run_episodes(args.env, policy, seeds)
            score, steps = float(out["scores"].mean()), out["env_steps"]
        else:
            games = [(harness.play(args.env, policy, o, seeds), harness.play(args.env, o, policy, seeds))
                     for o in [harness.RandomPolicy(args.env)] + [e["policy"] for e in league.entries]]
            score = float(np.mean([0.5 * hunt["wins"].mean() + 0.5 * (1.0 - flee["wins"].mean()) for hunt, flee in games]))
            steps = sum(hunt["env_steps"] + flee["env_steps"] for hunt, flee in games)
        member.metrics.add_fitness(score)  # (member.fitness is a read-only copy)
        progress["global_step"] += steps
        progress["fitness_steps"] += steps
        return score

    def member_budget(pool_entries: int) -> int:
        """Env steps each member trains in the next generation: --evo-steps, or less in the last
        generation so that training and the fitness episodes stay within --max-steps (0: none fits)."""
        games = 1 if league is None else 2 * (1 + pool_entries)  # tag: both teams, vs random + each snapshot
        fitness_steps = (args.population_size * args.fitness_episodes * games * harness.episode_length(args.env)
                         if args.population_size > 1 else 0)
        room = (args.max_steps - progress["global_step"] - fitness_steps) // args.population_size
        whole = lambda n: n // args.num_envs * args.num_envs  # members collect whole vector steps
        return max(0, min(whole(args.evo_steps + args.num_envs - 1), whole(room)))

    def snapshot(member):
        """The member's actors and hyperparameters, copied: the tournament
        deletes the networks of members it evicts."""
        actors = member_actors(member, agents)
        return {"index": member.index, "actors": {a: actor_state(actors[a]) for a in agents},
                "hyperparameters": member_hyperparameters(member)}

    def checkpoint(best, path):
        harness.save_checkpoint({"format": "memeplex-run/1", "algo": "maddpg", "env": args.env, "agent_ids": agents,
                                 "obs_dims": obs_dims, "actors": best["actors"], "best_member": best["index"],
                                 "hyperparameters": best["hyperparameters"], "progress": dict(progress),
                                 "args": vars(args)}, path)

    def best_policy(best):
        return ActorPolicy({a: actor_from_state(best["actors"][a]) for a in agents}, agents)

    best = snapshot(pop[0])
    bar = tqdm(total=args.max_steps, initial=progress["global_step"], unit="step", disable=not args.progress,
               dynamic_ncols=True)
    next_eval = (progress["global_step"] // args.eval_interval + 1) * args.eval_interval
    out_of_time = lambda: args.max_time is not None and progress["train_time"] + progress["eval_time"] >= args.max_time
    pool_entries = lambda: len(league.entries) if league is not None else 0
    interrupted = None
    with harness.GracefulStop() as stop:
        while member_budget(pool_entries()) > 0 and not out_of_time():
            t0, start = time.perf_counter(), progress["global_step"]
            evo_steps, member_steps = member_budget(pool_entries()), []
            for member in pop:
                steps, scores = collect(member, evo_steps)
                member_steps.append(steps)
                progress["global_step"] += steps
                progress["train_scores"] = (progress["train_scores"] + scores)[-100:]
            if len(pop) > 1:
                fits = [fitness(member) for member in pop]
                best = snapshot(pop[int(np.argmax(fits))])
            else:  # one member: nothing to select, no fitness games
                fits, best = [float("nan")], snapshot(pop[0])
            progress["generation"] += 1
            progress["train_time"] += time.perf_counter() - t0
            bar.update(progress["global_step"] - start)
            evaluating = progress["global_step"] >= next_eval
            # the next generation's fitness games include the snapshot this evaluation adds to the pool
            next_pool = min(args.pool_size, pool_entries() + 1) if league is not None and evaluating else pool_entries()
            done = member_budget(next_pool) == 0 or stop.requested or out_of_time()
            if evaluating or done:
                policy = best_policy(best)
                path = run.ckpt / f"step_{progress['global_step']:09d}.pt"
                res, message = harness.periodic_evaluation(args, run, progress, policy, lambda p: checkpoint(best, p),
                                                           path, league, final=done)
                row = {"step": progress["global_step"], "generation": progress["generation"],
                       **res, "eval_saturation": policy.saturation(),
                       "sps_per_member": round(progress["global_step"] / args.population_size / max(progress["train_time"], 1e-9), 1),
                       "best_member": best["index"], "learn_calls": progress["learn_calls"],
                       **{f"fitness_{k}": f for k, f in enumerate(fits)},
                       "members": " ".join(str(m.index) for m in pop),
                       **{f"best_{k}": v for k, v in best["hyperparameters"].items()}}
                next_eval = (progress["global_step"] // args.eval_interval + 1) * args.eval_interval
                run.append_metrics(row)
                tqdm.write(f"step {progress['global_step']:>8d}  gen {progress['generation']:>3d}  best member {best['index']}: "
                           f"{message}, saturation {policy.saturation():.2f}, "
                           f"fitness {', '.join(f'{f:.2f}' for f in fits)}", file=sys.stderr)
            if stop.requested:
                interrupted = stop.signum
                break
            if not done:
                pop = next_generation(pop, tournament, mutations)
                run.update_rows.append({"generation": progress["generation"], "step": progress["global_step"],
                                        "mutations": " ".join(f"{m.index}:{m.mut}" for m in pop),
                                        **{f"member_{k}_steps": s for k, s in enumerate(member_steps)}})
                save_population(pop, pop_dir)  # --resume continues from here
                checkpoint(best, run.ckpt / "latest.pt")
        save_population(pop, pop_dir)  # stopped or finished: the population as it is now
        checkpoint(best, run.ckpt / "latest.pt")
        run.flush_updates()
    bar.close()
    envs.close()

    policy = best_policy(best)
    return harness.finish_run(
        args, run, progress, refs, interrupted, policy,
        f"MADDPG (AgileRL, population {args.population_size}) on {args.env}, seed {args.seed}",
        extra={"generations": progress["generation"], "population_size": args.population_size,
               "fitness_env_steps": progress["fitness_steps"],
               "throughput_per_member": round(progress["global_step"] / args.population_size
                                              / max(progress["train_time"], 1e-9), 1),
               "best_member_hyperparameters": best["hyperparameters"]},
        panels=(("eval_saturation", "actor saturation"),),
        after_test=lambda: {"test_saturation": policy.saturation()}, league=league)


def save_population(pop, directory) -> None:
    """Every member in AgileRL's own checkpoint format (for --resume), atomically."""
    import os

    directory.mkdir(parents=True, exist_ok=True)
    for k, member in enumerate(pop):
        tmp = directory / f".member_{k}.pt.tmp"
        member.save_checkpoint(str(tmp))
        os.replace(tmp, directory / f"member_{k}.pt")


def load_population(directory, cls, size: int) -> list:
    """AgileRL's loader unpickles whole objects (weights_only=False): used only
    for the population files this run wrote itself, never for evaluation."""
    paths = [directory / f"member_{k}.pt" for k in range(size)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"--resume: population checkpoint {missing[0]} is missing")
    return [cls.load(str(p), device="cpu") for p in paths]


def member_hyperparameters(member) -> dict:
    return {"lr_actor": float(member.lr_actor), "lr_critic": float(member.lr_critic),
            "batch_size": int(member.batch_size), "learn_step": int(member.learn_step)}


def fix_hash_seed() -> None:
    """Re-execute this script once with PYTHONHASHSEED=0. AgileRL's mutations
    depend on the iteration order of sets of strings, which Python randomises
    per process, so the same --seed gave a different run after the first
    tournament; with the hash seed fixed, a seed reproduces its run exactly
    (tests/test_maddpg.py)."""
    import os

    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])


if __name__ == "__main__":
    fix_hash_seed()
    sys.exit(harness.run_cli(main))
