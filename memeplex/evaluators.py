"""How a training run is evaluated: one interface, three modes.

    Cooperative   spread, reference: the deterministic policy's score on the validation seeds
                  (protocol.evaluate); on reference also the communication gap closed and whether
                  the agents talk (communication.diagnose)
    SelfPlay      tag: both teams frozen into a rolling pool after every evaluation, rated by Elo
                  against it and the random team (competitive.SelfPlayPool)
    BestResponse  tag with --opponent: one team's win-rate against a frozen checkpoint

Each one gives the periodic evaluation (its metrics row and one-line message), its part of
summary.json, the final held-out test, the training plot, and, for MADDPG's fitness games, a
policy's score on given seeds. for_run picks the mode of a run once; the training loops then
only call the interface.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from memeplex import competitive, plots, protocol
from memeplex.checkpoints import load_policy
from memeplex.files import save_figure, write_csv
from memeplex.options import RunOptions
from memeplex.rundir import RunDir


def for_run(opts: RunOptions, run: RunDir, opponent=None) -> Evaluator:
    """The evaluation of a run: cooperative on spread; on tag the self-play pool, or with a frozen
    `opponent` policy (--opponent) the best response against it."""
    if opts.env != "tag":
        return Cooperative(opts, run)
    if opponent is not None:
        return BestResponse(opts, run, opponent)
    return SelfPlay(opts, run)


class Evaluator:
    """The evaluation interface every mode implements (the base class times the periodic
    evaluation and adds the columns every metrics row carries)."""

    def __init__(self, opts: RunOptions, run: RunDir):
        self.opts, self.run = opts, run
        self.test_observations = None  # dict agent -> [N, D]: what the policy saw in the final test, if recorded

    def resume(self, progress) -> None:
        """Take up the state a resumed run's progress carries (the self-play pool)."""

    def evaluate(self, policy, progress, snapshot, final: bool) -> tuple:
        """One periodic evaluation of the current policy. `snapshot(path)` saves the policy as a
        checkpoint (the self-play pool reads its snapshots from their files); `final` marks the
        run's last one. The caller then appends the row and checkpoints the state after it.
        Returns (metrics row without step columns, one-line message)."""
        t0 = time.perf_counter()
        progress.evals += 1
        row, message = self.measure(policy, progress, snapshot, final)
        progress.eval_time += time.perf_counter() - t0
        return {"wall_time": round(progress.wall_time, 2), **row, **progress.throughput()}, message

    def measure(self, policy, progress, snapshot, final: bool) -> tuple:
        """The mode's part of evaluate: (row, message)."""
        raise NotImplementedError

    def summary(self, progress) -> dict:
        """The mode's metrics in summary.json."""
        raise NotImplementedError

    def final_test(self, policy) -> dict:
        """The final evaluation on the held-out test seeds (printed), as summary.json's test_* entries."""
        raise NotImplementedError

    def plot(self, title: str, panels=None) -> None:
        """The training plot of the run's metrics rows, if the mode has one."""

    def score(self, policy, seeds) -> tuple:
        """(a policy's one-number score on `seeds`, the env steps it took), nothing rated or recorded:
        MADDPG's fitness."""
        raise NotImplementedError

    def score_games(self, grown: bool = False) -> int:
        """Episodes score() plays per seed; `grown`: after the pool takes the next snapshot."""
        return 1


class Cooperative(Evaluator):
    """spread: the deterministic policy's mean score on the validation seeds, normalised between the
    random (0) and oracle (1) references."""

    def __init__(self, opts: RunOptions, run: RunDir):
        super().__init__(opts, run)
        self.refs = protocol.reference_scores(opts.env_id, "validation", opts.eval_episodes, opts.backend)
        self.talks = "no_comm" in self.refs  # reference: the communication gap and diagnostics too

    def talk(self, policy, split: str, episodes: int, prefix: str) -> dict:
        """reference: signalling and listening (communication.diagnose) as metrics named prefix + key."""
        from memeplex import communication

        d = communication.diagnose(self.opts.env_id, policy, protocol.eval_seeds(split, episodes))
        return {f"{prefix}signalling": d["signalling"], f"{prefix}listening": d["listening"]}

    def measure(self, policy, progress, snapshot, final: bool) -> tuple:
        res = protocol.evaluate(self.opts.env_id, policy, "validation", self.opts.eval_episodes, self.opts.backend)
        progress.best_mean = max(progress.best_mean, res["score"])
        progress.best_single = max(progress.best_single, res["best"])
        row = {
            "eval_score": res["score"],
            "eval_ci": res["ci"],
            "eval_normalised": res["normalised"],
            "eval_best_episode": res["best"],
            "train_score": progress.train_score(),
        }
        message = f"eval {res['score']:7.2f} ± {res['ci']:.2f}  (normalised {res['normalised']:.3f})"
        if self.talks:
            row["eval_comm_gap"] = res["comm_gap_closed"]
            row.update(self.talk(policy, "validation", self.opts.eval_episodes, "eval_"))
            message += (
                f"  gap closed {row['eval_comm_gap']:.3f}  signalling {row['eval_signalling']:.2f} "
                f"listening {row['eval_listening']:.3f}"
            )
        return row, message

    def summary(self, progress) -> dict:
        scores = [r["eval_score"] for r in self.run.rows]
        last5 = float(np.mean(scores[-5:])) if scores else float("nan")
        final = scores[-1] if scores else float("nan")
        last = self.run.rows[-1] if self.run.rows else {}
        talk = {}
        if self.talks:
            talk = {
                "last5_eval_comm_gap": protocol.comm_gap_closed(last5, self.refs),
                "final_eval_comm_gap": protocol.comm_gap_closed(final, self.refs),
                "final_eval_signalling": last.get("eval_signalling", float("nan")),
                "final_eval_listening": last.get("eval_listening", float("nan")),
            }
        return {
            "last5_eval_mean": last5,
            "last5_eval_normalised": protocol.normalised(last5, self.refs),
            "final_eval_score": final,
            "final_eval_normalised": protocol.normalised(final, self.refs),
            **talk,
            "best_mean_score": progress.best_mean,
            "best_single_eval_fitness": progress.best_single,
            "train_mean_score": progress.train_score(),
            "eval_episodes": self.opts.eval_episodes,
            "validation_references": self.refs,
        }

    def final_test(self, policy) -> dict:
        seen = []  # every observation the policy acts on in the test episodes (kept as test_observations)
        recording = lambda obs, state: (seen.append({a: np.array(o) for a, o in obs.items()}), policy(obs, state))[1]
        final = protocol.evaluate(self.opts.env_id, recording, "test", self.opts.final_eval_episodes, self.opts.backend)
        self.test_observations = {a: np.concatenate([o[a] for o in seen]) for a in seen[0]} if seen else None
        print(
            f"final test evaluation ({final['episodes']} episodes): {final['score']:.2f} ± {final['ci']:.2f}, "
            f"normalised {final['normalised']:.3f}"
        )
        talk = {}
        if self.talks:
            talk = {"test_comm_gap": final["comm_gap_closed"]}
            talk.update(self.talk(policy, "test", self.opts.final_eval_episodes, "test_"))
            print(
                f"communication gap closed {talk['test_comm_gap']:.3f}, signalling {talk['test_signalling']:.2f} "
                f"(chance 0.33), listening {talk['test_listening']:.3f}"
            )
        return {
            "test_score": final["score"],
            "test_ci": final["ci"],
            "test_normalised": final["normalised"],
            "test_episodes": final["episodes"],
            "test_references": final["references"],
            **talk,
        }

    def plot(self, title: str, panels=None) -> None:
        if self.run.rows:
            if self.talks:  # reference: whether the agents talk, below the score
                panels = (*(panels or plots.TRAINING_PANELS), ("eval_signalling", "signalling"),
                          ("eval_listening", "listening"))  # fmt: skip
            figure = plots.training(self.run.rows, self.refs, title, **({"panels": panels} if panels else {}))
            save_figure(figure, self.run.path / "training_plot.png")

    def score(self, policy, seeds) -> tuple:
        out = protocol.run_episodes(self.opts.env_id, policy, seeds, backend=self.opts.backend)
        return float(out["scores"].mean()), out["env_steps"]


COMPETITIVE_SUMMARY = (
    "predator_elo",
    "prey_elo",
    "predator_exploitability",
    "prey_exploitability",
    "predator_win_vs_random",
    "prey_win_vs_random",
    "self_play_predator_win",
    "contacts_self_play",
)


class SelfPlay(Evaluator):
    """tag self-play: every evaluation saves the policy as the step checkpoint, freezes both teams
    into the rolling pool, plays the Elo games and, every --matrix-interval env steps (and at the
    end), writes a snapshot-vs-snapshot win-rate matrix."""

    def __init__(self, opts: RunOptions, run: RunDir):
        super().__init__(opts, run)
        self.pool = competitive.SelfPlayPool(
            opts.env, opts.pool_size, opts.elo_episodes, lambda path: load_policy(path, opts.env)[0], opts.backend
        )

    def resume(self, progress) -> None:
        if progress.league is not None:
            self.pool.load_state_dict(progress.league, snapshot_dir=self.run.ckpt)

    def measure(self, policy, progress, snapshot, final: bool) -> tuple:
        step_path = self.run.step_checkpoint(progress.global_step)
        snapshot(step_path)  # the pool reads the snapshot's policy from its file
        self.pool.add(progress.global_step, step_path)
        res = self.pool.evaluate(policy)
        if final or progress.global_step >= (progress.matrices + 1) * self.opts.matrix_interval:
            labels, m = self.pool.matrix(self.opts.matrix_episodes)
            write_matrix(
                self.run.path / f"win_matrix_step_{progress.global_step:09d}",
                labels,
                labels,
                m,
                f"pool at step {progress.global_step}",
                self.opts.matrix_episodes,
            )
            progress.matrices = max(progress.matrices + 1, progress.global_step // self.opts.matrix_interval)
        progress.league = self.pool.state_dict()
        row = {k: v for k, v in res.items() if not k.endswith("_ci")}
        message = (
            f"Elo predators {res['predator_elo']:.0f} prey {res['prey_elo']:.0f}  win vs random "
            f"{res['predator_win_vs_random']:.2f}/{res['prey_win_vs_random']:.2f}  exploitability "
            f"{res['predator_exploitability']:.2f}/{res['prey_exploitability']:.2f}  "
            f"contacts {res['contacts_self_play']:.2f}"
        )
        return row, message

    def summary(self, progress) -> dict:
        last = self.run.rows[-1] if self.run.rows else {}
        return {
            **{k: last.get(k, float("nan")) for k in COMPETITIVE_SUMMARY},
            "elo_episodes": self.opts.elo_episodes,
            "pool_size": self.opts.pool_size,
            "pool": last.get("pool", ""),
        }

    def final_test(self, policy) -> dict:
        episodes = self.opts.final_eval_episodes
        res = self.pool.evaluate(policy, split="test", episodes=episodes, update=False)
        print(
            f"final test evaluation ({episodes} episodes per pairing): predator win-rate vs random "
            f"{res['predator_win_vs_random']:.2f} ± {res['predator_win_vs_random_ci']:.2f}, prey "
            f"{res['prey_win_vs_random']:.2f} ± {res['prey_win_vs_random_ci']:.2f}; exploitability "
            f"{res['predator_exploitability']:.2f} / {res['prey_exploitability']:.2f}"
        )
        return {f"test_{k}": v for k, v in res.items() if k not in ("predator_elo", "prey_elo", "pool")}

    def plot(self, title: str, panels=None) -> None:
        if self.run.rows:
            save_figure(plots.competitive(self.run.rows, title), self.run.path / "training_plot.png")

    def score(self, policy, seeds) -> tuple:
        """The mean win-rate of the policy's predators and of its prey against the random team and
        every pool snapshot (a sum of the two teams' rewards would measure nothing)."""
        env, backend = self.opts.env_id, self.opts.backend
        games = [
            (competitive.play(env, policy, o, seeds, backend), competitive.play(env, o, policy, seeds, backend))
            for o in [protocol.RandomPolicy(env)] + [e["policy"] for e in self.pool.entries]
        ]
        score = float(np.mean([0.5 * hunt["wins"].mean() + 0.5 * (1.0 - flee["wins"].mean()) for hunt, flee in games]))
        return score, sum(hunt["env_steps"] + flee["env_steps"] for hunt, flee in games)

    def score_games(self, grown: bool = False) -> int:
        entries = min(self.opts.pool_size, len(self.pool.entries) + 1) if grown else len(self.pool.entries)
        return 2 * (1 + entries)  # both teams, against random and each snapshot


class BestResponse(Evaluator):
    """tag with --opponent: the learning team's win-rate against the frozen opponent; the metrics.csv
    curve is the whole story (no plot)."""

    def __init__(self, opts: RunOptions, run: RunDir, opponent):
        super().__init__(opts, run)
        self.match = competitive.BestResponse(opts.env, opts.team, opponent, opts.eval_episodes, opts.backend)

    def measure(self, policy, progress, snapshot, final: bool) -> tuple:
        res = self.match.evaluate(policy)
        row = {k: v for k, v in res.items() if k != "episodes"}
        return row, f"{self.match.team} win-rate vs the frozen opponent {res['best_response_win_rate']:.2f}"

    def summary(self, progress) -> dict:
        last = self.run.rows[-1] if self.run.rows else {}
        return {
            "team": self.match.team,
            "opponent": self.opts.opponent,
            "best_response_win_rate": last.get("best_response_win_rate", float("nan")),
        }

    def final_test(self, policy) -> dict:
        res = self.match.evaluate(policy, split="test", episodes=self.opts.final_eval_episodes)
        print(
            f"final test evaluation ({res['episodes']} episodes): {self.match.team} win-rate vs the frozen opponent "
            f"{res['best_response_win_rate']:.2f} ± {res['best_response_win_rate_ci']:.2f}"
        )
        return {f"test_{k}": v for k, v in res.items()}

    def score(self, policy, seeds) -> tuple:
        out = self.match.play(policy, seeds)
        return float(out["wins"].mean()), out["env_steps"]


def write_matrix(path_stem, row_labels, col_labels, m, title: str, episodes: int) -> None:
    """A predator win-rate matrix as CSV and heatmap PNG."""
    rows = [
        {"predators \\ prey": r, **{c: round(float(v), 4) for c, v in zip(col_labels, line)}}
        for r, line in zip(row_labels, m)
    ]
    write_csv(Path(f"{path_stem}.csv"), rows)
    save_figure(
        plots.matrix(row_labels, col_labels, m, f"{title}\n(predator win-rate, {episodes} episodes per cell)"),
        Path(f"{path_stem}.png"),
    )
