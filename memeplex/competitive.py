"""Competitive evaluation on simple_tag_v3, identical for every script: the win rule
(a predator win = at least one predator-prey contact, counted from the world
state), games between a predator team and a prey team, win-rate intervals,
Elo (K=32, random anchored at 1000) and the performance rating, the
exploitability proxy, the rolling self-play pool, and best-response matches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from memeplex import errors, protocol
from memeplex.envs import spec

ELO_K = 32.0
ELO_ANCHOR = 1000.0  # the random policy's fixed rating


def combine(name: str, predators, prey):
    """One policy from a predator-team policy and a prey-team policy (each may
    act for every agent; only its own team's actions are used)."""
    side = spec.teams(name)

    def policy(obs, state):
        pa, qa = predators(obs, state), prey(obs, state)
        return {**{a: pa[a] for a in side["predator"]}, **{a: qa[a] for a in side["prey"]}}

    return policy


def play(name: str, predators, prey, seeds, backend: str = "batched") -> dict:
    """Episodes of `predators` against `prey`, stepped by `backend`. A predator win is an
    episode with at least one predator-prey contact (from the world state)."""
    policy = combine(name, protocol.fresh(predators), protocol.fresh(prey))
    out = protocol.run_episodes(name, policy, seeds, backend=backend)
    return {"wins": out["contacts"] > 0, "contacts": out["contacts"], "env_steps": out["env_steps"]}


def rate_ci(wins) -> tuple:
    """Win-rate and the half-width of its 95% (normal) interval."""
    x = np.asarray(wins, dtype=np.float64)
    p = float(x.mean())
    return p, float(1.96 * math.sqrt(max(p * (1 - p), 1e-12) / len(x)))


def elo_expected(rating: float, opponent: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / 400.0))


def elo_update(rating: float, opponent: float, score: float, k: float = ELO_K) -> float:
    """One game: score 1 = win, 0 = loss, 0.5 = draw. Only `rating` moves."""
    return rating + k * (score - elo_expected(rating, opponent))


def elo_rate(rating: float, games, k: float = ELO_K) -> float:
    """Sequential Elo updates over (opponent_rating, score) games, in order."""
    for opponent, score in games:
        rating = elo_update(rating, opponent, score, k)
    return rating


def performance_rating(games) -> float:
    """The rating R at which the Elo-expected score against these opponents
    equals the actual score: sum_j E(R, r_j) = sum_j s_j (the maximum-likelihood
    Elo, and where game-by-game K updates against fixed opponents hover).
    A perfect or zero score is counted as half a game short of it, so R stays finite."""
    games = list(games)
    if not games:
        return float("nan")
    total = min(max(sum(s for _, s in games), 0.5), len(games) - 0.5)
    lo, hi = -4000.0, 6000.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if sum(elo_expected(mid, r) for r, _ in games) < total:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def interleave(results: list) -> list:
    """[(opponent_rating, [scores...]), ...] -> games ordered round-robin
    (episode 0 against every opponent, then episode 1, ...), so no opponent
    is played in a block at the end."""
    n = max((len(s) for _, s in results), default=0)
    return [(r, float(s[i])) for i in range(n) for r, s in results if i < len(s)]


def exploitability(win_rates) -> float:
    """Exploitability proxy: max(0, 0.5 - the lowest win-rate against the pool)."""
    return max(0.0, 0.5 - min(win_rates)) if len(win_rates) else float("nan")


class BestResponse:
    """One team learning against a frozen opponent (best-response training, to measure how
    exploitable the opponent is): the learner's win-rate against it is the metric. Its games
    are stepped by `backend`."""

    def __init__(self, name: str, team: str, opponent, episodes: int, backend: str = "batched"):
        self.name, self.team, self.opponent, self.episodes = name, team, opponent, episodes
        self.backend = backend

    def play(self, policy, seeds) -> dict:
        """Episodes of the learning team's `policy` against the opponent; "wins" are the team's."""
        hunters, hunted = (policy, self.opponent) if self.team == "predator" else (self.opponent, policy)
        out = play(self.name, hunters, hunted, seeds, self.backend)
        return {**out, "wins": out["wins"] if self.team == "predator" else ~out["wins"]}

    def evaluate(self, policy, split: str = "validation", episodes: int | None = None) -> dict:
        """The team's win-rate (95% CI) and contacts per episode against the opponent on `split`'s seeds."""
        n = episodes or self.episodes
        out = self.play(policy, protocol.eval_seeds(split, n))
        rate, ci = rate_ci(out["wins"])
        return {
            "best_response_win_rate": rate,
            "best_response_win_rate_ci": ci,
            "contacts": float(out["contacts"].mean()),
            "episodes": n,
        }


class SelfPlayPool:
    """The rolling opponent pool of a self-play run and its Elo ratings.

    Every evaluation freezes both teams of the current policy into the pool
    (its checkpoint file; the oldest entry leaves when the pool is full, the
    file stays on disk).  The current predators then play `episodes` episodes
    against the random prey and against every pool prey, and the current prey
    likewise; each team's Elo is updated game by game (K=32) against the
    opponents' ratings: random is anchored at 1000, a pool snapshot keeps the
    rating its team had when it was frozen.  All games are stepped by `backend`.
    """

    def __init__(self, name: str, size: int, episodes: int, load_policy, backend: str = "batched"):
        self.name, self.size, self.episodes, self.load_policy = name, size, episodes, load_policy
        self.backend = backend
        self.entries = []  # {"step", "path", "predator_elo", "prey_elo", "policy"}
        self.ratings = {"predator": ELO_ANCHOR, "prey": ELO_ANCHOR}

    def add(self, step: int, path) -> None:
        self.entries.append(
            {
                "step": int(step),
                "path": str(path),
                "predator_elo": self.ratings["predator"],
                "prey_elo": self.ratings["prey"],
                "policy": self.load_policy(path),
            }
        )
        del self.entries[: -self.size]

    def _play(self, predators, prey, seeds) -> dict:
        return play(self.name, predators, prey, seeds, self.backend)

    def evaluate(self, policy, split: str = "validation", episodes: int | None = None, update: bool = True) -> dict:
        """Current teams against random and against the pool; updates the
        ratings (unless update=False) and returns the metrics row."""
        n = episodes or self.episodes
        seeds = protocol.eval_seeds(split, n)
        rnd = protocol.RandomPolicy(self.name)
        pred = {"random": self._play(policy, rnd, seeds)}
        prey = {"random": self._play(rnd, policy, seeds)}
        for e in self.entries:
            pred[e["step"]] = self._play(policy, e["policy"], seeds)
            prey[e["step"]] = self._play(e["policy"], policy, seeds)
        pred_rates = {k: float(v["wins"].mean()) for k, v in pred.items()}
        prey_rates = {k: 1.0 - float(v["wins"].mean()) for k, v in prey.items()}
        opp = {e["step"]: e for e in self.entries}
        new = {
            "predator": elo_rate(
                self.ratings["predator"],
                interleave(
                    [
                        (ELO_ANCHOR if k == "random" else opp[k]["prey_elo"], v["wins"].astype(float))
                        for k, v in pred.items()
                    ]
                ),
            ),
            "prey": elo_rate(
                self.ratings["prey"],
                interleave(
                    [
                        (ELO_ANCHOR if k == "random" else opp[k]["predator_elo"], 1.0 - v["wins"].astype(float))
                        for k, v in prey.items()
                    ]
                ),
            ),
        }
        if update:
            self.ratings = new
        pool_pred = [pred_rates[k] for k in opp]
        pool_prey = [prey_rates[k] for k in opp]
        selfplay = self._play(policy, policy, seeds)
        return {
            "predator_elo": new["predator"],
            "prey_elo": new["prey"],
            "predator_win_vs_random": pred_rates["random"],
            "prey_win_vs_random": prey_rates["random"],
            "predator_win_vs_random_ci": rate_ci(pred["random"]["wins"])[1],
            "prey_win_vs_random_ci": rate_ci(prey["random"]["wins"])[1],
            "predator_min_win_vs_pool": min(pool_pred, default=float("nan")),
            "prey_min_win_vs_pool": min(pool_prey, default=float("nan")),
            "predator_exploitability": exploitability(pool_pred),
            "prey_exploitability": exploitability(pool_prey),
            "self_play_predator_win": float(selfplay["wins"].mean()),
            "self_play_predator_win_ci": rate_ci(selfplay["wins"])[1],
            "contacts_self_play": float(selfplay["contacts"].mean()),
            "contacts_vs_random_prey": float(pred["random"]["contacts"].mean()),
            "contacts_vs_random_predators": float(prey["random"]["contacts"].mean()),
            "elo_episodes": n,
            "pool": " ".join(str(k) for k in opp),
        }

    def matrix(self, episodes: int, split: str = "validation"):
        """Predator win-rates of every pool snapshot's predators (rows) against
        every pool snapshot's prey (columns), random included. Returns
        (labels, matrix)."""
        seeds = protocol.eval_seeds(split, episodes)
        labels = ["random"] + [f"step {e['step']}" for e in self.entries]
        policies = [protocol.RandomPolicy(self.name)] + [e["policy"] for e in self.entries]
        m = np.array([[float(self._play(p, q, seeds)["wins"].mean()) for q in policies] for p in policies])
        return labels, m

    def state_dict(self) -> dict:
        return {
            "ratings": dict(self.ratings),
            "entries": [{k: v for k, v in e.items() if k != "policy"} for e in self.entries],
        }

    def load_state_dict(self, state: dict, snapshot_dir=None) -> None:
        """`snapshot_dir`: where the snapshots are now, if the run's checkpoint directory moved (a run resumed
        under another --checkpoint-dir, as on a cluster's node): each entry's file is looked up there by name."""
        self.ratings = dict(state["ratings"])
        self.entries = []
        for e in state["entries"]:
            if snapshot_dir is not None:
                e = {**e, "path": str(Path(snapshot_dir) / Path(e["path"]).name)}
            if not Path(e["path"]).exists():
                raise errors.UsageError(
                    f"--resume: pool snapshot {e['path']} is missing (pool files must not be pruned "
                    f"while a run is still to be resumed)"
                )
            self.entries.append({**e, "policy": self.load_policy(e["path"])})
