"""train_maddpg.py's progress bar says what the run is doing and moves within a generation (it used to sit
at 0% until the whole population had trained and played its fitness games)."""

import re

import train_maddpg
from conftest import dirs

TINY = ["--max-steps", "2000", "--evo-steps", "500", "--population-size", "2", "--num-envs", "4",
        "--learning-delay", "100", "--batch-size", "32", "--eval-interval", "1000", "--eval-episodes", "2",
        "--final-eval-episodes", "2", "--fitness-episodes", "2", "--progress"]  # fmt: skip


def test_the_bar_names_each_phase_and_counts_steps_as_they_are_taken(tmp_path, capsys):
    assert train_maddpg.main([*TINY, *dirs(tmp_path), "--run-name", "bar"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("importing AgileRL and building the population ...")
    for phase in ("generation 1, member 1/2: filling the replay buffer", "generation 1, member 2/2: learning",
                  "generation 1: fitness games", "generation 1: evaluating the best member",
                  "generation 1: selection and mutation"):  # fmt: skip
        assert phase in err, phase
    # while the first member trains, the bar already counts its steps (1 to 500 of the 2,000)
    counts = [int(n) for n in re.findall(r"generation 1, member 1/2: [a-z ]+:[^\r\n]*?\| *(\d+)/2000", err)]
    assert counts and 0 < max(counts) <= 500, err
