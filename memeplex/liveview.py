"""The live view of a training run: TensorBoard event files in its run directory.

Every row a run writes to metrics.csv (one per evaluation) or updates.csv (one per update) is also written as
TensorBoard scalars, tagged `eval/<column>` and `train/<column>`, at the row's env step. So

    tensorboard --logdir results

shows every run under results/ while it trains. The CSV files stay the record that reports are made from;
the event files (results/<env>/<algo>/<run>/tensorboard/, not committed) are only a view of them.

A resumed run continues where its checkpoint stands: its writer purges the events its killed predecessor
wrote after that step, as the run directory drops their CSV rows.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

FLUSH_SECS = 10  # seconds between writes to the event file: how far the view may lag behind the CSV files
SUBDIR = "tensorboard"  # the event files' directory inside a run directory


class LiveView:
    """Writes CSV rows as TensorBoard scalars into `run_path`/tensorboard/.

    resume_step: the env step a resumed run continues from; events after it, written by the run before it
    stopped, are hidden from TensorBoard (SummaryWriter's purge_step).
    """

    def __init__(self, run_path, resume_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter  # imported here: only training runs need it

        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(log_dir=str(Path(run_path) / SUBDIR), purge_step=purge, flush_secs=FLUSH_SECS)
        self._last_update = None  # (env step, time) of the last train row: env steps/s between train rows

    def add_row(self, prefix: str, row: dict) -> None:
        """Every finite number of `row` except its step, as the scalar `prefix/<column>` at row["step"]; train
        rows also give train/env_steps_per_s, the wall-clock rate since the previous train row (evaluations
        included)."""
        step = int(row["step"])
        if prefix == "train":
            now = time.perf_counter()
            if self._last_update is not None and step > self._last_update[0]:
                rate = (step - self._last_update[0]) / max(now - self._last_update[1], 1e-9)
                self.writer.add_scalar("train/env_steps_per_s", rate, step)
            self._last_update = (step, now)
        for key, value in row.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def read_scalars(run_path) -> dict:
    """The scalars of a run's event files as {tag: [(step, value), ...]} (as TensorBoard shows them: after a
    resume, the purged events are left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(Path(run_path) / SUBDIR), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
