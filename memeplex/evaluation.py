"""What the eval scripts print and render for a trained policy: the score on
held-out seeds with its 95% CI (spread, reference; on reference also the
communication gap closed and the signalling and listening diagnostics),
win-rates against random, itself and an --opponent (tag), and --render to a
GIF (headless) or a window."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from memeplex import checkpoints, cli, competitive, errors, plots, protocol
from memeplex.envs import spec
from memeplex.files import atomic_write, check_writable


@dataclass(frozen=True)
class EvalOptions:
    """An eval script's command line (add_eval_arguments), parsed once by parse_eval_options."""

    checkpoint: str | None
    """the checkpoint file (None: find_checkpoint's default)"""
    env: str | None
    """the environment the checkpoint must be of (None: its own)"""
    episodes: int
    split: str
    """evaluation seed set: test or validation"""
    render: str | None
    """None, gif or human"""
    render_episodes: int
    out: str | None
    """GIF path (None: next to the checkpoint)"""
    fps: int
    opponent: str | None
    """tag: a checkpoint to play against"""


def parse_eval_options(parser, argv=None) -> EvalOptions:
    """The options of an eval script's command line."""
    args = parser.parse_args(argv)
    return EvalOptions(**{f.name: getattr(args, f.name) for f in fields(EvalOptions)})


def add_eval_arguments(parser, algo_dirs) -> None:
    """The options every eval_*.py shares (EvalOptions)."""
    parser.add_argument(
        "--checkpoint",
        default=None,
        help=f"checkpoint file (default: your newest latest.pt under checkpoints/ENV/{{{','.join(algo_dirs)}}}/, "
        f"ENV = --env or spread; without one, the shipped {algo_dirs[0]} checkpoint of reporting seed 1)",
    )
    parser.add_argument("--episodes", type=cli.positive(int), default=100, help="deterministic evaluation episodes")
    parser.add_argument(
        "--split",
        choices=["test", "validation"],
        default="test",
        help="evaluation seed set (test = the held-out seeds of the final evaluation)",
    )
    parser.add_argument(
        "--render",
        nargs="?",
        const="gif",
        choices=["gif", "human"],
        default=None,
        help="also render episodes: an animated GIF (headless) or a window (human)",
    )
    parser.add_argument("--render-episodes", type=cli.positive(int), default=1, help="episodes to render")
    parser.add_argument("--out", default=None, help="GIF path for --render gif (default: next to the checkpoint)")
    parser.add_argument("--fps", type=cli.positive(int), default=10, help="frames per second of the GIF")
    parser.add_argument(
        "--opponent",
        default=None,
        help="tag only: a checkpoint of any algorithm to play against (both ways), in addition to "
        "random; --render then shows the checkpoint's predators chasing the opponent's prey",
    )
    parser.add_argument(
        "--env",
        default=None,
        choices=sorted(spec.ENVS),
        help="expected environment (default: the checkpoint's); a mismatch is an error",
    )


def has_display() -> bool:
    """Whether a window can open (--render human)."""
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def gif_path(opts: EvalOptions, ckpt_path: Path) -> Path:
    """Where --render gif writes the GIF."""
    return Path(opts.out) if opts.out else ckpt_path.with_suffix(".gif")


def evaluate_and_render(opts: EvalOptions, env_name: str, policy, label: str, ckpt_path: Path) -> dict:
    """What every eval_*.py prints and renders for a trained policy."""
    if opts.render == "human" and not has_display():
        raise errors.UsageError("no display for --render human (DISPLAY is not set); use --render gif")
    if opts.render == "gif":
        check_writable(gif_path(opts, ckpt_path).parent, "--out")
    if env_name == "tag":
        return _evaluate_and_render_tag(opts, policy, label, ckpt_path)
    if opts.opponent is not None:
        raise errors.UsageError(f"--opponent is for tag checkpoints; this one is trained on {env_name!r}")
    res = protocol.evaluate(env_name, policy, opts.split, opts.episodes)
    refs = res["references"]
    print(
        f"{label} on {env_name}: mean score {res['score']:.2f} ± {res['ci']:.2f} (95% CI, {res['episodes']} episodes, "
        f"{opts.split} seeds)"
    )
    print(
        f"normalised score {res['normalised']:.3f}  "
        f"(0 = random {refs['random']:.2f}, 1 = oracle {refs.get('oracle', float('nan')):.2f})"
    )
    if "no_comm" in refs:  # reference: do the agents talk?
        from memeplex import communication

        talk = communication.diagnose(env_name, policy, protocol.eval_seeds(opts.split, opts.episodes))
        res.update(comm_gap_closed=res["comm_gap_closed"], **talk)
        print(
            f"communication gap closed {res['comm_gap_closed']:.3f} (0 = no communication {refs['no_comm']:.2f}, "
            f"1 = oracle); signalling {talk['signalling']:.2f} (chance 0.33), listening {talk['listening']:.3f} "
            f"(distance to own target with another episode's messages minus with the real ones)"
        )
    if opts.render:
        out, path = render(opts, env_name, policy, ckpt_path)
        if path is not None:
            scores = ", ".join(f"{s:.1f}" for s in out["scores"])
            print(f"rendered {opts.render_episodes} episode(s), scores {scores}: {path}")
        res["render_scores"] = out["scores"]
    return res


def render(opts: EvalOptions, env_name: str, policy, ckpt_path: Path) -> tuple:
    """--render: opts.render_episodes episodes of `policy` in a window (human) or into the GIF at gif_path
    (gif). Returns (run_episodes' result, the GIF's path or None)."""
    render_env = spec.make_env(env_name, render_mode="rgb_array" if opts.render == "gif" else "human")
    out = protocol.run_episodes(env_name, policy, protocol.eval_seeds(opts.split, opts.render_episodes),
                                render_env=render_env)  # fmt: skip
    render_env.close()
    if opts.render != "gif":
        return out, None
    path = gif_path(opts, ckpt_path)
    atomic_write(path, plots.gif(out["frames"], opts.fps))
    return out, path


def _evaluate_and_render_tag(opts: EvalOptions, policy, label: str, ckpt_path: Path) -> dict:
    """eval_*.py on a tag checkpoint: win-rates and contacts of both teams
    against random, against themselves and against an --opponent checkpoint."""
    seeds = protocol.eval_seeds(opts.split, opts.episodes)
    opponents = [
        ("random", protocol.RandomPolicy("tag"))
    ]  # competitive.play() starts it afresh in every pairing, as the run's test games do
    if opts.opponent is not None:
        opponents.append((f"opponent {opts.opponent}", checkpoints.load_policy(opts.opponent, "tag")[0]))
    print(
        f"{label} on tag: {opts.episodes} episodes per pairing ({opts.split} seeds); a predator win = at least one "
        f"predator-prey contact"
    )
    res = {}
    for name, opp in opponents + [("itself", policy)]:
        as_pred, as_prey = competitive.play("tag", policy, opp, seeds), competitive.play("tag", opp, policy, seeds)
        p, pci = competitive.rate_ci(as_pred["wins"])
        q, qci = competitive.rate_ci(1.0 - as_prey["wins"])
        res[name] = {
            "predator_win": p,
            "prey_win": q,
            "contacts_as_predators": float(as_pred["contacts"].mean()),
            "contacts_as_prey": float(as_prey["contacts"].mean()),
        }
        print(
            f"  vs {name}: predators win {p:.2f} ± {pci:.2f} (contacts/episode {as_pred['contacts'].mean():.2f}), "
            f"prey win {q:.2f} ± {qci:.2f} (contacts/episode {as_prey['contacts'].mean():.2f})"
        )
    if opts.render:
        prey = opponents[-1][1] if opts.opponent is not None else policy
        out, path = render(opts, "tag", competitive.combine("tag", policy, prey), ckpt_path)
        if path is not None:
            contacts = ", ".join(str(c) for c in out["contacts"])
            print(f"rendered {opts.render_episodes} episode(s), contacts {contacts}: {path}")
    return res
