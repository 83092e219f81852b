"""Every command of the README and docs/ runs as written in a fresh clone.

Each ```bash block of README.md and docs/*.md holds commands a reader may paste
(blocks that only illustrate use another fence, e.g. ```text). Every one of them
runs here, in order, in a copy of the repository's committed files (what a fresh
clone has): training with a tiny budget appended (the last value of an option
wins), run_experiments.py with --dry-run, the rest as written. Only the set-up
(run by .ci/run in a fresh venv), pytest itself, compare_results.py --check (.ci/run
runs it) and a window (--render human) are not run, each for the reason in SKIP.
"""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TINY_MADDPG, TINY_PPO, TINY_TAG_EXTRA

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = {
    r"^python3? -m venv|^pip install": "the set-up: .ci/run does it in a fresh venv",
    r"^pytest\b": "the test suite itself",
    r"--render human": "opens a window: needs a display",
    r"^python3? compare_results\.py --check$": "the committed tables' check: .ci/run runs it on the whole tree",
}
# appended to a command that runs this script, so training and evaluation stay tiny
EVAL_TINY = ["--episodes", "2"]
POOL_TINY = ["--episodes", "2", "--last", "2"]
BENCH_TINY = ["--env-steps", "200", "--train-steps", "1024", "--eval-episodes", "2", "--rounds", "1",
              "--maddpg-steps", "2000"]  # fmt: skip
TINY = {
    "train_method_i.py": TINY_PPO,
    "train_ppo.py": TINY_PPO,
    "train_mappo.py": TINY_PPO,
    "train_maddpg.py": TINY_MADDPG,
    "eval_method_i.py": EVAL_TINY,
    "eval_maddpg.py": EVAL_TINY,
    "evaluate_fixed_pool.py": POOL_TINY,
    "cross_play_matrix.py": POOL_TINY,
    "cross_seed_play.py": ["--episodes", "2"],
    "run_experiments.py": ["--dry-run"],
    "benchmarks/throughput.py": BENCH_TINY,
    "benchmarks/speed.py": [
        "--rounds",
        "1",
        "--steps",
        "1024",
        "--configs",
        "tuned",
        "--algos",
        "ippo",
        "--env-counts",
        "8",
        "--team-sizes",
        "3",
        "--scaling-steps",
        "1024",
        "--jax-python",
        "no-such-python",
    ],
    "benchmarks/best_response.py": ["--seeds", "101", "101", "--flags", shlex.quote(" ".join(TINY_PPO))],
}


def fenced_commands(path: Path) -> list:
    """[(line number, command)] of the ```bash blocks of a markdown file; continuation lines joined,
    comments dropped."""
    commands, block = [], None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if block is None:
            if line.strip() in ("```bash", "```sh", "```shell"):
                block, pending = [], None
            continue
        if line.strip() == "```":
            block = None
            continue
        text = re.sub(r"\s+#.*$|^\s*#.*$", "", line).rstrip()
        if pending is not None:
            pending = (pending[0], pending[1] + " " + text.rstrip("\\").strip())
        elif text:
            pending = (number, text.rstrip("\\").strip())
        if pending is not None and not text.endswith("\\"):
            commands.append(pending)
            pending = None
    return commands


def all_commands() -> list:
    """[(file, line number, command)] of every doc, in order; a command repeated word for word runs once."""
    found, seen = [], set()
    for path in DOCS:
        for number, cmd in fenced_commands(path):
            if cmd not in seen:
                seen.add(cmd)
                found.append((path.relative_to(ROOT), number, cmd))
    return found


def skip_reason(cmd: str):
    return next((why for pattern, why in SKIP.items() if re.search(pattern, cmd)), None)


def tiny(cmd: str) -> str:
    """The command with the tiny budget of its script appended (nothing for --help)."""
    words = cmd.split()
    script = next((w for w in words if w.endswith(".py")), None)
    if script is None or "--help" in words or script not in TINY:
        return cmd
    extra = list(TINY[script])
    if script.startswith("train_") and "--env tag" in cmd:
        extra += TINY_TAG_EXTRA
    return " ".join([cmd, *extra])


def test_fenced_commands_are_read_whole(tmp_path):
    text = "x\n```bash\npython a.py --x 1 \\\n    --y 2   # note\n# only a comment\npytest\n```\n"
    text += "```text\npython no.py\n```\n"
    (tmp_path / "a.md").write_text(text)
    assert fenced_commands(tmp_path / "a.md") == [(3, "python a.py --x 1 --y 2"), (6, "pytest")]
    assert tiny("python train_ppo.py --env tag").endswith(" ".join(TINY_TAG_EXTRA))
    assert tiny("python train_method_i.py --help") == "python train_method_i.py --help"


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A copy of the committed files, as a fresh clone has them."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell the committed files")
    dest = tmp_path_factory.mktemp("clone")
    for name in filter(None, listed.stdout.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_every_documented_command_runs_in_a_fresh_clone(clone):
    failures = []
    for path, number, cmd in all_commands():
        if skip_reason(cmd):
            continue
        run = tiny(cmd).replace("python3 ", f"{sys.executable} ", 1).replace("python ", f"{sys.executable} ", 1)
        proc = subprocess.run(run, shell=True, cwd=clone, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
            failures.append(f"{path}:{number}: {cmd}\n    exit {proc.returncode}: {last}")
    assert not failures, "documented commands that fail in a fresh clone:\n" + "\n".join(failures)


def test_eval_default_is_your_newest_run_else_the_shipped_checkpoint(tmp_path, capsys):
    from memeplex import checkpoints

    root = tmp_path / "checkpoints"
    for rel in ("spread/method_i/shipped-main-tuned_s1", "tag/method_i/shipped-selfplay_s1", "tag/ppo/mine_s1"):
        (root / rel).mkdir(parents=True)
        (root / rel / "latest.pt").write_bytes(b"")
    # a fresh clone: the shipped spread checkpoint, whatever the files' times (the tag run is newer here)
    assert checkpoints.find_checkpoint(None, checkpoints.LA_IPPO_ALGOS, root=root) == (
        root / "spread/method_i/shipped-main-tuned_s1/latest.pt"
    )
    assert "shipped" in capsys.readouterr().err
    # on tag your own run wins over the shipped one; an explicit --checkpoint wins over both
    assert checkpoints.find_checkpoint(None, checkpoints.LA_IPPO_ALGOS, "tag", root=root) == (
        root / "tag/ppo/mine_s1/latest.pt"
    )
    assert checkpoints.find_checkpoint("x.pt", checkpoints.LA_IPPO_ALGOS, "tag", root=root) == Path("x.pt")
    # every shipped default exists in the repository
    for env, algos in checkpoints.SHIPPED.items():
        for algo, run in algos.items():
            assert (ROOT / "checkpoints" / env / algo / run / "latest.pt").is_file(), (env, algo)


def test_pool_scripts_suggest_a_command_that_runs(tmp_path):
    """The published runs' checkpoints are not in the repository: the hint is to train your own under
    another name, not to re-train the published run (which is refused)."""
    from conftest import assert_clean_error, run_script

    (tmp_path / "results/tag/method_i/selfplay_s1").mkdir(parents=True)
    (tmp_path / "results/tag/method_i/selfplay_s1/config.json").write_text("{}")
    proc = run_script("cross_play_matrix.py", "--pool-set", "step", "--results-dir", tmp_path / "results",
                      "--checkpoint-dir", tmp_path / "checkpoints")  # fmt: skip
    assert_clean_error(proc, "no tag runs")
    (line,) = [line for line in proc.stderr.splitlines() if "method_i: no step_*.pt" in line]
    assert "--run-name NAME" in line and "--run-name selfplay " not in line  # never the refused command
    (line,) = [line for line in proc.stderr.splitlines() if "ppo: no step_*.pt" in line]  # not published: train it
    assert "train it: python train_ppo.py --env tag --run-name selfplay --seed 1" in line
