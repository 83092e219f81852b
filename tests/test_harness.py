"""Run directories."""

import json

import pytest

from memeplex import errors, files, rundir


def test_run_dir_never_overwrites_and_writes_complete_files(tmp_path):
    run = rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    run.write_config({"a": 1})
    run.append_metrics({"step": 1, "eval_score": -50.0})
    run.append_metrics({"step": 2, "eval_score": -40.0, "extra": 3})
    rows = files.read_metrics(run.path / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2] and rows[1]["extra"] == 3
    assert not list(run.path.glob(".*.tmp"))  # no temp files left behind
    with pytest.raises(errors.UsageError, match="in use by another process"):  # while it is open
        rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    run.close()
    with pytest.raises(errors.UsageError, match="already exists"):  # and after it ended
        rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    with pytest.raises(errors.UsageError, match="no checkpoint"):
        rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "y", 1, resume=True)
    assert json.loads((run.path / "config.json").read_text()) == {"a": 1}


def test_a_checkpoint_of_the_same_name_is_named_in_the_refusal(tmp_path):
    """Two results directories, one checkpoint directory: the second run is refused because of the first
    run's checkpoint, and the message names that checkpoint, not the (new) results directory."""
    first = rundir.RunDir(tmp_path / "r1", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    (first.ckpt / "latest.pt").write_bytes(b"")
    first.close()
    with pytest.raises(errors.UsageError, match=r"checkpoint .*c/spread/method_i/x_s1/latest.pt .*already exists"):
        rundir.RunDir(tmp_path / "r2", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    assert not (tmp_path / "r2").exists()  # the refused run left nothing behind


def test_two_runs_starting_at_once_share_the_parent_directories(tmp_path, monkeypatch):
    """Two runs of one algorithm started together (a suite's first two tasks) both see the checkpoint root's
    <env>/<algo> missing; the second mkdir meets the first's directory. Its run starts, and the directory it did not
    make is not its to remove."""
    from pathlib import Path

    mkdir = Path.mkdir

    def racing_mkdir(self, *args, **kwargs):
        if self.name == "method_i" and not self.exists():
            mkdir(self)  # the other run, between this run's check and its mkdir
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", racing_mkdir)
    run = rundir.RunDir(tmp_path / "r", tmp_path / "c", "spread", "method_i", "x", 1, resume=False)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert run.path.is_dir() and run.ckpt.is_dir()
    run.close(failed=True)  # nothing saved: the run removes what it made, not the other run's directories
    assert (tmp_path / "r" / "spread" / "method_i").is_dir() and (tmp_path / "c" / "spread" / "method_i").is_dir()
    assert not run.path.exists() and not run.ckpt.exists()


def test_the_cpu_clock_counts_this_process_and_carries_over_a_resume(monkeypatch):
    from memeplex import training

    now = [100.0]
    monkeypatch.setattr(training.time, "process_time", lambda: now[0])
    p = training.Progress()
    assert p.cpu_clock() == 0.0  # the first call starts the session's clock
    now[0] += 3.0
    state = p.state_dict()  # a checkpoint brings the clock up to date
    assert state["cpu_time"] == 3.0
    now[0] = 7.0  # a new process (its own process_time) resumes
    q = training.Progress.from_state_dict(state)
    assert q.cpu_clock() == 3.0  # what the earlier sessions used, not this process's time before its loop
    now[0] += 1.5
    assert q.cpu_clock() == 4.5

    class Opts:
        max_time, max_cpu_time = None, 4.0

    assert training.out_of_time(Opts, q) and training.time_fraction(Opts, q) == 4.5 / 4.0
    Opts.max_cpu_time = 10.0
    assert not training.out_of_time(Opts, q)
