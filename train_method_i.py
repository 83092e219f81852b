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
had not stopped.  train_ppo.py runs this same loop with distillation off, and
train_mappo.py with distillation off and a centralised critic per team (mappo.py).

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
from dataclasses import dataclass

import torch
from tqdm import tqdm

from mappo import MAPPO, MAPPOConfig
from memeplex import checkpoints, cli, evaluators, options, training
from memeplex.envs import spec, vec
from memeplex.errors import UsageError
from memeplex.options import RunOptions
from memeplex.rundir import RunDir, provenance
from memeplex.training import Progress as RunProgress
from method_i import DISTILLATION_FIELDS, LAIPPO, Config

# Per algorithm: its learner and config class, its name in titles, and its command line's description.
LEARNERS = {"method_i": (LAIPPO, Config), "ppo": (LAIPPO, Config), "mappo": (MAPPO, MAPPOConfig)}
NAMES = {"method_i": "Method I (LA-IPPO)", "ppo": "IPPO", "mappo": "MAPPO"}
DESCRIPTIONS = {
    "method_i": "Train Method I (LA-IPPO): independent PPO agents whose encoders are periodically distilled toward "
    "each other.",
    "ppo": "Train the IPPO baseline: Method I's agents and PPO with distillation off.",
    "mappo": "Train MAPPO: Method I's actors (one per team by default) and PPO with a centralised critic per team "
    "on the team's observations concatenated.",
}


def build_parser(algo: str) -> argparse.ArgumentParser:
    """The command line of train_method_i.py (algo method_i), train_ppo.py (ppo: no distillation options) or
    train_mappo.py (mappo: no distillation options; mappo.MAPPOConfig's fields and defaults)."""
    p = cli.ArgumentParser(description=DESCRIPTIONS[algo], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    options.add_run_arguments(
        p, budget_note="rounded up to whole rollouts of num-envs x rollout-length", envs=("spread", "tag", "reference")
    )
    options.add_best_response_arguments(p)
    config_class = LEARNERS[algo][1]
    cli.add_dataclass_arguments(
        p.add_argument_group(
            f"{'MAPPO' if algo == 'mappo' else 'LA-IPPO'} hyperparameters "
            f"({config_class.__module__}.{config_class.__name__})"
        ),  # fmt: skip
        config_class,
        skip=DISTILLATION_FIELDS if algo != "method_i" else (),
    )
    return p


def main(argv=None, algo: str = "method_i") -> int:
    cmd = options.parse(build_parser(algo), argv)
    if getattr(cmd.args, "topology", None) == "none":  # no option is accepted and then ignored
        unused = [k for k in DISTILLATION_FIELDS[1:] if k in cmd.given]
        if unused:
            raise UsageError(f"--{unused[0].replace('_', '-')} has no effect with --topology none")
    if cmd.args.env != "tag" and ("opponent" in cmd.given or "team" in cmd.given):
        raise UsageError("--opponent and --team are for --env tag (best-response training)")
    if "team" in cmd.given and not cmd.args.opponent:
        raise UsageError("--team needs --opponent (the frozen checkpoint it learns against)")
    args, run = training.open_run(cmd, algo)
    with run:
        if algo == "ppo":
            args.topology = "none"
        cfg = cli.dataclass_from_args(LEARNERS[algo][1], args)
        return train(RunOptions.from_namespace(args), cfg, algo, run)


@dataclass
class Progress(RunProgress):
    """Where an LA-IPPO run stands (training.Progress and the latest distillation loss)."""

    last_distill_loss: float = math.nan
    """the latest distillation loss (NaN before the first distillation)"""


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
    "rollout_cka",
    "rollout_rel_distance",
)


def start_or_resume(opts: RunOptions, cfg: Config, algo: str, run: RunDir, envs):
    """A new learner, progress and episodes, or all three as the run's checkpoint left them: the
    learner with its own noise stream and return statistics, and the envs mid-episode with their RNGs
    (--backend batched), so a resumed run goes on exactly as if it had not stopped. Returns
    (learner, progress, obs)."""
    agents, obs_dims, act_dims = spec.env_info(opts.env_id)
    if opts.opponent:  # best response: only --team learns
        agents = spec.teams(opts.env_id)[opts.team]
    learner = LEARNERS[algo][0](agents, obs_dims, act_dims, cfg, opts.num_envs, seed=opts.seed)
    if not opts.resume:
        config = {"algo": algo, "args": opts.record, "method_config": dataclasses.asdict(cfg), **provenance()}
        run.write_config(config)
        return learner, Progress(), envs.reset()
    state = run.checkpoint  # the newest intact checkpoint of this run (training.open_run)
    checkpoints.check_compatible(state["learner"], agents, obs_dims, act_dims)
    learner.load_state_dict(state["learner"])
    progress = Progress.from_state_dict(state["progress"])
    if state.get("envs") is not None and opts.backend == "batched":
        envs.load_state_dict(state["envs"])
        return learner, progress, envs.observe()
    envs.session = learner.num_updates  # no env state saved (--backend mpe2): fresh episodes, still not eval seeds
    return learner, progress, envs.reset()


def save(path, opts: RunOptions, algo: str, learner: LAIPPO, progress: Progress, envs, policy_only=False) -> None:
    """The run's whole training state (what --resume continues), or with policy_only only what acting needs."""
    state = {
        "format": checkpoints.RUN_FORMAT,
        "algo": algo,
        "env": opts.env_id,
        "learner": learner.state_dict(),
        "progress": progress.state_dict(),
        "envs": envs.state_dict() if opts.backend == "batched" else None,
        "args": opts.record,
    }
    checkpoints.save_checkpoint(checkpoints.policy_only(state) if policy_only else state, path)


def collect_rollout(learner: LAIPPO, envs, obs: dict, progress: Progress, opponent=None) -> dict:
    """One rollout of rollout_length steps in every env (with a frozen opponent policy acting for the agents
    the learner does not control); returns the observation to act on next."""
    for _ in range(learner.rollout_length):
        actions = learner.act_and_store(obs)
        if opponent is not None:
            actions = {**opponent(obs, None), **actions}
        obs, rewards, dones, terminated, final_obs, finished = envs.step(actions)
        learner.store_step(rewards, dones, terminated, final_obs)
        progress.add_train_scores(ep["score"] for ep in finished)
    return obs


def evaluate(opts, algo: str, run: RunDir, progress: Progress, learner: LAIPPO, envs, stats: dict, evaluator,
             final: bool) -> None:  # fmt: skip
    """Evaluate (spread: score; tag: Elo vs the pool), append a metrics row, then checkpoint the state after
    the evaluation as step_<N>.pt and latest.pt: a run killed at any point resumes from its last evaluation."""
    policy = lambda obs, state: learner.act(obs, deterministic=True)
    snapshot = lambda path: save(path, opts, algo, learner, progress, envs, policy_only=True)
    row, message = evaluator.evaluate(policy, progress, snapshot, final)
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
    for path in (run.step_checkpoint(progress.global_step), run.ckpt / "latest.pt"):
        save(path, opts, algo, learner, progress, envs)
    progress.eval_time += time.perf_counter() - t0
    tqdm.write(
        f"step {progress.global_step:>8d}  {message}  latent dist {stats['latent_distance']:.3f}", file=sys.stderr
    )


def train(opts: RunOptions, cfg: Config, algo: str, run: RunDir) -> int:
    """The whole run: set up (or resume), train until a budget ends or a signal stops it, finish."""
    torch.set_num_threads(opts.torch_threads)
    training.seed_everything(opts.seed)
    batch = opts.num_envs * cfg.rollout_length
    if batch < cfg.num_minibatches:
        raise UsageError(f"rollout of {batch} steps cannot be split into {cfg.num_minibatches} minibatches")
    envs = vec.make_vec_env(opts.env_id, opts.num_envs, opts.seed, backend=opts.backend)
    learner, progress, obs = start_or_resume(opts, cfg, algo, run, envs)
    opponent = checkpoints.load_policy(opts.opponent, "tag")[0] if opts.opponent else None  # best response
    evaluator = evaluators.for_run(opts, run, opponent)
    evaluator.resume(progress)
    interrupted = train_updates(opts, cfg, algo, run, learner, envs, obs, progress, evaluator, opponent)
    envs.close()

    name = NAMES[algo]
    policy = lambda obs, state: learner.act(obs, deterministic=True)
    title = f"{name} on {opts.env_id}, seed {opts.seed}"
    extra = {"updates": learner.num_updates}
    # the encoders' alignment on the held-out test episodes' observations (spread), as test_cka, test_rel_distance
    test_alignment = lambda: learner.alignment(evaluator.test_observations, "test_")
    return training.finish_run(
        opts, run, progress, evaluator, interrupted, policy, title, extra=extra, after_test=test_alignment
    )


def train_updates(opts, cfg: Config, algo: str, run: RunDir, learner, envs, obs, progress, evaluator, opponent):
    """PPO updates until the step or time budget ends or a signal asks to stop; evaluates every
    --eval-interval env steps and at the end, then saves latest.pt. Returns the stopping signal or None."""
    batch = opts.num_envs * cfg.rollout_length
    num_updates = math.ceil(opts.max_steps / batch)
    next_eval = (progress.global_step // opts.eval_interval + 1) * opts.eval_interval
    out_of_time = lambda: training.out_of_time(opts, progress)
    progress.cpu_clock()  # this session's CPU clock starts here
    bar = tqdm(total=num_updates * batch, initial=progress.global_step, unit="step", disable=not opts.progress,
               dynamic_ncols=True, smoothing=0.1)  # fmt: skip
    interrupted = None
    with training.GracefulStop() as stop:
        while learner.num_updates < num_updates and not out_of_time():
            t0 = time.perf_counter()
            obs = collect_rollout(learner, envs, obs, progress, opponent)
            step_frac = learner.num_updates / num_updates  # first update at full LR, last at lr / num_updates
            time_frac = training.time_fraction(opts, progress)
            t1 = time.perf_counter()
            stats = learner.learn(obs, lr_frac=max(step_frac, time_frac) if cfg.anneal_lr else 0.0)
            progress.learn_time += time.perf_counter() - t1
            if not math.isnan(stats["distill_loss"]):
                progress.last_distill_loss = stats["distill_loss"]
            progress.global_step += batch
            progress.train_time += time.perf_counter() - t0
            diagnostics = {k: v for k, v in stats.items() if k != "per_agent"}
            run.add_update({"step": progress.global_step, "update": learner.num_updates, **diagnostics})
            bar.update(batch)

            # evaluate and checkpoint every --eval-interval env steps and at the end (a stop by a signal
            # only saves latest.pt, so the resumed run is the run that was not stopped)
            done = learner.num_updates >= num_updates or out_of_time()
            if progress.global_step >= next_eval or done:
                evaluate(opts, algo, run, progress, learner, envs, stats, evaluator, final=done)
                next_eval = (progress.global_step // opts.eval_interval + 1) * opts.eval_interval
            if stop.requested:
                interrupted = stop.signum
                break
        save(run.ckpt / "latest.pt", opts, algo, learner, progress, envs)
        run.flush_updates()
    bar.close()
    return interrupted


if __name__ == "__main__":
    sys.exit(cli.run_cli(main))
