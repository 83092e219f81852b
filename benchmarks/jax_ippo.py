"""IPPO in JAX on JaxMARL's MPE simple_spread_v3 with continuous actions, the whole training loop compiled with
jax.jit: the compiled reference that this repository's IPPO is timed against (benchmark only; the project never
imports it, and it needs none of the project's packages).

    pip install -r benchmarks/requirements-jax.txt
    python benchmarks/jax_ippo.py                                  # this repo's IPPO defaults, 409,600 env steps
    python benchmarks/jax_ippo.py --num-envs 16 --update-epochs 4 --num-minibatches 4 --out jax.json
    python benchmarks/jax_ippo.py --num-agents 6 --total-steps 51200 --xla-threads 1

It prints one JSON line (and writes it to --out): the options, compile_s (jax.jit(train).lower(key).compile()),
run_s (the compiled call, until its results are ready), the env steps and steps/s of the run alone and end to end
(from this script's first line), the versions, devices and CPU, and the mean episode score (the episode return
summed over the agents, as the repo's spread score) of the first and the last 10% of the updates. Without JAX or
JaxMARL it prints one line to stderr and exits with code 3; a run that outlives --timeout exits with code 4 (XLA's
CPU runtime was seen to hang, rarely, in block_until_ready with every thread idle; --xla-threads 1 is the known
workaround).

The learner is the PureJaxRL recipe (lax.scan over updates, rollout steps, epochs and minibatches; envs vmapped)
doing the arithmetic of this repository's IPPO (method_i.py with topology none, memeplex/ppo.py, memeplex/stacked.py,
memeplex/policy_gradient.py, memeplex/normalisation.py) at their defaults: one network per agent (no parameter
sharing), stacked on an agent axis and vmapped, each with its own running observation normaliser (clamped at
+-obs_clip, updated from the rollout's observations after the update), two ReLU layers and one linear head for the
Gaussian mean and the value, a state-independent log_std kept in [log_std_min, log_std_max] after every step; PPO's
clipped surrogate, 0.5 (V - R)^2, the Gaussian's entropy, advantages normalised per minibatch and agent, each
agent's loss the mean over its samples and the total their sum; each agent's gradient norm clipped separately;
Adam (per agent: the same moments, as Adam is element-wise) with the learning rate annealed linearly to 0 by update.
Where it differs from the torch learner:
* the env: JaxMARL's spread, not mpe2's (the same world constants, observations of the same size, its own reward and
  collision code). JaxMARL ends an episode after 26 transitions (`done = step >= max_steps` before the step) and does
  not clip continuous actions; here episodes end after --episode-length (25) transitions, reset by this script, and
  the unclipped Gaussian samples are clipped to the action Box [0, 1] before the env step (mpe2's wrapper does the
  same), the unclipped sample being what PPO learns from;
* float32 throughout: the torch learner computes GAE and the normaliser's moments in float64;
* the initial weights come from JAX's orthogonal initialiser (same gains, different random stream), and the
  minibatch shuffles and action noise from JAX's PRNG;
* PPO's diagnostics (approx_kl, clip fraction, per-agent losses) and the latent diagnostics are not computed.
The value of the final observation is bootstrapped at truncation (one extra value pass on the steps where episodes
end), as in the torch learner; the spread episodes never terminate.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # end-to-end time counts from here: options, imports, env setup, compile, run

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from importlib.metadata import version  # noqa: E402

NOT_INSTALLED = 3  # exit code when JAX or JaxMARL cannot be imported
TIMED_OUT = 4  # exit code when the run outlives --timeout
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


class Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"jax_ippo: error: {message}", file=sys.stderr)  # one line instead of usage and error
        sys.exit(2)


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(description="IPPO in JAX on JaxMARL's MPE simple_spread_v3 (continuous), compiled, timed.")
    p.add_argument("--seed", type=int, default=1, help="PRNG seed of the weights, envs, noise and shuffles")
    p.add_argument("--total-steps", type=int, default=409_600, help="env steps (rounded up to whole rollouts)")
    p.add_argument("--num-envs", type=int, default=8, help="parallel envs (vmapped)")
    p.add_argument("--num-agents", type=int, default=3, help="spread with N agents and N landmarks")
    p.add_argument("--episode-length", type=int, default=25, help="transitions per episode (then auto-reset)")
    p.add_argument("--rollout-length", type=int, default=128, help="steps per env per rollout")
    p.add_argument("--update-epochs", type=int, default=10, help="PPO epochs per rollout")
    p.add_argument("--num-minibatches", type=int, default=2, help="minibatches per epoch")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (one Adam per agent)")
    p.add_argument(
        "--anneal-lr",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="anneal the learning rate linearly to 0 over the updates (update u at lr * (1 - u / updates))",
    )
    p.add_argument("--adam-eps", type=float, default=1e-5, help="Adam epsilon")
    p.add_argument("--gamma", type=float, default=0.95, help="discount factor")
    p.add_argument("--gae-lambda", type=float, default=0.95, help="GAE lambda")
    p.add_argument("--clip-coef", type=float, default=0.2, help="PPO ratio clip epsilon")
    p.add_argument("--ent-coef", type=float, default=0.01, help="entropy bonus coefficient")
    p.add_argument("--vf-coef", type=float, default=0.5, help="value loss coefficient")
    p.add_argument("--max-grad-norm", type=float, default=0.5, help="per-agent gradient-norm clip")
    p.add_argument("--hidden-size", type=int, default=64, help="width of both encoder layers (the second: the latent)")
    p.add_argument("--init-log-std", type=float, default=-0.5, help="initial log std of the Gaussian policy")
    p.add_argument("--log-std-min", type=float, default=-2.0, help="log_std is clamped to at least this")
    p.add_argument("--log-std-max", type=float, default=0.5, help="log_std is clamped to at most this")
    p.add_argument("--obs-clip", type=float, default=10.0, help="normalised observations are clamped to +-this")
    p.add_argument(
        "--xla-threads",
        choices=("default", "1"),
        default="default",
        help=f"default: XLA's CPU thread pool as it is; 1: XLA_FLAGS += {SINGLE_THREAD_FLAGS!r}",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help=f"give up after this many seconds with exit code {TIMED_OUT} (0: never): XLA's CPU runtime can, rarely, "
        "hang with every thread idle when its Eigen pool is multi-threaded",
    )
    p.add_argument("--out", default=None, help="also write the JSON line to this file")
    args = p.parse_args(argv)
    batch = args.num_envs * args.rollout_length
    checks = [
        (min(args.num_envs, args.rollout_length, args.hidden_size) > 0, "sizes (--num-envs ...) must be positive"),
        (args.update_epochs > 0 and args.num_minibatches > 0, "--update-epochs and --num-minibatches must be positive"),
        (args.total_steps > 0 and args.episode_length > 0, "--total-steps and --episode-length must be positive"),
        (args.num_agents >= 2, "--num-agents must be at least 2"),
        (batch >= args.num_minibatches, f"a rollout of {batch} steps cannot be split into {args.num_minibatches}"),
        (args.lr > 0 and args.adam_eps > 0 and args.max_grad_norm > 0, "--lr, --adam-eps, --max-grad-norm must be > 0"),
        (0 < args.gamma <= 1 and 0 <= args.gae_lambda <= 1, "--gamma must be in (0, 1], --gae-lambda in [0, 1]"),
        (args.timeout >= 0, "--timeout must be non-negative"),
        (args.clip_coef > 0 and args.obs_clip > 0, "--clip-coef and --obs-clip must be positive"),
        (args.log_std_min <= args.init_log_std <= args.log_std_max, "--init-log-std must be within the log_std bounds"),
    ]
    for ok, message in checks:
        if not ok:
            p.error(message)
    return args


def make_train(args):
    """train(key) -> (final parameters, per-update episode score sums and episode counts): the whole run, traceable
    by jax.jit. Everything JAX lives in here (PureJaxRL's make_train), as JAX is imported after the options."""
    import jax
    import jax.numpy as jnp
    import jaxmarl
    import optax
    from jaxmarl.environments.mpe.default_params import CONTINUOUS_ACT
    from jaxmarl.environments.spaces import Box

    n = args.num_agents
    # `continuous_actions=True` would be swallowed by **kwargs and leave the actions Discrete: the action type it is
    env = jaxmarl.make("MPE_simple_spread_v3", num_agents=n, num_landmarks=n, action_type=CONTINUOUS_ACT)
    agents = env.agents
    space = env.action_space(agents[0])
    assert isinstance(space, Box) and space.shape == (5,), f"expected a Box (5,) action space, got {space}"
    act_dim, obs_dim = space.shape[0], env.observation_space(agents[0]).shape[0]
    num_envs, rollout_length = args.num_envs, args.rollout_length
    batch = num_envs * rollout_length  # samples per agent per update
    num_updates = math.ceil(args.total_steps / batch)
    mb_size = batch // args.num_minibatches  # the remainder, if any, is left out of every epoch (as in torch)

    # -- one agent's network; every function below is vmapped over the agent axis ----------------------------------
    def init_agent(key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        ortho, h = jax.nn.initializers.orthogonal, args.hidden_size
        return {
            "w1": ortho(math.sqrt(2))(k1, (obs_dim, h)),
            "b1": jnp.zeros(h),
            "w2": ortho(math.sqrt(2))(k2, (h, h)),
            "b2": jnp.zeros(h),
            # the Gaussian mean (gain 0.01) and the value (gain 1) from one matmul
            "head_w": jnp.concatenate([ortho(0.01)(k3, (h, act_dim)), ortho(1.0)(k4, (h, 1))], axis=1),
            "head_b": jnp.zeros(act_dim + 1),
            "log_std": jnp.full(act_dim, args.init_log_std),
        }

    def init_normaliser(_):
        return {"mean": jnp.zeros(obs_dim), "var": jnp.ones(obs_dim), "count": jnp.float32(1e-4)}

    def normalise(stats, obs):
        return jnp.clip((obs - stats["mean"]) / jnp.sqrt(stats["var"] + 1e-8), -args.obs_clip, args.obs_clip)

    def update_normaliser(stats, obs):
        """Merge samples obs [N, D] into the running mean and population variance (Chan et al.'s parallel update)."""
        count = obs.shape[0]
        total = stats["count"] + count
        delta = obs.mean(0) - stats["mean"]
        m2 = stats["var"] * stats["count"] + obs.var(0) * count + delta**2 * stats["count"] * count / total
        return {"mean": stats["mean"] + delta * count / total, "var": m2 / total, "count": total}

    def forward(params, x):
        """Normalised observations [..., D] -> (Gaussian mean [..., act], value [...])."""
        x = jax.nn.relu(x @ params["w1"] + params["b1"])
        x = jax.nn.relu(x @ params["w2"] + params["b2"])
        out = x @ params["head_w"] + params["head_b"]
        return out[..., :-1], out[..., -1]

    def policy(params, stats, obs):
        """Every agent on its own observations [A, E, D]: (mean [A, E, act], value [A, E])."""
        return jax.vmap(lambda p, s, o: forward(p, normalise(s, o)))(params, stats, obs)

    # -- the env: one env stepped with all agents' actions [A, act], vmapped over the envs --------------------------
    def env_reset(key):
        obs, state = env.reset(key)
        return jnp.stack([obs[a] for a in agents]), state

    def env_step(key, state, actions):
        """(the observations after the step, those to act on next: the reset ones where the episode ended, the
        next state, rewards [A], done)."""
        key_step, key_reset = jax.random.split(key)
        actions = {a: actions[i] for i, a in enumerate(agents)}
        obs, state, reward, _, _ = env.step_env(key_step, state, actions)
        done = state.step >= args.episode_length  # state.step counts this episode's transitions
        final_obs = jnp.stack([obs[a] for a in agents])
        reset_obs, reset_state = env_reset(key_reset)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state)
        return final_obs, jnp.where(done, reset_obs, final_obs), state, jnp.stack([reward[a] for a in agents]), done

    # -- PPO -----------------------------------------------------------------------------------------------------
    steps_per_update = args.update_epochs * args.num_minibatches

    def learning_rate(count):  # Adam's step count -> update u's lr * (1 - u / num_updates)
        return args.lr * (1.0 - (count // steps_per_update) / num_updates) if args.anneal_lr else args.lr

    optimiser = optax.adam(learning_rate, b1=0.9, b2=0.999, eps=args.adam_eps)

    def agent_loss(params, obs, actions, old_logprob, advantages, returns):
        """One agent's PPO loss on its minibatch (normalised observations)."""
        mean, value = forward(params, obs)
        log_std = params["log_std"]
        logprob = (-0.5 * ((actions - mean) / jnp.exp(log_std)) ** 2 - log_std - LOG_SQRT_2PI).sum(-1)
        if mb_size > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)
        ratio = jnp.exp(logprob - old_logprob)
        clipped = jnp.clip(ratio, 1.0 - args.clip_coef, 1.0 + args.clip_coef)
        policy_loss = jnp.maximum(-advantages * ratio, -advantages * clipped).mean()
        value_loss = 0.5 * ((value - returns) ** 2).mean()
        entropy = (log_std + 0.5 + LOG_SQRT_2PI).sum()
        return policy_loss + args.vf_coef * value_loss - args.ent_coef * entropy

    def clip_per_agent(grads):
        """Scale each agent's gradients so that their norm over all its tensors is at most max_grad_norm."""
        leaves = jax.tree.leaves(grads)
        norm = jnp.sqrt(sum((g.reshape(n, -1) ** 2).sum(1) for g in leaves))
        coef = jnp.minimum(args.max_grad_norm / (norm + 1e-6), 1.0)
        return jax.tree.map(lambda g: g * coef.reshape(-1, *[1] * (g.ndim - 1)), grads)

    def minibatch_step(carry, minibatch):
        params, opt_state = carry
        total_loss = lambda p: jax.vmap(agent_loss)(p, *minibatch).sum()  # agent i's gradient: its own loss's
        grads = clip_per_agent(jax.grad(total_loss)(params))
        updates, opt_state = optimiser.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
        params = {**params, "log_std": jnp.clip(params["log_std"], args.log_std_min, args.log_std_max)}
        return (params, opt_state), None

    def epoch(carry, key):
        """One pass over the rollout in num_minibatches minibatches, one shuffle shared by the agents."""
        data = carry[2]
        order = jax.random.permutation(key, batch)[: args.num_minibatches * mb_size]
        split = lambda x: jnp.take(x, order, axis=1).reshape(n, args.num_minibatches, mb_size, *x.shape[2:])
        minibatches = jax.tree.map(lambda x: jnp.swapaxes(split(x), 0, 1), data)  # [minibatches, A, mb, ...]
        (params, opt_state), _ = jax.lax.scan(minibatch_step, carry[:2], minibatches)
        return (params, opt_state, data), None

    # -- one update: a rollout, GAE, the PPO epochs, then the normaliser ---------------------------------------------
    def rollout_step(carry, _):
        params, stats, env_state, obs, episode_return, key = carry
        key, key_act, key_env = jax.random.split(key, 3)
        mean, value = policy(params, stats, obs)  # [A, E, act], [A, E]
        noise = jax.random.normal(key_act, mean.shape)
        log_std = params["log_std"][:, None, :]
        action = mean + jnp.exp(log_std) * noise  # unclipped: what PPO learns from
        logprob = -0.5 * (noise**2).sum(-1) - (log_std.sum(-1) + act_dim * LOG_SQRT_2PI)
        env_actions = jnp.swapaxes(jnp.clip(action, 0.0, 1.0), 0, 1)  # [E, A, act], clipped to the action Box
        keys = jax.random.split(key_env, num_envs)
        final_obs, next_obs, env_state, reward, done = jax.vmap(env_step)(keys, env_state, env_actions)
        final_obs, next_obs, reward = (jnp.swapaxes(x, 0, 1) for x in (final_obs, next_obs, reward))  # agents first
        # truncation: bootstrap V(final observation), one value pass only on the steps where some episode ends
        bootstrap = jax.lax.cond(
            done.any(),
            lambda: jnp.where(done, policy(params, stats, final_obs)[1], 0.0),
            lambda: jnp.zeros((n, num_envs)),
        )
        episode_return = episode_return + reward.sum(0)  # the score: summed over the agents
        finished = jnp.where(done, episode_return, 0.0)
        transition = (obs, action, logprob, value, reward, done, bootstrap, finished)
        return (params, stats, env_state, next_obs, jnp.where(done, 0.0, episode_return), key), transition

    def update_step(carry, key):
        params, opt_state, stats, env_state, obs, episode_return = carry
        key_rollout, key_epochs = jax.random.split(key)
        (_, _, env_state, obs, episode_return, _), rollout = jax.lax.scan(
            rollout_step, (params, stats, env_state, obs, episode_return, key_rollout), None, rollout_length
        )
        rollout_obs, actions, logprobs, values, rewards, dones, bootstraps, finished = rollout  # [T, A, E, ...]

        # GAE: V(s_{t+1}) inside an episode, the bootstrap where it ended; no advantage crosses an episode's end
        last_value = policy(params, stats, obs)[1]
        next_values = jnp.concatenate([values[1:], last_value[None]])
        next_values = jnp.where(dones[:, None, :], bootstraps, next_values)
        deltas = rewards + args.gamma * next_values - values
        continues = 1.0 - dones[:, None, :]

        def gae_step(advantage, x):
            delta, cont = x
            advantage = delta + args.gamma * args.gae_lambda * cont * advantage
            return advantage, advantage

        _, advantages = jax.lax.scan(gae_step, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True)
        returns = advantages + values

        # [T, A, E, ...] -> [A, T * E, ...], time-major per agent; observations normalised once (the normaliser is
        # fixed during the update)
        flat = lambda x: jnp.swapaxes(x, 0, 1).reshape(n, batch, *x.shape[3:])
        raw_obs = flat(rollout_obs)
        data = (jax.vmap(normalise)(stats, raw_obs), flat(actions), flat(logprobs), flat(advantages), flat(returns))
        keys = jax.random.split(key_epochs, args.update_epochs)
        (params, opt_state, _), _ = jax.lax.scan(epoch, (params, opt_state, data), keys)
        stats = jax.vmap(update_normaliser)(stats, raw_obs)  # after the update: it saw the acting pipeline
        scores = (finished.sum(), dones.sum())  # episode scores ended in this rollout, and how many
        return (params, opt_state, stats, env_state, obs, episode_return), scores

    def train(key):
        key_init, key_reset, key_updates = jax.random.split(key, 3)
        params = jax.vmap(init_agent)(jax.random.split(key_init, n))  # every leaf [A, ...]
        stats = jax.vmap(init_normaliser)(jnp.arange(n))
        obs, env_state = jax.vmap(env_reset)(jax.random.split(key_reset, num_envs))
        carry = (params, optimiser.init(params), stats, env_state, jnp.swapaxes(obs, 0, 1), jnp.zeros(num_envs))
        carry, scores = jax.lax.scan(update_step, carry, jax.random.split(key_updates, num_updates))
        return carry[0], scores

    return train, num_updates, obs_dim


@contextlib.contextmanager
def stdout_silenced():
    """File descriptor 1 to /dev/null for a while: jaxmarl prints on import (and one of its modules resets
    sys.stdout to sys.__stdout__, so redirecting sys.stdout is not enough); stdout is this script's JSON line."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def start_watchdog(seconds: float) -> None:
    """End the process with exit code TIMED_OUT if it still runs after `seconds` (0: no watchdog)."""

    def give_up():
        print(f"jax_ippo: timed out after {seconds:g} s (try --xla-threads 1)", file=sys.stderr, flush=True)
        os._exit(TIMED_OUT)

    if seconds > 0:
        timer = threading.Timer(seconds, give_up)
        timer.daemon = True
        timer.start()


def cpu_info() -> dict:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"model": model or platform.processor(), "logical_cpus": os.cpu_count(), "usable_cpus": affinity}


def main(argv=None) -> int:
    args = parse_args(argv)
    start_watchdog(args.timeout)
    if args.xla_threads == "1":  # XLA reads its flags when JAX initialises its CPU backend: before the import
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREAD_FLAGS}".strip()
    try:
        with stdout_silenced():  # jaxmarl prints about its optional environments on import
            import jax
            import jaxmarl  # noqa: F401
            import optax  # noqa: F401
        devices = [str(d) for d in jax.devices()]
    except Exception as e:  # any failure to load JAX or JaxMARL: the reference is unavailable here
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        print(
            f"jax_ippo: JAX reference unavailable: {reason}; pip install -r benchmarks/requirements-jax.txt",
            file=sys.stderr,
        )
        return NOT_INSTALLED
    imported = time.perf_counter()

    train, num_updates, obs_dim = make_train(args)
    key = jax.random.PRNGKey(args.seed)
    t0 = time.perf_counter()
    compiled = jax.jit(train).lower(key).compile()
    t1 = time.perf_counter()
    params, (score_sums, episodes) = jax.block_until_ready(compiled(key))
    t2 = time.perf_counter()

    score_sums, episodes = jax.device_get((score_sums, episodes))
    tenth = max(1, num_updates // 10)
    mean_score = lambda s: float(score_sums[s].sum() / max(1, episodes[s].sum()))
    env_steps = num_updates * args.num_envs * args.rollout_length
    record = {
        "implementation": "jax_ippo",
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "obs_dim": obs_dim,
        "num_updates": num_updates,
        "env_steps": env_steps,
        "import_s": imported - START,
        "startup_s": t0 - START,
        "compile_s": t1 - t0,
        "run_s": t2 - t1,
        "sps_run": env_steps / (t2 - t1),
        "sps_end_to_end": env_steps / (t2 - START),
        "xla_threads": args.xla_threads,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "score_first_10pct": mean_score(slice(0, tenth)),
        "score_last_10pct": mean_score(slice(num_updates - tenth, num_updates)),
        "score_definition": "mean episode return summed over the agents (JaxMARL's rewards), episodes ended in "
        "the first / last 10% of the updates",
        "final_log_std_mean": float(params["log_std"].mean()),
        "versions": {p: version(p) for p in ("jax", "jaxlib", "jaxmarl", "optax")},
        "python": platform.python_version(),
        "devices": devices,
        "cpu": cpu_info(),
    }
    line = json.dumps(record)
    print(line)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
