"""The live view: CSV rows become TensorBoard scalars, and a resumed run hides what its predecessor wrote after
the checkpoint it resumed from."""

import math

import numpy as np

from memeplex.liveview import LiveView, read_scalars


def test_rows_become_scalars_at_their_step(tmp_path):
    view = LiveView(tmp_path)
    view.add_row("eval", {"step": 512, "score": -40.5, "normalised": 0.25, "env": "spread", "done": True})
    view.add_row("train", {"step": 64, "value_loss": 1.5, "approx_kl": math.nan, "updates": 3})
    view.close()
    scalars = read_scalars(tmp_path)
    assert sorted(scalars) == ["eval/normalised", "eval/score", "train/updates", "train/value_loss"]
    assert scalars["eval/score"] == [(512, -40.5)] and scalars["train/updates"] == [(64, 3.0)]


def test_a_resumed_run_replaces_the_events_after_its_checkpoint(tmp_path):
    view = LiveView(tmp_path)
    for step in range(1, 11):
        view.add_row("eval", {"step": step, "score": float(step)})
    view.close()  # killed after step 10; its newest checkpoint is at step 5
    view = LiveView(tmp_path, resume_step=5)
    for step in range(6, 9):
        view.add_row("eval", {"step": step, "score": -float(step)})
    view.close()
    assert read_scalars(tmp_path)["eval/score"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0),
                                                    (6, -6.0), (7, -7.0), (8, -8.0)]  # fmt: skip


def test_a_training_run_shows_its_csv_rows_live(tmp_path):
    """Every number of metrics.csv and updates.csv is a TensorBoard scalar at its env step, with the training
    throughput beside them."""
    import train_ppo
    from conftest import TINY_PPO, dirs
    from memeplex.files import read_metrics

    assert train_ppo.main([*TINY_PPO, *dirs(tmp_path), "--run-name", "live"]) == 0
    run = tmp_path / "results/spread/ppo/live_s1"
    scalars = read_scalars(run)
    for prefix, csv in (("eval", "metrics.csv"), ("train", "updates.csv")):
        rows = read_metrics(run / csv)
        for key in (
            ("eval_score", "eval_normalised", "throughput_with_eval")
            if prefix == "eval"
            else ("value_loss", "entropy", "approx_kl")
        ):
            shown = scalars[f"{prefix}/{key}"]  # TensorBoard keeps float32: equal to ~7 significant digits
            assert [s for s, _ in shown] == [r["step"] for r in rows]
            np.testing.assert_allclose([v for _, v in shown], [r[key] for r in rows], rtol=1e-6)
    assert len(scalars["train/env_steps_per_s"]) == len(read_metrics(run / "updates.csv")) - 1
