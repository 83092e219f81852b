"""Faults lose nothing and bad input gets one line: a run stopped by SIGTERM or killed with SIGKILL resumes
as the uninterrupted run, for every option that carries state; --resume takes the newest intact checkpoint,
and only one of this run; one process holds a run; bad paths, names and files are one line and exit 2,
and a run that fails leaves no directory behind."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import compare_results
import eval_method_i
import train_maddpg
import train_method_i
from conftest import ROOT, TINY_MADDPG, TINY_PPO, TINY_TAG_EXTRA, assert_clean_error, cli, dirs, run_script
from memeplex import checkpoints, files, rundir
from method_i import LAIPPO

SMALL = [*TINY_PPO, "--eval-interval", "256"]  # four evaluations: a kill can land between two
TAG = ["--env", "tag", *TINY_TAG_EXTRA, "--matrix-interval", "512", "--matrix-episodes", "2"]
SHIPPED_TAG = ROOT / "checkpoints/tag/method_i/shipped-selfplay_s1/latest.pt"
SHIPPED_SPREAD = ROOT / "checkpoints/spread/method_i/shipped-main-tuned_s1/latest.pt"
SHIPPED_MADDPG = ROOT / "checkpoints/spread/maddpg/shipped-main-tuned-pop4_s1/latest.pt"
TIMING = ("wall_time", "cpu_time", "throughput", "train_time", "eval_time")


def run_dirs(root, env="spread", algo="method_i", name="r", seed=1):
    return root / "results" / env / algo / f"{name}_s{seed}", root / "checkpoints" / env / algo / f"{name}_s{seed}"


def outcome(results) -> dict:
    """Every CSV of a run directory (metrics, updates, win-rate matrices) and its summary, without timings."""
    untimed = lambda row: json.dumps({k: v for k, v in row.items() if not k.startswith(TIMING)}, sort_keys=True)
    out = {p.name: [untimed(r) for r in files.read_metrics(p)] for p in sorted(results.glob("*.csv"))}
    out["summary.json"] = untimed(json.loads((results / "summary.json").read_text()))
    return out


def stop_after(monkeypatch, updates: int) -> None:
    """SIGTERM this process right after the given PPO update, as a user would send it."""
    learn = LAIPPO.learn

    def learn_then_stop(self, *args, **kwargs):
        stats = learn(self, *args, **kwargs)
        if self.num_updates == updates:
            signal.raise_signal(signal.SIGTERM)
        return stats

    monkeypatch.setattr(LAIPPO, "learn", learn_then_stop)


def kill_inside_evaluation(results, ckpt, last: int, cut: int) -> None:
    """Leave a run's files as a SIGKILL inside its evaluation at step `cut` would (its metrics row written, its
    checkpoint not: on tag only the pool's policy-only snapshot), the last complete one at step `last`, with
    damage on top: latest.pt unreadable and the last line of metrics.csv cut short."""
    for path in ckpt.glob("step_*.pt"):
        if int(path.stem[5:]) > cut:
            path.unlink()
    snapshot = ckpt / f"step_{cut:09d}.pt"
    checkpoints.save_checkpoint(checkpoints.policy_only(checkpoints.load_checkpoint(snapshot)), snapshot)
    (ckpt / "latest.pt").write_bytes((ckpt / "latest.pt").read_bytes()[:5000])
    for name in ("metrics.csv", "updates.csv"):
        files.write_csv(results / name, [r for r in files.read_metrics(results / name) if r["step"] <= cut])
    text = (results / "metrics.csv").read_text()
    (results / "metrics.csv").write_text(text + text.splitlines()[-1][:20])
    (results / "summary.json").unlink()
    assert files.read_metrics(results / "metrics.csv", drop_cut_last_line=True)[-1]["step"] == cut > last


RESUME_OPTIONS = {
    "norm-reward": ["--norm-reward"],
    "distill-own-optimizer": ["--distill-interval", "1", "--distill-optimizer", "own"],
    "tag-self-play": TAG,
    "reference": ["--env", "reference"],  # the messages and goals in flight are part of the envs' state
    "best-response": [*TAG[:2], "--opponent", str(SHIPPED_TAG), "--team", "prey"],
}


@pytest.mark.parametrize("option", sorted(RESUME_OPTIONS))
def test_stopped_or_killed_run_resumes_as_the_uninterrupted_run(option, tmp_path, monkeypatch):
    """SIGTERM between evaluations (step 384: mid-episode, mid-pool), then a SIGKILL inside the evaluation at
    step 768 with latest.pt damaged: each resume gives the uninterrupted run's rows, matrices and summary."""
    argv = [*SMALL, *RESUME_OPTIONS[option], "--run-name", "r"]
    env = argv[argv.index("--env") + 1] if "--env" in argv else "spread"
    assert train_method_i.main([*argv, *dirs(tmp_path / "whole")]) == 0
    whole = outcome(run_dirs(tmp_path / "whole", env)[0])
    assert len(whole["metrics.csv"]) == 4

    results, ckpt = run_dirs(tmp_path / "parted", env)
    stop_after(monkeypatch, 3)
    assert train_method_i.main([*argv, *dirs(tmp_path / "parted")]) == 128 + signal.SIGTERM
    monkeypatch.undo()
    assert [r["step"] for r in files.read_metrics(results / "metrics.csv")] == [256]  # no evaluation at the stop
    resume = [*dirs(tmp_path / "parted"), "--env", env, "--run-name", "r", "--resume"]
    assert train_method_i.main(resume) == 0
    assert outcome(results) == whole

    kill_inside_evaluation(results, ckpt, last=512, cut=768)
    assert train_method_i.main(resume) == 0
    assert outcome(results) == whole


MADDPG_SMALL = [*TINY_MADDPG, "--max-steps", "1800", "--evo-steps", "200", "--fitness-episodes", "1",
                "--mut-none", "0.2", "--mut-architecture", "0.6", "--mut-new-layer", "0", "--eval-interval", "450",
                "--run-name", "m"]  # fmt: skip


def test_maddpg_stopped_or_killed_resumes_as_the_uninterrupted_run(tmp_path, monkeypatch):
    """MADDPG's latest.pt carries the population, the replay buffer and every random stream, so a run stopped
    by SIGTERM (here during generation 2), or killed with its latest.pt left at that generation, ends as the
    uninterrupted run; architecture mutations included (their sizes come from the run's seed)."""
    from memeplex import maddpg

    assert train_maddpg.main([*MADDPG_SMALL, *dirs(tmp_path / "whole")]) == 0
    whole = outcome(run_dirs(tmp_path / "whole", algo="maddpg", name="m")[0])
    assert "_node" in str(files.read_metrics(tmp_path / "whole/results/spread/maddpg/m_s1/updates.csv"))

    collect, turns = maddpg.collect, []

    def collect_then_stop(*args, **kwargs):
        turns.append(1)
        if len(turns) == 3:
            signal.raise_signal(signal.SIGTERM)
        return collect(*args, **kwargs)

    monkeypatch.setattr(maddpg, "collect", collect_then_stop)
    assert train_maddpg.main([*MADDPG_SMALL, *dirs(tmp_path / "parted")]) == 128 + signal.SIGTERM
    monkeypatch.undo()
    results, ckpt = run_dirs(tmp_path / "parted", algo="maddpg", name="m")
    stopped = (ckpt / "latest.pt").read_bytes()
    resume = [*dirs(tmp_path / "parted"), "--run-name", "m", "--resume"]
    assert train_maddpg.main(resume) == 0
    assert outcome(results) == whole
    (ckpt / "latest.pt").write_bytes(stopped)  # killed after generation 2: its later rows are made again
    assert train_maddpg.main(resume) == 0
    assert outcome(results) == whole


def test_sigkill_then_resume_is_the_uninterrupted_run(tmp_path):
    """kill -9 (no handler runs, latest.pt is as the last evaluation left it): --resume continues from the
    newest intact checkpoint, drops the rows after it, and the run ends as the uninterrupted one."""
    argv = [*SMALL, "--max-steps", "3072", "--run-name", "k", "--seed", "5"]
    assert train_method_i.main([*argv, *dirs(tmp_path / "whole")]) == 0
    proc = subprocess.Popen([sys.executable, "train_method_i.py", *argv, *dirs(tmp_path / "killed")], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    results, ckpt = run_dirs(tmp_path / "killed", name="k", seed=5)
    deadline = time.time() + 120
    while not ((results / "metrics.csv").exists() and len(files.read_metrics(results / "metrics.csv")) >= 3):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=60)
    assert not (results / "summary.json").exists()  # it died mid-run
    assert train_method_i.main([*dirs(tmp_path / "killed"), "--run-name", "k", "--seed", "5", "--resume"]) == 0
    assert outcome(results) == outcome(run_dirs(tmp_path / "whole", name="k", seed=5)[0])
    assert not list(ckpt.glob(".*.tmp")) and not list(results.glob(".*.tmp"))  # nor a half-written temp file


def test_a_run_is_held_by_one_process(tmp_path):
    """A second process on the same run is refused with one line (exit 2) and changes nothing."""
    with rundir.RunDir(tmp_path / "results", tmp_path / "checkpoints", "spread", "method_i", "same", 1, resume=False):
        proc = run_script("train_method_i.py", *SMALL, *dirs(tmp_path), "--run-name", "same")
        assert_clean_error(proc, "in use by another process")
        assert not any(p.is_file() for p in tmp_path.rglob("*"))


# ----------------------------------------------------------------------------
# Checkpoints that do not belong to the run
# ----------------------------------------------------------------------------


@pytest.fixture
def finished(tmp_path):
    """A finished small Method I run on spread (run name "r", seed 1) in tmp_path."""
    assert train_method_i.main([*SMALL, *dirs(tmp_path), "--run-name", "r"]) == 0
    return tmp_path


def resume(root, *extra):
    return [*dirs(root), "--run-name", "r", "--resume", *extra]


@pytest.mark.parametrize(
    "checkpoint, message",
    [
        (SHIPPED_SPREAD, "holds only a policy"),  # a policy-only shipped checkpoint copied in as latest.pt
        (SHIPPED_MADDPG, "is a maddpg checkpoint, not one of this method_i run"),
    ],
)
def test_resume_refuses_a_checkpoint_of_another_kind(finished, checkpoint, message, capsys):
    results, ckpt = run_dirs(finished)
    summary = (results / "summary.json").read_text()
    shutil.copy(checkpoint, ckpt / "latest.pt")
    assert_clean_error(cli(train_method_i.main, resume(finished, "--max-steps", "2048"), capsys), message)
    assert (results / "summary.json").read_text() == summary  # nothing overwritten


def test_resume_refuses_a_checkpoint_of_another_run(finished, capsys):
    """Run r's checkpoint copied into run q, whose config says q."""
    for results_or_ckpt in run_dirs(finished):
        shutil.copytree(results_or_ckpt, results_or_ckpt.parent / "q_s1")
    config = json.loads((run_dirs(finished, name="q")[0] / "config.json").read_text())
    config["args"]["run_name"] = "q"
    files.write_json(run_dirs(finished, name="q")[0] / "config.json", config)
    proc = cli(train_method_i.main, [*dirs(finished), "--run-name", "q", "--resume"], capsys)
    assert_clean_error(proc, "belongs to another run (run name 'r', this run's is 'q')")


def test_maddpg_resume_refuses_a_method_i_checkpoint(finished, capsys):
    results, ckpt = run_dirs(finished)
    maddpg_results, maddpg_ckpt = run_dirs(finished, algo="maddpg")
    shutil.copytree(results, maddpg_results)
    shutil.copytree(ckpt, maddpg_ckpt)
    proc = cli(train_maddpg.main, resume(finished), capsys)
    assert_clean_error(proc, "is a method_i checkpoint, not one of this maddpg run")


def test_resume_refuses_a_corrupt_config(finished, capsys):
    results, _ = run_dirs(finished)
    (results / "config.json").write_text('{"algo": "method_i", "args": {"seed": ')
    assert_clean_error(cli(train_method_i.main, resume(finished), capsys), "cannot read")


def test_resume_without_a_checkpoint_leaves_nothing(tmp_path, capsys):
    assert_clean_error(cli(train_method_i.main, resume(tmp_path), capsys), "no checkpoint")
    assert not (tmp_path / "results").exists() and not (tmp_path / "checkpoints").exists()


def test_compare_results_names_a_cut_metrics_file(finished, capsys):
    metrics = run_dirs(finished)[0] / "metrics.csv"
    metrics.write_bytes(metrics.read_bytes()[:-7])
    proc = cli(compare_results.main, ["--results-dir", str(finished / "results")], capsys)
    assert_clean_error(proc, f"{metrics} is damaged: its last line is cut short")


# ----------------------------------------------------------------------------
# Bad paths and names: one line, exit 2, no directory left behind
# ----------------------------------------------------------------------------


def nothing_left(root) -> bool:
    """No directory under root but the read-only one a test made (see unwritable)."""
    return not any(p.is_dir() for p in root.rglob("*") if p != root / "ro")


def unwritable(tmp_path, how: str):
    """A directory no file can be written in: read-only (0o555), unless this user writes there anyway (root
    does), or a path under a file (for everyone)."""
    if how == "read-only":
        (tmp_path / "ro").mkdir(mode=0o555)
        try:
            (tmp_path / "ro" / "probe").touch()
        except PermissionError:
            return tmp_path / "ro"
        pytest.skip(f"uid {os.geteuid()} writes into a read-only (0o555) directory; the path under a file is tested")
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "under"


@pytest.mark.parametrize("option", ["--results-dir", "--checkpoint-dir"])
def test_a_directory_option_that_is_a_file(option, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = [*SMALL, *dirs(tmp_path), option, str(tmp_path / "file"), "--run-name", "f"]
    assert_clean_error(cli(train_method_i.main, argv, capsys), f"{option} {tmp_path / 'file'} is a file")
    assert nothing_left(tmp_path)


@pytest.mark.parametrize("how", ["read-only", "under a file"])
@pytest.mark.parametrize("option", ["--results-dir", "--checkpoint-dir"])
def test_a_directory_option_that_cannot_be_written(option, how, tmp_path, capsys):
    root = unwritable(tmp_path, how)
    argv = [*SMALL, *dirs(tmp_path), option, str(root), "--run-name", "ro"]
    assert_clean_error(cli(train_method_i.main, argv, capsys), f"{option} {root}: cannot create")
    assert nothing_left(tmp_path)


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", "", " "])
def test_a_run_name_that_is_not_a_plain_name(name, tmp_path, capsys):
    argv = [*SMALL, *dirs(tmp_path / "x"), "--run-name", name]
    assert_clean_error(cli(train_method_i.main, argv, capsys), "must be a plain directory name")
    assert not any(tmp_path.rglob("*"))


def test_a_run_that_fails_to_start_leaves_no_directory(tmp_path, capsys):
    """The bad --opponent is found after config.json is written: the run's directories go again."""
    argv = [*SMALL, *TAG[:2], *dirs(tmp_path), "--run-name", "o", "--opponent", str(tmp_path / "missing.pt")]
    assert_clean_error(cli(train_method_i.main, argv, capsys), "checkpoint not found")
    assert nothing_left(tmp_path)
    (tmp_path / "missing.pt").write_text("x")
    assert_clean_error(cli(train_method_i.main, argv, capsys), "not a readable torch checkpoint")
    assert nothing_left(tmp_path)


@pytest.mark.parametrize("how", ["read-only", "under a file"])
def test_a_gif_path_that_cannot_be_written(how, tmp_path, capsys):
    argv = ["--checkpoint", str(SHIPPED_SPREAD), "--episodes", "1", "--render", "--out", ""]
    argv[-1] = str(unwritable(tmp_path, how) / "episode.gif")
    assert_clean_error(cli(eval_method_i.main, argv, capsys), "--out")


@pytest.mark.parametrize("how", ["read-only", "under a file"])
def test_a_compare_out_dir_that_cannot_be_written(finished, how, capsys):
    argv = ["--results-dir", str(finished / "results"), "--out-dir", str(unwritable(finished, how))]
    assert_clean_error(cli(compare_results.main, argv, capsys), "cannot write")


@pytest.mark.parametrize("script", ["evaluate_fixed_pool", "cross_play_matrix", "cross_seed_play"])
def test_a_tag_results_dir_that_cannot_be_written(script, tmp_path, capsys):
    """Refused before any checkpoint is read or game played."""
    import importlib

    argv = ["--results-dir", str(unwritable(tmp_path, "under a file")), "--checkpoint-dir", str(tmp_path)]
    assert_clean_error(cli(importlib.import_module(script).main, argv, capsys), "is a file, not a directory")


def test_resume_drops_a_cut_last_line_of_metrics(finished, capsys):
    """A cut last row (a file damaged outside a run) is dropped on --resume, and the run resumes from the
    checkpoint before it (step_768.pt: latest.pt counts the lost evaluation), which makes it again."""
    results, _ = run_dirs(finished)
    rows = files.read_metrics(results / "metrics.csv")
    (results / "metrics.csv").write_bytes((results / "metrics.csv").read_bytes()[:-9])
    assert train_method_i.main(resume(finished, "--max-steps", "1280")) == 0
    assert "step_000000768.pt at step 768" in capsys.readouterr().err
    now = files.read_metrics(results / "metrics.csv")
    assert [r["step"] for r in now] == [256, 512, 768, 1024, 1280] and repr(now[:3]) == repr(rows[:3])
