"""simple_reference: the references, the hand-coded protocol and the diagnostics that say whether agents talk."""

import numpy as np
import pytest

from memeplex import communication, protocol
from memeplex.envs.vec import batched_world

SEEDS = protocol.eval_seeds("test", 200)


@pytest.fixture(scope="module")
def refs():
    return protocol.reference_scores("reference", "test", len(SEEDS))


def score(policy):
    return float(protocol.run_episodes("reference", policy, SEEDS)["scores"].mean())


def test_geometric_median_minimises_the_sum_of_distances():
    rng = np.random.default_rng(0)
    tri = rng.uniform(-1, 1, (300, 3, 2))
    tri[:50, 2] = tri[:50, 0] + 0.05 * (tri[:50, 1] - tri[:50, 0])  # flat triangles: a vertex is the median
    x = communication.geometric_median(tri)
    total = lambda p: np.linalg.norm(tri - p[:, None], axis=-1).sum(-1)
    best = total(x)
    for step in (1e-2, 1e-4):  # no nearby point does better
        for d in ([1, 0], [-1, 0], [0, 1], [0, -1], [0.7, 0.7], [-0.7, 0.7]):
            assert (total(x + step * np.array(d)) >= best - 1e-9).all()
    assert np.allclose(x[:50], tri[:50, 2], atol=1e-12)  # exactly the obtuse vertex


def test_references_order_and_backends(refs):
    """oracle > no-communication > random, on both backends (the oracle reads the goals from either)."""
    assert refs["oracle"] > refs["no_comm"] + 10 > refs["random"] + 20
    mpe2 = protocol.reference_scores("reference", "test", 50, "mpe2")
    batched = protocol.reference_scores("reference", "test", 50, "batched")
    assert mpe2 == pytest.approx(batched, abs=1e-9)


def test_the_hand_coded_protocol_closes_the_communication_gap(refs):
    """Say the partner's target one-hot, go where the partner's message points: near the oracle, far above
    no communication (a message arrives a step late, which costs a little)."""
    s = score(communication.OneHotSpeaker())
    assert protocol.comm_gap_closed(s, refs) >= 0.85
    assert protocol.normalised(s, refs) >= 0.9
    # the same controller with the messages dropped is the no-communication reference
    assert protocol.comm_gap_closed(score(communication.NoCommPolicy()), refs) == pytest.approx(0.0, abs=1e-12)


class Misleading(communication.OneHotSpeaker):
    """The hand-coded protocol naming the next landmark instead of the target: it still signals perfectly
    (a decoder learns the shift) and is listened to, but it sends its partner to the wrong place."""

    def __call__(self, obs, state):
        out = super().__call__(obs, state)
        for a in out:
            out[a][:, 5:8] = np.roll(out[a][:, 5:8], 1, axis=1)
        return out


def test_diagnostics_tell_talking_from_silence():
    seeds = SEEDS[:100]
    silent = communication.diagnose("reference", communication.NoCommPolicy(), seeds)
    noise = communication.diagnose("reference", protocol.RandomPolicy("reference"), seeds)
    talk = communication.diagnose("reference", communication.OneHotSpeaker(), seeds)
    lie = communication.diagnose("reference", Misleading(), seeds)
    assert abs(noise["signalling"] - 1 / 3) < 0.06 and abs(silent["signalling"] - 1 / 3) < 0.06  # chance
    assert talk["signalling"] > 0.99 and lie["signalling"] > 0.99
    assert silent["listening"] == noise["listening"] == 0.0  # neither reads the message: identical episodes
    assert talk["listening"] > 0.3  # another episode's message sends the listener elsewhere
    assert lie["listening"] < 0.1 < talk["listening"] - lie["listening"]  # wrong either way: no better on swap
    assert talk["target_distance"] < 0.5 * silent["target_distance"]


def test_signalling_accuracy_is_held_out():
    """A message that carries nothing but an episode-specific random code: a classifier that memorised its
    training episodes would score 1 there, held out it is at chance."""
    rng = np.random.default_rng(1)
    E, T = 200, 25
    codes = rng.random((E, 10))
    labels = rng.integers(3, size=E)
    colour = np.eye(3)[labels]
    obs = {a: np.concatenate([np.zeros((E, 8)), colour, np.zeros((E, 10))], axis=1) for a in ("agent_0", "agent_1")}
    sent = [{a: codes + 1e-3 * rng.random((E, 10)) for a in obs} for _ in range(T)]
    acc = communication.signalling_accuracy([obs] * T, sent)
    assert abs(acc - 1 / 3) < 0.12
    told = [{a: np.eye(10)[labels] for a in obs} for _ in range(T)]  # the label itself, one-hot
    assert communication.signalling_accuracy([obs] * T, told) == 1.0


def test_oracle_reaches_each_agents_own_target():
    world = batched_world("reference", 64)
    obs = world.reset(seeds=SEEDS[:64])
    oracle = protocol.OraclePolicy("reference")
    start = communication.own_target_distance(world)
    for _ in range(25):
        obs = world.step({a: np.clip(x, 0, 1).astype(np.float32) for a, x in oracle(obs, world).items()})[0]
    end = communication.own_target_distance(world)
    assert end.max() < 0.1 < start.mean()


def test_first_look_report_reads_the_runs(tmp_path):
    """The first-look tables: the references of the runs' test episodes with the hand-coded protocol's row
    computed on those seeds, one row per algorithm and run name with the flags that set it apart, and the
    figure of the longest budget."""
    from memeplex import files
    from memeplex.reports import reference

    refs = protocol.reference_scores("reference", "test", 6)
    root = tmp_path / "results" / reference.FIRST_LOOK / "reference"
    for algo, name, extra in [("ppo", "a", {}), ("method_i", "a", {}), ("ppo", "b", {"lr": 0.001})]:
        for seed, gap in [(101, 0.1), (102, 0.3)]:
            d = root / algo / f"{name}_s{seed}"
            args = {"max_steps": 2048 if name == "b" else 1024, "lr": 0.002, "seed": seed, **extra}
            files.write_json(d / "config.json", {"args": args})
            summary = {"env_steps": args["max_steps"], "test_references": refs, "test_episodes": 6,
                       "test_normalised": 0.5, "test_comm_gap": gap, "test_signalling": 0.4,
                       "test_listening": 0.0}  # fmt: skip
            files.write_json(d / "summary.json", summary)
            rows = [{"step": 512 * (k + 1), "eval_comm_gap": gap, "eval_signalling": 0.4, "eval_listening": 0.0}
                    for k in range(2)]  # fmt: skip
            files.write_csv(d / "metrics.csv", rows)
    out = reference.report(tmp_path / "results")
    assert set(out) == {"references.md", "first_look.md", "first_look.png"}
    table = out["first_look.md"].splitlines()
    assert sum("| IPPO |" in line for line in table) == 2 and sum("| Method I |" in line for line in table) == 1
    assert any("`--lr 0.001`" in line and "2.05k" in line for line in table)
    assert any("**0.200** [0.100, 0.300]<br>(0.100 / 0.300)" in line for line in table)  # the gap, with its CI
    hand = [line for line in out["references.md"].splitlines() if line.startswith("| hand-coded")][0]
    assert "| 1.00 |" in hand  # signals perfectly
    assert reference.report(tmp_path / "nothing") == {}
