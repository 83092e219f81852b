"""MADDPG baseline: replay transitions, actor-only checkpoints, a tiny population run, eval_maddpg.py."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import train_maddpg
from conftest import ROOT, TINY_MADDPG, assert_clean_error, dirs, run_script
from memeplex import errors, files, maddpg
from memeplex.envs import spec, vec

TINY = [*TINY_MADDPG, "--eval-episodes", "4", "--final-eval-episodes", "4"]


def test_transition_at_episode_end_stores_real_final_observation():
    envs = vec.VecEnv("spread", 2, seed=0)
    obs = envs.reset()
    zero = {a: np.zeros((2, 5), np.float32) for a in envs.agents}
    for t in range(25):
        prev = obs
        obs, rewards, dones, terminated, final_obs, _ = envs.step(zero)
        tr = maddpg.transition(prev, zero, rewards, obs, dones, terminated, final_obs)
        for a in envs.agents:
            if t < 24:  # inside the episode: the next observation is the one returned
                np.testing.assert_array_equal(tr["next_obs"][a], obs[a])
            else:  # the time limit: the real final observation, not the next episode's reset
                assert dones.all()
                np.testing.assert_array_equal(tr["next_obs"][a], final_obs[a])
                assert not np.allclose(tr["next_obs"][a], obs[a])
            assert (tr["done"][a] == 0).all()  # truncation is not termination: bootstrapped


def _population(n=1, shared=False, **kw):
    cfg = maddpg.MADDPGConfig(population_size=n, tournament_size=min(n, 2), shared_networks=shared, **kw)
    agents = spec.env_info("spread")[0]
    env = spec.make_env("spread")
    return maddpg.make_population(
        cfg, 3, agents, [env.observation_space(a) for a in agents], [env.action_space(a) for a in agents]
    ), agents


@pytest.mark.parametrize("shared", [False, True])
def test_actor_policy_matches_agilerl_and_round_trips_weights_only(shared):
    (member,), agents = _population(shared=shared)
    assert len(member.actors) == (1 if shared else 3)
    member.set_training_mode(False)
    obs = {a: np.random.default_rng(0).normal(size=(3, 18)).astype(np.float32) for a in agents}
    expected, _ = member.get_action(obs)
    policy = maddpg.ActorPolicy(maddpg.member_actors(member, agents), agents)
    got = policy(obs)
    for a in agents:
        np.testing.assert_allclose(got[a], expected[a], rtol=1e-6, atol=1e-6)
        assert (got[a] >= 0).all() and (got[a] <= 1).all()
    buf = io.BytesIO()
    torch.save({a: maddpg.actor_state(policy.actors[a]) for a in agents}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    loaded = maddpg.ActorPolicy({a: maddpg.actor_from_state(state[a]) for a in agents}, agents)
    for a in agents:
        np.testing.assert_array_equal(loaded(obs)[a], got[a])


def test_tiny_population_run_checkpoints_the_fittest_member(tmp_path):
    assert train_maddpg.main([*TINY, *dirs(tmp_path), "--run-name", "smoke"]) == 0
    run = tmp_path / "results/spread/maddpg/smoke_s1"
    rows = files.read_metrics(run / "metrics.csv")
    # generation 1: 2 members x 500 steps + 2 members x 2 fitness episodes x 25 steps = 1100;
    # generation 2 is shortened to 2 x 400 steps so that its fitness episodes fit the 2000-step budget
    assert [r["step"] for r in rows] == [1100, 2000]
    for r in rows:  # the evaluated/checkpointed member is the one with the best latest fitness
        members = str(r["members"]).split()
        fits = [r["fitness_0"], r["fitness_1"]]
        assert str(r["best_member"]) == members[int(np.argmax(fits))]
        assert 0.0 <= r["eval_saturation"] <= 1.0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] == 2000 and "test_normalised" in summary
    assert summary["fitness_env_steps"] == 2 * 2 * 2 * 25  # counted within the budget, reported on their own
    assert summary["throughput_per_member"] == pytest.approx(summary["throughput_without_eval"] / 2, rel=0.01)
    mutations = files.read_metrics(run / "updates.csv")
    assert len(mutations) == 1 and str(mutations[0]["mutations"]).count(":") == 2  # one record per member
    assert [mutations[0][f"member_{k}_steps"] for k in range(2)] == [500, 500]
    ckpt = tmp_path / "checkpoints/spread/maddpg/smoke_s1/latest.pt"
    assert torch.load(ckpt, weights_only=True)["algo"] == "maddpg"
    gif = tmp_path / "m.gif"
    proc = run_script("eval_maddpg.py", "--checkpoint", ckpt, "--episodes", "4", "--render", "--out", gif)
    assert proc.returncode == 0, proc.stderr
    assert "95% CI, 4 episodes" in proc.stdout and "saturation" in proc.stdout and gif.stat().st_size > 1000
    # the same actors give the same test score as the end of training (4 test episodes both times)
    assert f"{summary['test_score']:.2f} ±" in proc.stdout
    assert_clean_error(run_script("eval_maddpg.py", "--checkpoint", tmp_path / "nope.pt"), "checkpoint not found")
    assert_clean_error(run_script("eval_method_i.py", "--checkpoint", ckpt), "use eval_maddpg.py")


def test_the_elite_survives_a_generation_unchanged():
    """Tournament selection keeps the fittest member first; AgileRL 2.58 would mutate it too by default."""
    cfg = maddpg.MADDPGConfig(population_size=3, mut_none=0, mut_parameters=0, mut_architecture=1, mut_rl_hp=1)
    mutations = maddpg.make_mutations(cfg, seed=1)
    pop, agents = _population(3)
    for member, fit in zip(pop, (0.1, 0.9, 0.5)):
        member.metrics.add_fitness(fit)
    best = pop[1]
    before = (
        {k: v.clone() for k, v in best.actors[agents[0]].state_dict().items()},
        maddpg.member_hyperparameters(best),
    )
    new = maddpg.next_generation(pop, maddpg.make_tournament(cfg), mutations)
    elite = new[0]
    after = elite.actors[agents[0]].state_dict()
    assert before[0].keys() == after.keys() and all(torch.equal(before[0][k], after[k]) for k in after)
    assert maddpg.member_hyperparameters(elite) == before[1]
    assert all(m.mut != "None" for m in new[1:])  # the others were mutated (no-mutation has probability 0)


def test_a_failed_agilerl_mutation_is_selected_and_mutated_again(capsys):
    """AgileRL 2.58 raises MutationError for some architecture mutations of separate networks, after
    changing part of a member: the generation is selected (from the intact old population) again."""
    from agilerl.hpo.mutation import MutationError

    class Tournament:
        calls = 0

        def select(self, pop):
            self.calls += 1
            return pop[0], [f"{m}-clone{self.calls}" for m in pop], None

    class Mutations:
        calls = 0

        def mutation(self, pop):
            self.calls += 1
            if self.calls == 1:
                raise MutationError("Mutation method 'encoder.add_node' not found in 'ContinuousQNetwork'. More.")
            return pop

    tournament, mutations = Tournament(), Mutations()
    assert maddpg.next_generation(["a", "b"], tournament, mutations) == ["a-clone2", "b-clone2"]
    assert tournament.calls == 2 and "selecting and mutating again (1 of" in capsys.readouterr().err


def test_a_population_of_one_plays_no_fitness_games_and_is_never_mutated(tmp_path):
    assert (
        train_maddpg.main(
            [
                *TINY,
                *dirs(tmp_path),
                "--run-name",
                "one",
                "--population-size",
                "1",
                "--tournament-size",
                "1",
                "--evo-steps",
                "1000",
                "--mut-none",
                "0",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "results/spread/maddpg/one_s1/summary.json").read_text())
    assert summary["fitness_env_steps"] == 0 and summary["env_steps"] == 2000
    mutations = files.read_metrics(tmp_path / "results/spread/maddpg/one_s1/updates.csv")
    assert [str(m["mutations"]).split(":")[1] for m in mutations] == ["None"]


def test_maddpg_bad_input_and_resume(tmp_path):
    with pytest.raises(errors.UsageError, match="tournament-size"):
        train_maddpg.main([*TINY, *dirs(tmp_path), "--tournament-size", "3"])
    with pytest.raises(errors.UsageError, match="no checkpoint"):
        train_maddpg.main([*TINY, *dirs(tmp_path), "--run-name", "x", "--resume"])
    assert train_maddpg.main([*TINY, *dirs(tmp_path), "--run-name", "r", "--max-steps", "1000"]) == 0
    # continue the finished run to a larger budget: population and progress come back
    assert (
        train_maddpg.main([*dirs(tmp_path), "--run-name", "r", "--resume", "--max-steps", "2000", "--no-progress"]) == 0
    )
    rows = files.read_metrics(tmp_path / "results/spread/maddpg/r_s1/metrics.csv")
    assert [r["step"] for r in rows] == [996, 2000] and rows[1]["generation"] == 2  # budgets include fitness games
    with pytest.raises(errors.UsageError, match="differs"):
        train_maddpg.main([*dirs(tmp_path), "--run-name", "r", "--resume", "--lr-actor", "0.5"])


def test_same_seed_reproduces_a_population_run(tmp_path):
    """Two runs of the script with one seed agree after tournaments and mutations, whatever
    PYTHONHASHSEED the shell has (AgileRL's mutations iterate over sets of strings)."""
    import os

    rows = []
    for k, hash_seed in enumerate(["1", "2"]):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [
                sys.executable,
                "train_maddpg.py",
                "--max-steps",
                "4000",
                "--population-size",
                "2",
                "--evo-steps",
                "1000",
                "--eval-interval",
                "2000",
                "--eval-episodes",
                "5",
                "--final-eval-episodes",
                "0",
                "--learning-delay",
                "200",
                "--shared-networks",
                "--no-progress",
                *dirs(tmp_path / str(k)),
                "--run-name",
                "det",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        rows.append(files.read_metrics(tmp_path / str(k) / "results/spread/maddpg/det_s1/metrics.csv"))
        rows[-1] = [{key: v for key, v in r.items() if not key.startswith(("throughput", "wall"))} for r in rows[-1]]
    assert len(rows[0]) == 2 and rows[0] == rows[1]


def test_exploration_noise_decays_linearly_to_its_final_scale():
    """--expl-noise-final: the scale AgileRL samples its Gaussian noise with goes from expl_noise to the final
    value at --max-steps (and stays there); without it the scale is AgileRL's constant."""
    assert maddpg.noise_schedule(maddpg.MADDPGConfig(), 1000) is None
    at = maddpg.noise_schedule(maddpg.MADDPGConfig(expl_noise=0.3, expl_noise_final=0.1), 1000)
    assert at(0) == pytest.approx(0.3) and at(500) == pytest.approx(0.2) and at(1000) == at(5000) == pytest.approx(0.1)
    (member,), agents = _population()
    envs = vec.VecEnv("spread", 3, seed=0)
    from agilerl.components.replay_buffer import ReplayBuffer

    memory = ReplayBuffer(max_size=1000)
    progress = train_maddpg.Progress(global_step=500)
    cfg = maddpg.MADDPGConfig(learning_delay=10**6)
    maddpg.collect(member, envs, memory, 3, progress, cfg, False, noise=at)
    for a in agents:  # set before the one vector step, at global step 500
        assert torch.allclose(member.expl_noise[a], torch.full_like(member.expl_noise[a], 0.2))
    with pytest.raises(ValueError, match="expl-noise-final"):
        maddpg.MADDPGConfig(expl_noise_final=-0.5)


def test_a_single_member_needs_no_tournament_size():
    assert maddpg.MADDPGConfig(population_size=1).tournament_size == 2  # unused: nothing to select
    with pytest.raises(ValueError, match="tournament-size cannot exceed"):
        maddpg.MADDPGConfig(population_size=3, tournament_size=4)


def test_the_actor_penalty_is_the_gradient_of_the_paper_s_term_in_the_actor_update_only():
    """--actor-reg: a backward pass through a regularised actor gets the gradient of weight * mean(pre ** 2) (pre:
    the output activation's input) added, exactly as if the term were in the loss; outputs are unchanged, and
    calling regularise again adds no second hook."""
    (member,), agents = _population(shared=True)
    actor = next(iter(member.actors.values()))
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(16, 18)), dtype=torch.float32)
    captured = []
    handle = actor.head_net.model[-1].register_forward_pre_hook(lambda m, inp: captured.append(inp[0]))
    out = actor(x)
    (out.sum() * 3 + 0.5 * captured[-1].pow(2).mean()).backward()
    expected = [p.grad.clone() for p in actor.parameters()]
    handle.remove()
    actor.zero_grad()
    cfg = maddpg.MADDPGConfig(actor_reg=0.5)
    maddpg.regularise(member, cfg)
    maddpg.regularise(member, cfg)
    assert len(actor.head_net.model[-1]._forward_pre_hooks) == 1
    out2 = actor(x)
    torch.testing.assert_close(out2, out)
    (out2.sum() * 3).backward()
    for got, want in zip([p.grad for p in actor.parameters()], expected):
        torch.testing.assert_close(got, want)
    assert any((g - w).abs().max() > 0 for g, w in zip(expected, _plain_grads(actor, x)))  # the term mattered
    with torch.no_grad():  # acting: no autograd graph, the hook stays out of the way
        torch.testing.assert_close(actor(x), out.detach())


def _plain_grads(actor, x):
    hooks = dict(actor.head_net.model[-1]._forward_pre_hooks)
    actor.head_net.model[-1]._forward_pre_hooks.clear()
    actor.zero_grad()
    (actor(x).sum() * 3).backward()
    actor.head_net.model[-1]._forward_pre_hooks.update(hooks)
    return [p.grad.clone() for p in actor.parameters()]


def test_gradient_clipping_bounds_every_update_and_learning_runs_with_both_regularisers():
    """--grad-clip: every actor and critic optimiser step sees gradients of global norm <= the bound; a member
    with both regularisers trains through collect() (AgileRL's learn())."""
    (member,), agents = _population(shared=False, batch_size=64, learn_step=16)
    cfg = maddpg.MADDPGConfig(grad_clip=0.5, actor_reg=1e-3, learning_delay=0)
    maddpg.regularise(member, cfg)
    opts = [*member.actor_optimizers.values(), *member.critic_optimizers.values()]
    assert len(opts) == 6
    for opt in opts:
        params = [p for g in opt.param_groups for p in g["params"]]
        for p in params:
            p.grad = torch.full_like(p, 10.0)
        opt.step()
        assert torch.nn.utils.get_total_norm([p.grad for p in params]) <= 0.5 + 1e-5
    envs = vec.VecEnv("spread", 3, seed=0)
    from agilerl.components.replay_buffer import ReplayBuffer

    memory, progress = ReplayBuffer(max_size=1000), train_maddpg.Progress()
    maddpg.collect(member, envs, memory, 192, progress, cfg, False)
    assert progress.learn_calls > 0
    maddpg.regularise(member, cfg)
    assert all(len(opt._optimizer_step_pre_hooks) == 1 for opt in opts)
    with pytest.raises(ValueError, match="grad-clip"):
        maddpg.MADDPGConfig(grad_clip=-1)
