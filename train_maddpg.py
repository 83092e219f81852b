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
shared protocol (memeplex.protocol.evaluate) and checkpointed. Run directories are the
same as Method I's. After every evaluation (and at the end, or at Ctrl-C or
SIGTERM after the current generation) latest.pt also holds the whole training
state: the population, the replay buffer and every random stream, so --resume
goes on as if the run had not stopped (a killed run: from its last evaluation).

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

By default agents of one kind share an actor and a critic, AgileRL's grouping
by name: on spread agent_0/1/2 share one, on tag the three predators share one
and the prey has its own. This form won on both tasks' tuning seeds
(docs/maddpg.md); `--no-shared-networks` gives every agent its own, as in the
MADDPG paper.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from memeplex import checkpoints, cli, evaluators, maddpg, options, training
from memeplex.envs import spec, vec
from memeplex.maddpg import MADDPGConfig
from memeplex.options import RunOptions
from memeplex.rundir import RunDir, provenance
from memeplex.training import Progress as RunProgress


def build_parser() -> argparse.ArgumentParser:
    """The command line: the run options and one option per MADDPGConfig field."""
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_run_arguments(
        p,
        budget_note="summed over all population members, fitness episodes included",
        envs=("spread", "tag", "reference"),
    )
    cli.add_dataclass_arguments(p.add_argument_group("MADDPG and evolutionary HPO (maddpg.MADDPGConfig)"), MADDPGConfig)
    return p


def main(argv=None) -> int:
    cmd = options.parse(build_parser(), argv)
    cli.dataclass_from_args(MADDPGConfig, cmd.args)  # bad values fail before a run directory exists
    args, run = training.open_run(cmd, "maddpg")
    with run:
        return train(RunOptions.from_namespace(args), cli.dataclass_from_args(MADDPGConfig, args), run)


@dataclass
class Progress(RunProgress):
    """Where a MADDPG run stands: training.Progress and the population's counters."""

    generation: int = 0
    """generations completed"""
    session: int = 0
    """env reset sessions so far (one per member per generation)"""
    learn_calls: int = 0
    """learning calls so far"""
    fitness_steps: int = 0
    """env steps of fitness episodes (included in global_step)"""


def save_run_checkpoint(path, opts: RunOptions, best: dict, progress: Progress, training: dict | None = None) -> None:
    """The best member's actors as a run checkpoint (eval_maddpg.py, pools); latest.pt also carries the
    `training` state that --resume continues (training_state)."""
    agents, obs_dims, _ = spec.env_info(opts.env_id)
    state = {
        "format": checkpoints.RUN_FORMAT,
        "algo": "maddpg",
        "env": opts.env_id,
        "agent_ids": agents,
        "obs_dims": obs_dims,
        "actors": best["actors"],
        "best_member": best["index"],
        "hyperparameters": best["hyperparameters"],
        "progress": progress.state_dict(),
        "args": opts.record,
    }
    checkpoints.save_checkpoint({**state, "training": training} if training else state, path)


def training_state(pop, memory, mutations) -> dict:
    """What a resumed run needs besides its progress: the population (AgileRL's checkpoints as bytes), the
    replay buffer, and every random stream the loop draws from: torch's, numpy's and python's global ones
    (exploration noise, replay sampling, tournaments) and the two generators of AgileRL's mutations."""
    legacy = np.random.get_state()
    streams = {
        "numpy": [legacy[0], legacy[1].tolist(), *legacy[2:]],
        "python": random.getstate(),
        "mutations": [mutations.rng.bit_generator.state, mutations._fp_rng.bit_generator.state],
    }
    return {
        "population": maddpg.population_state(pop),
        "memory": {
            "transitions": memory.storage[: len(memory)].clone().to_dict() if len(memory) else None,
            "size": len(memory),
            "cursor": memory._cursor,
            "counter": memory.counter,
        },
        "torch_rng": torch.get_rng_state(),
        "rng": json.dumps(streams),  # 128-bit generator states: JSON, not tensors
    }


def restore_memory(memory, saved: dict) -> None:
    """The replay buffer training_state saved (AgileRL 2.58's ReplayBuffer internals)."""
    from tensordict import TensorDict

    if saved["size"] == 0:
        return
    transitions = TensorDict(saved["transitions"], batch_size=[saved["size"]])
    memory._init(transitions)
    memory.storage[: saved["size"]] = transitions
    memory._size, memory._cursor, memory.counter = saved["size"], saved["cursor"], saved["counter"]


def restore_rngs(training: dict, mutations) -> None:
    """The random streams training_state saved: the last thing a resumed run does before its loop."""
    streams = json.loads(training["rng"])
    torch.set_rng_state(training["torch_rng"])
    name, keys, *rest = streams["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = streams["python"]
    random.setstate((version, tuple(internal), gauss))
    mutations.rng.bit_generator.state, mutations._fp_rng.bit_generator.state = streams["mutations"]


def start_or_resume(opts: RunOptions, cfg: MADDPGConfig, run: RunDir, agents, memory):
    """A new population, progress and best member, or all three and the replay buffer as the run's checkpoint
    left them (its random streams come back at the start of the loop). Returns (population, progress, best)."""
    if run.checkpoint is not None:
        state = run.checkpoint
        pop = maddpg.population_from_state(state["training"]["population"], maddpg.algo_class(cfg.shared_networks))
        restore_memory(memory, state["training"]["memory"])
        best = {"index": state["best_member"], "actors": state["actors"], "hyperparameters": state["hyperparameters"]}
        return pop, Progress.from_state_dict(state["progress"]), best
    env = spec.make_env(opts.env_id)
    obs_spaces, act_spaces = [env.observation_space(a) for a in agents], [env.action_space(a) for a in agents]
    pop = maddpg.make_population(cfg, opts.num_envs, agents, obs_spaces, act_spaces)
    groups = sorted(pop[0].actors.keys())
    run.write_config({"algo": "maddpg", "args": opts.record, "agilerl_groups": groups, **provenance()})
    return pop, Progress(), maddpg.snapshot(pop[0], agents)


class StatusBar(tqdm):
    """The env-step bar, its description saying what the run is doing (redrawn when that changes)."""

    def say(self, text: str) -> None:
        if text != getattr(self, "_said", None):
            self._said = text
            self.set_description_str(text)


def play_generation(pop, evo_steps: int, envs, memory, progress, opts, cfg, evaluator, capture_grama, bar) -> tuple:
    """Every member trains evo_steps env steps, then (population > 1) plays its fitness games; the
    progress bar counts the steps as they are taken and says which of these it is doing.
    Returns (fitnesses, the best member's snapshot, each member's training steps)."""
    agents = envs.agents
    member_steps = []
    for k, member in enumerate(pop):
        doing = f"generation {progress.generation + 1}, member {k + 1}/{len(pop)}"

        def status(steps, learning):
            bar.say(f"{doing}: {'learning' if learning else 'filling the replay buffer'}")
            bar.update(steps)

        noise = maddpg.noise_schedule(cfg, opts.max_steps)
        steps, scores = maddpg.collect(member, envs, memory, evo_steps, progress, cfg, capture_grama, status, noise)
        member_steps.append(steps)
        progress.global_step += steps
        progress.add_train_scores(scores)
    if len(pop) == 1:  # nothing to select: no fitness games
        return [float("nan")], maddpg.snapshot(pop[0], agents), member_steps
    bar.say(f"generation {progress.generation + 1}: fitness games")
    seeds = maddpg.fitness_seeds(opts.seed, progress.generation, cfg.fitness_episodes)
    fits, steps = zip(*[maddpg.fitness(m, agents, seeds, evaluator) for m in pop])
    progress.global_step += sum(steps)
    progress.fitness_steps += sum(steps)
    bar.update(sum(steps))
    return list(fits), maddpg.snapshot(pop[int(np.argmax(fits))], agents), member_steps


def evaluate(opts, run, progress, pop, best: dict, fits, evaluator, final: bool) -> None:
    """Evaluate the best member, append a metrics row, checkpoint the best member as step_<N>.pt."""
    policy = maddpg.load_actor_policy_from(best["actors"], spec.env_info(opts.env_id)[0])
    save_to = lambda path: save_run_checkpoint(path, opts, best, progress)
    res, message = evaluator.evaluate(policy, progress, save_to, final)
    run.append_metrics(
        {
            "step": progress.global_step,
            "generation": progress.generation,
            **res,
            "eval_saturation": policy.saturation(),
            "best_member": best["index"],
            "learn_calls": progress.learn_calls,
            **{f"fitness_{k}": f for k, f in enumerate(fits)},
            "members": " ".join(str(m.index) for m in pop),
            **{f"best_{k}": v for k, v in best["hyperparameters"].items()},
        }
    )
    save_to(run.step_checkpoint(progress.global_step))
    tqdm.write(
        f"step {progress.global_step:>8d}  gen {progress.generation:>3d}  best member {best['index']}: {message}, "
        f"saturation {policy.saturation():.2f}, fitness {', '.join(f'{f:.2f}' for f in fits)}",
        file=sys.stderr,
    )


def train(opts: RunOptions, cfg: MADDPGConfig, run: RunDir) -> int:
    """The whole run: set up (or resume) the population, play generations until a budget ends or a
    signal stops it, finish."""
    if opts.progress:  # the import takes seconds, and the bar only starts after it
        print("importing AgileRL and building the population ...", file=sys.stderr, flush=True)
    from agilerl.components.replay_buffer import ReplayBuffer

    torch.set_num_threads(opts.torch_threads)
    mutations = maddpg.make_mutations(cfg, opts.seed)  # seeds numpy and torch globally: first, then seed the run
    training.seed_everything(opts.seed)
    agents = spec.env_info(opts.env_id)[0]
    memory = ReplayBuffer(max_size=cfg.buffer_size)
    pop, progress, best = start_or_resume(opts, cfg, run, agents, memory)
    tournament = maddpg.make_tournament(cfg)
    envs = vec.make_vec_env(opts.env_id, opts.num_envs, opts.seed, backend=opts.backend)
    evaluator = evaluators.for_run(opts, run)  # tag: rolling pool of the best member's snapshots, and Elo
    evaluator.resume(progress)
    state = {"pop": pop, "best": best, "memory": memory, "mutations": mutations, "tournament": tournament}
    interrupted = play_generations(opts, cfg, run, envs, progress, evaluator, state)
    envs.close()
    return finish(opts, cfg, run, progress, state["best"], evaluator, interrupted)


def play_generations(opts, cfg: MADDPGConfig, run: RunDir, envs, progress, evaluator, state: dict):
    """Generations until the step or time budget ends or a signal asks to stop. `state` holds the
    population, the best member, the replay buffer, the mutations and the tournament (pop and best change
    as it goes).
    Returns the stopping signal or None."""
    pop, memory, mutations, tournament = state["pop"], state["memory"], state["mutations"], state["tournament"]
    capture_grama = mutations.parameters_mut > 0  # parameter mutations use gradient statistics from training
    budget = lambda games: maddpg.member_budget(cfg, opts.env_id, opts.max_steps, progress.global_step,
                                                opts.num_envs, games)  # fmt: skip
    out_of_time = lambda: training.out_of_time(opts, progress)
    progress.cpu_clock()  # this session's CPU clock starts here
    bar = StatusBar(total=opts.max_steps, initial=progress.global_step, unit="step", disable=not opts.progress)
    next_eval = (progress.global_step // opts.eval_interval + 1) * opts.eval_interval
    interrupted = None
    if run.checkpoint is not None:
        restore_rngs(run.checkpoint["training"], mutations)
    with training.GracefulStop() as stop:
        while budget(evaluator.score_games()) > 0 and not out_of_time():
            t0 = time.perf_counter()
            fits, state["best"], member_steps = play_generation(
                pop, budget(evaluator.score_games()), envs, memory, progress, opts, cfg, evaluator, capture_grama, bar
            )
            progress.generation += 1
            progress.train_time += time.perf_counter() - t0

            # evaluate the best member every --eval-interval env steps and at the end; the next
            # generation's fitness games include the snapshot this evaluation adds to the pool
            evaluating = progress.global_step >= next_eval
            done = budget(evaluator.score_games(grown=evaluating)) == 0 or out_of_time()
            if evaluating or done:
                bar.say(f"generation {progress.generation}: evaluating the best member")
                evaluate(opts, run, progress, pop, state["best"], fits, evaluator, final=done)
                next_eval = (progress.global_step // opts.eval_interval + 1) * opts.eval_interval
            if not done:  # selection and mutation, the run's seed drawing the mutations' sizes too
                bar.say(f"generation {progress.generation}: selection and mutation")
                pop = state["pop"] = select_and_mutate(
                    pop, tournament, mutations, opts.seed, progress, member_steps, run
                )
            # the whole state after an evaluation, at the end and at a stop: --resume goes on from here (a killed
            # run from its last evaluation) as if the run had not stopped
            if evaluating or done or stop.requested:
                t0 = time.perf_counter()
                saved = training_state(pop, memory, mutations)
                save_run_checkpoint(run.ckpt / "latest.pt", opts, state["best"], progress, saved)
                run.flush_updates()
                progress.eval_time += time.perf_counter() - t0
            if stop.requested:
                interrupted = stop.signum
                break
    bar.close()
    return interrupted


def select_and_mutate(pop, tournament, mutations, seed: int, progress, member_steps, run: RunDir) -> list:
    """Selection and mutation (the run's seed drawing the mutations' sizes too), recorded in updates.csv."""
    maddpg.seed_networks(pop, np.random.default_rng([seed, progress.generation]))
    pop = maddpg.next_generation(pop, tournament, mutations)
    run.add_update(
        {
            "generation": progress.generation,
            "step": progress.global_step,
            "mutations": " ".join(f"{m.index}:{m.mut}" for m in pop),
            **{f"member_{k}_steps": s for k, s in enumerate(member_steps)},
        }
    )
    return pop


def finish(opts: RunOptions, cfg: MADDPGConfig, run, progress, best: dict, evaluator, interrupted) -> int:
    """summary.json (with the population's numbers), the final test evaluation of the best member, the plot."""
    policy = maddpg.load_actor_policy_from(best["actors"], spec.env_info(opts.env_id)[0])
    per_member = progress.global_step / cfg.population_size / max(progress.train_time, 1e-9)
    extra = {"generations": progress.generation, "population_size": cfg.population_size,
             "fitness_env_steps": progress.fitness_steps, "throughput_per_member": round(per_member, 1),
             "best_member_hyperparameters": best["hyperparameters"]}  # fmt: skip
    title = f"MADDPG (AgileRL, population {cfg.population_size}) on {opts.env_id}, seed {opts.seed}"
    return training.finish_run(opts, run, progress, evaluator, interrupted, policy, title, extra=extra,
                               panels=(("eval_saturation", "actor saturation"),),
                               after_test=lambda: {"test_saturation": policy.saturation()})  # fmt: skip


if __name__ == "__main__":
    maddpg.fix_hash_seed()
    sys.exit(cli.run_cli(main))
