"""Train Method I (LA-IPPO) on an MPE environment.

    python train_method_i.py                       # 200k env steps on simple_spread_v3
    python train_method_i.py --env tag             # self-play on simple_tag_v3: 3 predators vs 1 prey
    python train_method_i.py --max-time 300        # stop after 5 minutes instead
    python train_method_i.py --run-name r1 --resume  # continue an interrupted run

Writes results/<env>/<algo>/<run-name>_s<seed>/ (config.json, metrics.csv,
summary.json, training_plot.png) and checkpoints/<env>/<algo>/<run-name>_s<seed>/
(one step_<N>.pt per evaluation and latest.pt, each the whole training state).
Ctrl-C or SIGTERM saves latest.pt and exits; --resume continues from the newest
intact checkpoint (after a SIGKILL: the last evaluation's) exactly as if the run
had not stopped.  train_ppo.py runs this same loop with distillation off.

On tag (simple_tag_v3) both teams learn at once (self-play): the 3 predators
and the prey are LA-IPPO agents on their own rewards, and distillation pairs
only the predators (the prey has no peer with its observation space). Every
evaluation freezes both teams into a rolling pool (the step_<N>.pt files, never
deleted) and rates them by Elo against the pool and the random team
(competitive.SelfPlayPool; docs/metrics.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

import torch
from tqdm import tqdm

from memeplex import checkpoints, cli, protocol, runs
from memeplex.envs import spec, vec
from memeplex.errors import UsageError
from method_i import DISTILLATION_FIELDS, LAIPPO, Config


def build_parser(algo: str) -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        description=(
            "Train Method I (LA-IPPO): independent PPO agents whose encoders are periodically "
            "distilled toward each other."
            if algo == "method_i"
            else "Train the IPPO baseline: Method I's agents and PPO with distillation off."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    runs.add_run_arguments(
        p, budget_note="rounded up to whole rollouts of num-envs x rollout-length", envs=("spread", "tag")
    )
    br = p.add_argument_group("best response (tag): train one team against a frozen checkpoint")
    br.add_argument(
        "--opponent",
        default=None,
        help="a tag checkpoint of any algorithm: its other team plays frozen (deterministic), and only "
        "--team learns; evaluation is --team's win-rate against it",
    )
    br.add_argument("--team", choices=("predator", "prey"), default="predator", help="the team that learns")
    cli.add_dataclass_arguments(
        p.add_argument_group("LA-IPPO hyperparameters (method_i.Config)"),
        Config,
        skip=DISTILLATION_FIELDS if algo == "ppo" else (),
    )
    return p


def main(argv=None, algo: str = "method_i") -> int:
    parser = build_parser(algo)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if getattr(args, "topology", None) == "none":  # no option is accepted and then ignored
        unused = [k for k in DISTILLATION_FIELDS[1:] if k in runs.explicit_options(parser, argv)]
        if unused:
            raise UsageError(f"--{unused[0].replace('_', '-')} has no effect with --topology none")
    given = runs.explicit_options(parser, argv)
    if args.env != "tag" and ("opponent" in given or "team" in given):
        raise UsageError("--opponent and --team are for --env tag (best-response training)")
    if "team" in given and not args.opponent:
        raise UsageError("--team needs --opponent (the frozen checkpoint it learns against)")
    args, run = runs.open_run(parser, argv, args, algo)
    with run:
        if algo == "ppo":
            args.topology = "none"
        return train(args, cli.dataclass_from_args(Config, args), algo, run)


# Training diagnostics of the latest update that every metrics.csv row carries.
UPDATE_METRICS = (
    "lr",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_frac",
    "log_std",
    "latent_distance",
    "latent_cka",
)


def start_or_resume(args, cfg: Config, algo: str, run: runs.RunDir, envs):
    """A new learner, progress and episodes, or all three as the run's checkpoint left them: the
    learner with its own noise stream and return statistics, and the envs mid-episode with their RNGs
    (--backend batched), so a resumed run goes on exactly as if it had not stopped. Returns
    (learner, progress, obs)."""
    agents, obs_dims, act_dims = spec.env_info(args.env_id)
    if getattr(args, "opponent", None):  # best response: only --team learns
        agents = spec.teams(args.env_id)[args.team]
    learner = LAIPPO(agents, obs_dims, act_dims, cfg, args.num_envs, seed=args.seed)
    if not args.resume:
        config = {"algo": algo, "args": vars(args), "method_config": dataclasses.asdict(cfg), **runs.provenance()}
        run.write_config(config)
        return learner, runs.Progress(), envs.reset()
    state = run.checkpoint  # the newest intact checkpoint of this run (runs.open_run)
    checkpoints.check_compatible(state["learner"], agents, obs_dims, act_dims)
    learner.load_state_dict(state["learner"])
    progress = runs.Progress.from_state_dict(state["progress"])
    if state.get("envs") is not None and args.backend == "batched":
        envs.load_state_dict(state["envs"])
        return learner, progress, envs.observe()
    envs.session = learner.num_updates  # no env state saved (--backend mpe2): fresh episodes, still not eval seeds
    return learner, progress, envs.reset()


def save(path, args, algo: str, learner: LAIPPO, progress: runs.Progress, envs, policy_only=False) -> None:
    """The run's whole training state (what --resume continues), or with policy_only only what acting needs."""
    state = {
        "format": checkpoints.RUN_FORMAT,
        "algo": algo,
        "env": args.env_id,
        "learner": learner.state_dict(),
        "progress": progress.state_dict(),
        "envs": envs.state_dict() if args.backend == "batched" else None,
        "args": vars(args),
    }
    checkpoints.save_checkpoint(checkpoints.policy_only(state) if policy_only else state, path)


def collect_rollout(learner: LAIPPO, envs, obs: dict, progress: runs.Progress, opponent=None) -> dict:
    """One rollout of rollout_length steps in every env (with a frozen opponent acting for the agents the
    learner does not control); returns the observation to act on next."""
    for _ in range(learner.rollout_length):
        actions = learner.act_and_store(obs)
        if opponent is not None:
            actions = {**opponent.opponent(obs, None), **actions}
        obs, rewards, dones, terminated, final_obs, finished = envs.step(actions)
        learner.store_step(rewards, dones, terminated, final_obs)
        progress.add_train_scores(ep["score"] for ep in finished)
    return obs


def evaluate(args, algo: str, run, progress: runs.Progress, learner: LAIPPO, envs, stats: dict, league, final: bool):
    """Evaluate (spread: score; tag: Elo vs the pool), append a metrics row, then checkpoint the state after
    the evaluation as step_<N>.pt and latest.pt: a run killed at any point resumes from its last evaluation."""
    policy = lambda obs, state: learner.act(obs, deterministic=True)
    snapshot = lambda path: save(path, args, algo, learner, progress, envs, policy_only=True)
    step_path = run.ckpt / f"step_{progress.global_step:09d}.pt"
    row, message = runs.periodic_evaluation(args, run, progress, policy, snapshot, step_path, league, final)
    diagnostics = {k: stats[k] for k in UPDATE_METRICS}
    run.append_metrics(
        {
            "step": progress.global_step,
            "update": learner.num_updates,
            **row,
            **diagnostics,
            "distill_loss": progress.last_distill_loss,
        }
    )
    t0 = time.perf_counter()
    for path in (step_path, run.ckpt / "latest.pt"):
        save(path, args, algo, learner, progress, envs)
    progress.eval_time += time.perf_counter() - t0
    tqdm.write(
        f"step {progress.global_step:>8d}  {message}  latent dist {stats['latent_distance']:.3f}", file=sys.stderr
    )


def train(args, cfg: Config, algo: str, run: runs.RunDir) -> int:
    torch.set_num_threads(args.torch_threads)
    runs.seed_everything(args.seed)
    batch = args.num_envs * cfg.rollout_length
    if batch < cfg.num_minibatches:
        raise UsageError(f"rollout of {batch} steps cannot be split into {cfg.num_minibatches} minibatches")
    num_updates = math.ceil(args.max_steps / batch)
    envs = vec.make_vec_env(args.env_id, args.num_envs, args.seed, backend=args.backend)
    learner, progress, obs = start_or_resume(args, cfg, algo, run, envs)
    league = checkpoints.make_league(args)  # tag: the rolling pool of frozen snapshots and the Elo ratings
    if league is not None and progress.league is not None:
        league.load_state_dict(progress.league)
    refs = (
        protocol.reference_scores(args.env_id, "validation", args.eval_episodes, args.backend) if league is None else {}
    )
    policy = lambda obs, state: learner.act(obs, deterministic=True)

    next_eval = (progress.global_step // args.eval_interval + 1) * args.eval_interval
    out_of_time = lambda: args.max_time is not None and progress.wall_time >= args.max_time
    bar = tqdm(
        total=num_updates * batch,
        initial=progress.global_step,
        unit="step",
        disable=not args.progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    interrupted = None
    with runs.GracefulStop() as stop:
        while learner.num_updates < num_updates and not out_of_time():
            t0 = time.perf_counter()
            obs = collect_rollout(learner, envs, obs, progress, league if getattr(args, "opponent", None) else None)
            step_frac = learner.num_updates / num_updates  # first update at full LR, last at lr / num_updates
            time_frac = progress.wall_time / args.max_time if args.max_time else 0.0
            stats = learner.learn(obs, lr_frac=max(step_frac, time_frac) if cfg.anneal_lr else 0.0)
            if not math.isnan(stats["distill_loss"]):
                progress.last_distill_loss = stats["distill_loss"]
            progress.global_step += batch
            progress.train_time += time.perf_counter() - t0
            diagnostics = {k: v for k, v in stats.items() if k != "per_agent"}
            run.update_rows.append({"step": progress.global_step, "update": learner.num_updates, **diagnostics})
            bar.update(batch)

            # evaluate and checkpoint every --eval-interval env steps and at the end (a stop by a signal
            # only saves latest.pt, so the resumed run is the run that was not stopped)
            done = learner.num_updates >= num_updates or out_of_time()
            if progress.global_step >= next_eval or done:
                evaluate(args, algo, run, progress, learner, envs, stats, league, final=done)
                next_eval = (progress.global_step // args.eval_interval + 1) * args.eval_interval
            if stop.requested:
                interrupted = stop.signum
                break
        save(run.ckpt / "latest.pt", args, algo, learner, progress, envs)
        run.flush_updates()
    bar.close()
    envs.close()

    name = "Method I (LA-IPPO)" if algo == "method_i" else "IPPO"
    return runs.finish_run(
        args,
        run,
        progress,
        refs,
        interrupted,
        policy,
        f"{name} on {args.env_id}, seed {args.seed}",
        extra={"updates": learner.num_updates},
        league=league,
    )


if __name__ == "__main__":
    sys.exit(runs.run_cli(main))
