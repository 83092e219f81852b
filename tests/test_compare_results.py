"""compare_results.py --report / --check: drift between the runs, the committed tables and the README/docs
blocks is caught; captions take their facts from the runs; an empty results tree is refused."""

import functools
import json

import pytest

import compare_results
from memeplex import cli, files, stats


@pytest.fixture(scope="module", autouse=True)
def few_bootstrap_draws():
    """The captions and blocks are under test here, not the intervals: 100 bootstrap draws, not thousands."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("aggregate", "probability_of_improvement", "performance_profile"):
            mp.setattr(stats, name, functools.partial(getattr(stats, name), reps=100))
        yield


def fake_run(results, algo, name, seed, score, max_steps=30_000, test_episodes=7):
    """A finished spread run of `max_steps` env steps with the files the report reads."""
    d = results / "spread" / algo / f"{name}_s{seed}"
    args = {"max_steps": max_steps, "max_time": None, "eval_episodes": 3, "eval_interval": 5_000}
    files.write_json(d / "config.json", {"args": args})
    summary = {"test_normalised": score, "test_episodes": test_episodes, "env_steps": max_steps, "interrupted": False}
    files.write_json(d / "summary.json", summary)
    curve = [{"step": 5_000 * (k + 1), "eval_normalised": score * k / 2, "latent_cka": 0.5} for k in range(3)]
    files.write_csv(d / "metrics.csv", curve)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A results tree with the main suite (seeds 4-6, 30k steps) and its tuning choice (seeds 201 and 202),
    and a README with one block; the report written once."""
    root = tmp_path_factory.mktemp("repo")
    results = root / "results"
    for seed in (4, 5, 6):
        fake_run(results, "method_i", "main-tuned", seed, 0.1 * seed)
        fake_run(results, "ppo", "main-tuned", seed, 0.05 * seed)
    chosen = {"tuning_seeds": [201, 202], "tuning_steps": 40_000,
              "algorithms": {"ppo": {"label": "IPPO", "candidates": [{}, {}]}}}  # fmt: skip
    files.write_json(results / "spread" / "tuning" / "chosen.json", chosen)
    (root / "docs").mkdir()
    (root / "README.md").write_text("# x\n<!-- report:spread/main.md -->\nold\n<!-- /report -->\n")
    assert compare_results.report(results, check=False, root=root) == 0
    return root


def check(root, capsys) -> tuple:
    code = compare_results.report(root / "results", check=True, root=root)
    return code, capsys.readouterr().err


def test_captions_state_budget_seeds_and_episodes_from_the_runs(tree):
    caption = (tree / "results/spread/report/main.md").read_text().splitlines()[0]
    assert "at 30k env steps" in caption and "7 per run" in caption and "reporting seeds 4-6" in caption
    assert "tuning seeds 201, 202 at 40k env steps" in caption and "IPPO: 2" in caption
    over = (tree / "results/spread/report/main_over_training.md").read_text()
    assert "(3 validation episodes every 5k env steps)" in over


def test_check_passes_on_the_report_it_wrote_and_says_what_it_computes(tree, capsys):
    code, err = check(tree, capsys)
    assert code == 0, err
    assert "spread: main_suite" in err and "tag: self-play, fixed pools and exploitability" in err  # one per suite


def test_a_block_whose_table_is_gone_fails_check_and_report(tree, capsys):
    readme = tree / "README.md"
    good = readme.read_text()
    try:
        readme.write_text(good + "<!-- report:spread/gone.md -->\nan old table\n<!-- /report -->\n")
        code, err = check(tree, capsys)
        assert code == 1 and "report:spread/gone.md has no table" in err
        assert compare_results.report(tree / "results", check=False, root=tree) == 1
        assert "report:spread/gone.md has no table" in capsys.readouterr().err
        readme.write_text(good + "<!-- report:spread/main.md -->\nno closing marker\n")
        code, err = check(tree, capsys)
        assert code == 1 and "without its <!-- /report -->" in err
    finally:
        readme.write_text(good)


def test_a_changed_caption_fact_fails_check(tree, capsys):
    config = tree / "results/spread/ppo/main-tuned_s4/config.json"
    good = config.read_text()
    try:
        files.write_json(config, {"args": {**json.loads(good)["args"], "max_steps": 60_000}})
        code, err = check(tree, capsys)
        assert code == 1 and "spread/main.md" in err
    finally:
        config.write_text(good)


@pytest.mark.parametrize("mode", ["--check", "--report"])
@pytest.mark.parametrize("tree_kind", ["empty", "missing", "file"])
def test_nothing_to_check_is_refused_with_one_line(tmp_path, capsys, mode, tree_kind):
    results = tmp_path / "results"
    if tree_kind == "empty":
        (results / "spread").mkdir(parents=True)
    elif tree_kind == "file":
        results.write_text("not a directory")
    assert cli.run_cli(compare_results.main, [mode, "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing to report") and len(err.strip().splitlines()) == 1, err
