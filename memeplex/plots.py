"""Figures of runs and pools: each function returns a matplotlib Figure and
the caller saves it (files.save_figure), so no file layout is decided here."""

from __future__ import annotations

import io
import math

import numpy as np

from memeplex.competitive import ELO_ANCHOR

TRAINING_PANELS = (("latent_distance", "latent distance"), ("log_std", "mean log std"))


def training(rows: list, refs: dict, title: str, panels=TRAINING_PANELS):
    """Eval score (95% CI band) over env steps with the reference lines, plus
    one small panel per extra metric present in the rows."""
    plt = pyplot()
    panels = [(k, label) for k, label in panels if any(_finite(r.get(k)) for r in rows)]
    fig, axes = plt.subplots(
        1 + len(panels),
        1,
        figsize=(7, 4 + 1.8 * len(panels)),
        sharex=True,
        gridspec_kw={"height_ratios": [3] + [1] * len(panels)},
        squeeze=False,
    )
    axes = axes[:, 0]
    steps = np.array([r["step"] for r in rows], dtype=float)
    score = np.array([r["eval_score"] for r in rows], dtype=float)
    ci = np.array([r.get("eval_ci", np.nan) for r in rows], dtype=float)
    ax = axes[0]
    ax.plot(steps, score, marker="o", ms=3, label="eval score (deterministic)")
    ax.fill_between(steps, score - ci, score + ci, alpha=0.25)
    for key, style in (("oracle", "--"), ("no_comm", "-."), ("random", ":")):
        if key in refs:
            ax.axhline(refs[key], color="gray", ls=style, label=f"{key} ({refs[key]:.1f})")
    ax.set_ylabel("episode score")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    for ax, (key, label) in zip(axes[1:], panels):
        ax.plot(steps, [r.get(key, np.nan) for r in rows], marker=".", color="C1")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("env steps")
    fig.tight_layout()
    return fig


def competitive(rows: list, title: str):
    """Self-play curves: both teams' Elo (random = 1000), win-rates against
    the random team, and the exploitability proxy, over env steps."""
    plt = pyplot()
    steps = np.array([r["step"] for r in rows], dtype=float)
    col = lambda k: np.array([r.get(k, np.nan) for r in rows], dtype=float)
    fig, axes = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.5, 1.5]})
    for team, c in (("predator", "C3"), ("prey", "C0")):
        axes[0].plot(steps, col(f"{team}_elo"), marker="o", ms=3, color=c, label=f"{team} Elo")
        axes[1].plot(steps, col(f"{team}_win_vs_random"), marker=".", color=c, label=f"{team} vs random")
        axes[2].plot(steps, col(f"{team}_exploitability"), marker=".", color=c, label=team)
    axes[0].axhline(ELO_ANCHOR, color="gray", ls=":", label=f"random ({ELO_ANCHOR:.0f})")
    axes[0].set_ylabel("Elo vs rolling pool")
    axes[0].set_title(title)
    axes[1].set_ylabel("win-rate", fontsize=8)
    axes[1].set_ylim(-0.05, 1.05)
    axes[2].set_ylabel("exploitability", fontsize=8)
    axes[2].set_ylim(-0.05, 0.55)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("env steps")
    fig.tight_layout()
    return fig


def matrix(row_labels, col_labels, m, title: str):
    """Heatmap of a predator win-rate matrix (rows: predators, columns: prey)."""
    plt = pyplot()
    m = np.asarray(m, dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(col_labels), 1.0 + 0.6 * len(row_labels)))
    im = ax.imshow(m, vmin=0, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7)
    ax.set_xlabel("prey")
    ax.set_ylabel("predators")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{m[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(m[i, j] - 0.5) > 0.3 else "black",
            )
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def _finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)


def gif(frames, fps: int = 10) -> bytes:
    """Rendered frames as an animated GIF (bytes; the caller writes them)."""
    from PIL import Image

    images = [Image.fromarray(f).convert("P", palette=Image.ADAPTIVE) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return buf.getvalue()


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
