"""How alike agents' latents are, from stacked latents [A, B, latent] of A agents on the same B
inputs: the linear centred kernel alignment (CKA, Kornblith et al. 2019), the mean L2 distance, and
the relative distance ||f_i(o) - f_j(o)|| / ||f_j(o)||.  Method I logs latent_alignment on a fixed
probe batch (the first rollout's observations) and pair_alignment over its topology's pairs on the
latest rollout's and the test episodes' observations."""

from __future__ import annotations

import numpy as np
import torch


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centred kernel alignment of two representations [B, dx], [B, dy] of the same B inputs:
    ||Xc^T Yc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) with column-centred Xc, Yc (Kornblith et al. 2019)."""
    x, y = (x - x.mean(0)).double(), (y - y.mean(0)).double()
    return _cka(x, y, (x.T @ x).norm(), (y.T @ y).norm())


def _cka(x, y, gram_norm_x, gram_norm_y) -> float:
    """linear_cka of centred float64 x, y given ||Xc^T Xc||_F and ||Yc^T Yc||_F."""
    denominator = gram_norm_x * gram_norm_y
    return float((x.T @ y).norm() ** 2 / denominator) if denominator > 0 else float("nan")


@torch.no_grad()
def latent_alignment(z: torch.Tensor) -> tuple:
    """(mean pairwise L2 distance, mean pairwise linear CKA) between the latents z [A, B, latent] of A >= 2
    agents on the same B inputs.  CKA is 1 when two agents' latents agree up to rotation and isotropic
    scaling, near 0 when unrelated."""
    pairs = [(i, j) for i in range(len(z)) for j in range(i + 1, len(z))]
    distance = np.mean([(z[i] - z[j]).norm(dim=-1).mean().item() for i, j in pairs])
    centred = [(x - x.mean(0)).double() for x in z]
    gram_norms = [(x.T @ x).norm() for x in centred]  # each agent's once, not once per pair
    cka = [_cka(centred[i], centred[j], gram_norms[i], gram_norms[j]) for i, j in pairs]
    return float(distance), float(np.mean(cka))


@torch.no_grad()
def pair_alignment(z: torch.Tensor, pairs) -> tuple:
    """(mean linear CKA, mean relative distance) over ordered pairs (i, j) of the latents z [A, B, latent];
    the relative distance of (i, j) is mean_b ||z_i - z_j|| / mean_b ||z_j|| (a ratio of means, so that
    inputs where j's latent is 0 do not dominate; 0 when i and j agree).  (nan, nan) without pairs."""
    if not pairs:
        return float("nan"), float("nan")
    agents = sorted({k for pair in pairs for k in pair})
    centred = {k: (z[k] - z[k].mean(0)).double() for k in agents}  # linear_cka's, each agent's once
    gram_norms = {k: (x.T @ x).norm() for k, x in centred.items()}
    cka = [_cka(centred[i], centred[j], gram_norms[i], gram_norms[j]) for i, j in pairs]
    norms = z.norm(dim=-1).mean(-1)  # [A]
    distance = lambda i, j: ((z[i] - z[j]).norm(dim=-1).mean() / norms[j]).item() if norms[j] > 0 else float("nan")
    relative = [distance(i, j) for i, j in pairs]
    return float(np.mean(cka)), float(np.mean(relative))
