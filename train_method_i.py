"""Train Method I (LA-IPPO) on an MPE environment.

    python train_method_i.py                       # 200k env steps on simple_spread_v3
    python train_method_i.py --env tag             # self-play on simple_tag_v3: 3 predators vs 1 prey
    python train_method_i.py --max-time 300        # stop after 5 minutes instead
    python train_method_i.py --run-name r1 --resume  # continue an interrupted run

Writes results/<env>/<algo>/<run-name>_s<seed>/ (config.json, metrics.csv,
summary.json, training_plot.png) and checkpoints/<env>/<algo>/<run-name>_s<seed>/
(latest.pt and one step_<N>.pt per evaluation).  Ctrl-C or SIGTERM saves
latest.pt and exits; --resume continues from it.  train_ppo.py runs this same
loop with distillation off.

On tag (simple_tag_v3) both teams learn at once (self-play): the 3 predators
and the prey are LA-IPPO agents on their own rewards, and distillation pairs
only the predators (the prey has no peer with its observation space). Every
evaluation freezes both teams into a rolling pool (the step_<N>.pt files, never
deleted) and rates them by Elo against the pool and the random team; see
harness.SelfPlayPool and DESIGN.md's competitive metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

import harness
from harness import UsageError, positive
from method_i import LAIPPO, Config

# Options that only matter when distilling: refused with --topology none rather than ignored.
DISTILL_OPTIONS = ("distill_interval", "distill_weight", "obs_buffer_size", "distill_batch_size")


def build_parser(algo: str) -> argparse.ArgumentParser:
    distill = algo == "method_i"
    p = argparse.ArgumentParser(
        description=("Train Method I (LA-IPPO): independent PPO agents whose encoders are periodically "
                     "distilled toward each other." if distill else
                     "Train the IPPO baseline: Method I's agents and PPO with distillation off."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    harness.add_run_arguments(p, budget_note="rounded up to whole rollouts of num-envs x rollout-length",
                              envs=("spread", "tag"))

    d = Config()
    ppo = p.add_argument_group("PPO")
    ppo.add_argument("--rollout-length", type=positive(int), default=128, help="steps per env per rollout")
    ppo.add_argument("--lr", type=positive(float), default=d.lr, help="Adam learning rate (one Adam per agent)")
    ppo.add_argument("--anneal-lr", action=argparse.BooleanOptionalAction, default=d.anneal_lr,
                     help="anneal the LR linearly to 0 over the run (by steps, or time if --max-time ends first)")
    ppo.add_argument("--gamma", type=float, default=d.gamma, help="discount factor")
    ppo.add_argument("--gae-lambda", type=float, default=d.gae_lambda, help="GAE lambda")
    ppo.add_argument("--clip-coef", type=positive(float), default=d.clip_coef, help="PPO ratio clip epsilon")
    ppo.add_argument("--ent-coef", type=float, default=d.ent_coef, help="entropy bonus coefficient c2")
    ppo.add_argument("--vf-coef", type=float, default=d.vf_coef, help="value loss coefficient c1")
    ppo.add_argument("--max-grad-norm", type=positive(float), default=d.max_grad_norm, help="per-agent gradient-norm clip")
    ppo.add_argument("--update-epochs", type=positive(int), default=d.update_epochs, help="PPO epochs per rollout")
    ppo.add_argument("--num-minibatches", type=positive(int), default=d.num_minibatches, help="minibatches per epoch")
    ppo.add_argument("--norm-adv", action=argparse.BooleanOptionalAction, default=d.norm_adv,
                     help="normalise advantages per minibatch")
    ppo.add_argument("--obs-norm", action=argparse.BooleanOptionalAction, default=d.obs_norm,
                     help="running observation normalisation, owned by each agent's encoder")
    ppo.add_argument("--norm-reward", action=argparse.BooleanOptionalAction, default=d.norm_reward,
                     help="scale each agent's rewards by the running std of its discounted return")
    ppo.add_argument("--init-log-std", type=float, default=d.init_log_std, help="initial log std of the Gaussian policy")
    net = p.add_argument_group("network")
    net.add_argument("--hidden-sizes", type=positive(int), nargs="+", default=list(d.hidden_sizes),
                     help="encoder layers before the latent layer (default: obs -> 64 -> latent, i.e. hidden [64, 64])")
    net.add_argument("--latent-dim", type=positive(int), default=d.latent_dim, help="dimension of the latent m = f(o)")
    net.add_argument("--activation", choices=["tanh", "relu"], default=d.activation, help="encoder nonlinearity")
    if distill:
        dist = p.add_argument_group("distillation")
        dist.add_argument("--topology", default=d.topology, help="who distills from whom: all-to-all, ring, star, none")
        dist.add_argument("--distill-interval", type=positive(int), default=d.distill_interval,
                          help="distill every k PPO updates (learn steps)")
        dist.add_argument("--distill-weight", type=float, default=d.distill_weight, help="lambda on the distillation loss")
        dist.add_argument("--obs-buffer-size", type=positive(int), default=d.obs_buffer_size,
                          help="per-agent buffer of recent raw observations")
        dist.add_argument("--distill-batch-size", type=positive(int), default=d.distill_batch_size,
                          help="samples from the buffer per distillation step")
    return p


def make_config(args) -> Config:
    fields = {f.name for f in dataclasses.fields(Config)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    if getattr(args, "topology", None) is None:
        values["topology"] = "none"
    try:
        return Config(**values)
    except ValueError as exc:
        raise UsageError(str(exc))


def numpy_rng_state() -> dict:
    """numpy's global RNG state in a form torch.load(weights_only=True) accepts."""
    _, key, pos, _, _ = np.random.get_state()
    return {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos)}


def main(argv=None, algo: str = "method_i") -> int:
    parser = build_parser(algo)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if getattr(args, "topology", None) == "none":  # no option is accepted and then ignored
        unused = [k for k in DISTILL_OPTIONS if k in harness.explicit_options(parser, argv)]
        if unused:
            raise UsageError(f"--{unused[0].replace('_', '-')} has no effect with --topology none")
    args, run = harness.open_run(parser, argv, args, algo)
    cfg = make_config(args)
    return train(args, cfg, algo, run)


def train(args, cfg: Config, algo: str, run: harness.RunDir) -> int:
    torch.set_num_threads(args.torch_threads)
    harness.seed_everything(args.seed)
    agents, obs_dims, act_dims = harness.env_info(args.env)
    batch = args.num_envs * args.rollout_length
    if batch < args.num_minibatches:
        raise UsageError(f"rollout of {batch} steps cannot be split into {args.num_minibatches} minibatches")
    num_updates = math.ceil(args.max_steps / batch)
    learner = LAIPPO(agents, obs_dims, act_dims, cfg, args.num_envs, args.rollout_length, seed=args.seed)

    progress = {"global_step": 0, "train_time": 0.0, "eval_time": 0.0, "evals": 0,
                "best_mean": -math.inf, "best_single": -math.inf, "train_scores": [], "last_distill_loss": float("nan")}
    session = 0
    if args.resume:
        state = harness.load_checkpoint(run.ckpt / "latest.pt")
        learner.load_state_dict(state["learner"])
        progress.update(state["progress"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(("MT19937", state["numpy_rng"]["key"].numpy().astype(np.uint32), state["numpy_rng"]["pos"], 0, 0.0))
        session = learner.num_updates  # fresh training episodes, still disjoint from the evaluation seeds
        print(f"resuming {run.path} at step {progress['global_step']}", file=sys.stderr)
    else:
        run.write_config({"algo": algo, "args": vars(args), "method_config": dataclasses.asdict(cfg),
                          **harness.provenance()})
    league = harness.make_league(args)  # tag: the rolling pool of frozen snapshots and the Elo ratings
    if league is not None and "league" in progress:
        league.load_state_dict(progress["league"])
    envs = harness.VecEnv(args.env, args.num_envs, args.seed, session)
    refs = harness.reference_scores(args.env, "validation", args.eval_episodes) if league is None else {}  # spread only
    policy = lambda obs, worlds: learner.act(obs, deterministic=True)

    def checkpoint(path):
        harness.save_checkpoint({"format": "memeplex-run/1", "algo": algo, "env": args.env, "learner": learner.state_dict(),
                                 "progress": progress, "torch_rng": torch.get_rng_state(),
                                 "numpy_rng": numpy_rng_state(), "args": vars(args)}, path)

    def evaluate(stats, final):
        """Checkpoint step_<N>.pt, evaluate (spread: score; tag: Elo vs the pool), append a metrics row."""
        row, message = harness.periodic_evaluation(args, run, progress, policy, checkpoint,
                                                   run.ckpt / f"step_{progress['global_step']:09d}.pt", league, final)
        run.append_metrics({"step": progress["global_step"], "update": learner.num_updates, **row,
                            **{k: stats[k] for k in ("lr", "policy_loss", "value_loss", "entropy", "approx_kl",
                                                     "clip_frac", "log_std", "latent_distance")},
                            "distill_loss": progress["last_distill_loss"]})
        return message

    obs = envs.reset()
    next_eval = (progress["global_step"] // args.eval_interval + 1) * args.eval_interval
    stats = None
    bar = tqdm(total=num_updates * batch, initial=progress["global_step"], unit="step", disable=not args.progress,
               dynamic_ncols=True, smoothing=0.1)
    interrupted = None
    with harness.GracefulStop() as stop:
        while learner.num_updates < num_updates:
            if args.max_time is not None and progress["train_time"] + progress["eval_time"] >= args.max_time:
                break
            t0 = time.perf_counter()
            for _ in range(args.rollout_length):
                actions = learner.act_and_store(obs)
                obs, rewards, dones, terminated, final_obs, finished = envs.step(actions)
                learner.store_step(rewards, dones, terminated, final_obs)
                progress["train_scores"].extend(ep["score"] for ep in finished)
            progress["train_scores"] = progress["train_scores"][-100:]
            step_frac = learner.num_updates / num_updates  # first update at full LR, last at lr / num_updates
            time_frac = (progress["train_time"] + progress["eval_time"]) / args.max_time if args.max_time else 0.0
            stats = learner.learn(obs, lr_frac=max(step_frac, time_frac) if cfg.anneal_lr else 0.0)
            if not math.isnan(stats["distill_loss"]):
                progress["last_distill_loss"] = stats["distill_loss"]
            progress["global_step"] += batch
            progress["train_time"] += time.perf_counter() - t0
            run.update_rows.append({"step": progress["global_step"], "update": learner.num_updates,
                                    **{k: v for k, v in stats.items() if k != "per_agent"}})
            bar.update(batch)
            done = learner.num_updates >= num_updates or stop.requested or (
                args.max_time is not None and progress["train_time"] + progress["eval_time"] >= args.max_time)
            if progress["global_step"] >= next_eval or done:
                message = evaluate(stats, final=done)
                next_eval = (progress["global_step"] // args.eval_interval + 1) * args.eval_interval
                tqdm.write(f"step {progress['global_step']:>8d}  {message}  latent dist {stats['latent_distance']:.3f}",
                           file=sys.stderr)
            if stop.requested:
                interrupted = stop.signum
                break
        checkpoint(run.ckpt / "latest.pt")
        run.flush_updates()
    bar.close()
    envs.close()

    return harness.finish_run(
        args, run, progress, refs, interrupted, policy,
        f"{'Method I (LA-IPPO)' if algo == 'method_i' else 'IPPO'} on {args.env}, seed {args.seed}",
        extra={"updates": learner.num_updates}, league=league)


if __name__ == "__main__":
    sys.exit(harness.run_cli(main))
