"""simple_reference's references and the diagnostics that say whether agents talk.

On `reference` each agent's target is known only to its partner, so the score
has three reference points (protocol.reference_scores, on the same seeds):

    random            uniform actions (normalised score 0)
    oracle            privileged: each agent moves to its own target (1)
    no-communication  NoCommPolicy: each agent moves to the point that minimises
                      its expected distance to a landmark drawn uniformly from
                      the three, the landmarks' geometric median
                      (`geometric_median`), which is the best a policy can do
                      that does not know its own target

and `comm_gap_closed = (score - no_comm) / (oracle - no_comm)`: above 0 the
agents use messages.  `OneHotSpeaker` is a hand-coded protocol (say the
partner's target as a one-hot message, go where the partner's message says);
it shows the task and the references are right.

Whether and how agents talk (after Lowe et al. 2019, "On the pitfalls of
measuring emergent communication"), from `diagnose(env, policy, seeds)`:

    signalling  held-out accuracy of a classifier that reads the partner's target
                (the landmark an agent knows of) from the message the agent sends;
                chance 1/3.  A multinomial logistic regression on the 10 message
                entries of every (episode, step, agent), trained on the even
                episodes and scored on the odd ones.
    listening   how much the listener's behaviour depends on the message: the mean
                distance of an agent to its own target over the episode when the
                message it hears is the one its partner sent at that step in
                *another* episode (the next seed's), minus the same with the real
                messages.  0 for a policy that ignores messages; the other
                episode's partner names the same target a third of the time.

Policies follow protocol.py's convention: `policy(obs, state) -> actions`.
"""

from __future__ import annotations

import numpy as np

from memeplex.envs.reference import MOVE_DIMS, OBS_COLOUR, OBS_MESSAGE
from memeplex.envs.spec import env_info
from memeplex.envs.vec import batched_world

OBS_LANDMARKS = slice(2, 8)  # the three landmarks' positions relative to the agent
KP, KD = 8.0, 2.0  # the spread oracle's PD gains: u = KP (target - pos) - KD vel


def geometric_median(points: np.ndarray) -> np.ndarray:
    """[..., 2]: the point minimising the sum of distances to the triangle `points` [..., 3, 2], its
    Fermat point, in closed form: the vertex whose angle is >= 120 degrees if there is one; otherwise
    the point with barycentric coordinates a csc(A + 60) : b csc(B + 60) : c csc(C + 60) (a, b, c the
    side lengths opposite the angles A, B, C)."""
    p = np.asarray(points, dtype=np.float64)
    side = np.stack([np.linalg.norm(p[..., (k + 2) % 3, :] - p[..., (k + 1) % 3, :], axis=-1) for k in range(3)], -1)
    angle = np.stack(
        [_angle(p[..., k, :], p[..., (k + 1) % 3, :], p[..., (k + 2) % 3, :]) for k in range(3)], -1
    )  # [..., 3], the angle at vertex k, opposite side k
    weight = side / np.sin(np.minimum(angle + np.pi / 3, np.pi - 1e-12))
    x = (p * weight[..., None]).sum(-2) / weight.sum(-1, keepdims=True)
    for k in range(3):
        x = np.where((angle[..., k] >= 2 * np.pi / 3 - 1e-12)[..., None], p[..., k, :], x)
    return x


def _angle(v, a, b):
    """The angle at v of the triangle (v, a, b), in radians (0 for a degenerate one)."""
    da, db = a - v, b - v
    na, nb = np.linalg.norm(da, axis=-1), np.linalg.norm(db, axis=-1)
    cos = (da * db).sum(-1) / np.maximum(na * nb, 1e-300)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def pd_action(target_rel: np.ndarray, vel: np.ndarray, message=None) -> np.ndarray:
    """[E, 15]: a move towards `target_rel` (relative to the agent) with the PD gains, and `message` [E, 10]."""
    from memeplex.protocol import force_to_action

    move = force_to_action(KP * target_rel - KD * vel)
    msg = np.zeros((len(move), 10), dtype=np.float32) if message is None else message.astype(np.float32)
    return np.concatenate([move, msg], axis=1)


def landmarks_rel(o: np.ndarray) -> np.ndarray:
    """[E, 3, 2]: the landmarks' positions relative to the agent, from its observation."""
    return o[:, OBS_LANDMARKS].astype(np.float64).reshape(-1, 3, 2)


class NoCommPolicy:
    """The no-communication reference: move to the landmarks' geometric median, say nothing
    (from the observation alone)."""

    def __init__(self, name: str = "reference"):
        self.agents = env_info(name)[0]

    def __call__(self, obs, state):
        return {a: pd_action(geometric_median(landmarks_rel(o)), o[:, :2]) for a, o in obs.items()}


class OneHotSpeaker:
    """A hand-coded protocol from the observation alone: say the partner's target as a one-hot
    message (entry k of the message for landmark k, read off the colour it observes), and move
    to the landmark the partner's message names; before a message has arrived, to the median."""

    def __init__(self, name: str = "reference"):
        self.agents = env_info(name)[0]

    def __call__(self, obs, state):
        out = {}
        for a, o in obs.items():
            told = np.argmax(o[:, OBS_COLOUR], axis=1)  # the landmark the partner must reach
            heard = o[:, OBS_MESSAGE][:, :3]
            marks = landmarks_rel(o)
            target = np.where(
                (heard.max(axis=1) > 0.5)[:, None],
                marks[np.arange(len(o)), np.argmax(heard, axis=1)],
                geometric_median(marks),
            )
            out[a] = pd_action(target, o[:, :2], np.eye(10)[told])
        return out


def own_target_distance(world) -> np.ndarray:
    """[E, 2]: each agent's distance to its own target (the landmark its partner knows of)."""
    nA, E = world.num_agents, world.num_envs
    marks = world.pos[:, nA:][np.arange(E)[:, None], world.target()]  # [E, 2, 2]
    return np.linalg.norm(world.pos[:, :nA] - marks, axis=-1)


def _play(name: str, policy, seeds, donor=None):
    """Episodes of `policy` on the batched world, one per seed. `donor`: [steps] of obs dicts whose
    messages replace the ones the agents hear (the listening intervention). Returns the obs seen,
    the messages sent (clipped) and the mean distance of each agent to its own target."""
    from memeplex.protocol import fresh

    policy = fresh(policy)
    world = batched_world(name, len(seeds))
    obs = world.reset(seeds=list(seeds))
    seen, sent, dist = [], [], np.zeros((len(seeds), world.num_agents))
    for t in range(world.max_cycles):
        if donor is not None:
            obs = {a: o.copy() for a, o in obs.items()}
            for a in obs:
                obs[a][:, OBS_MESSAGE] = donor[t][a][:, OBS_MESSAGE]
        seen.append(obs)
        actions = {a: np.clip(x, 0.0, 1.0).astype(np.float32) for a, x in policy(obs, world).items()}
        sent.append({a: x[:, MOVE_DIMS:] for a, x in actions.items()})
        obs = world.step(actions)[0]
        dist += own_target_distance(world)
    return seen, sent, dist / world.max_cycles


def signalling_accuracy(seen: list, sent: list) -> float:
    """Held-out accuracy of a multinomial logistic regression that reads the landmark an agent
    knows of (its partner's target) from the agent's message: trained on the even episodes,
    scored on the odd ones (chance 1/3)."""
    import torch

    x = np.stack([np.stack([m[a] for a in m]) for m in sent])  # [steps, agents, E, 10]
    y = np.stack([np.stack([np.argmax(o[a][:, OBS_COLOUR], axis=1) for a in o]) for o in seen])  # [steps, agents, E]
    E = x.shape[2]
    if E < 2:
        return float("nan")
    train, test = np.arange(E) % 2 == 0, np.arange(E) % 2 == 1
    xtr, ytr = x[:, :, train].reshape(-1, x.shape[-1]), y[:, :, train].reshape(-1)
    xte, yte = x[:, :, test].reshape(-1, x.shape[-1]), y[:, :, test].reshape(-1)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    Xtr = torch.tensor((xtr - mu) / sd, dtype=torch.float64)
    Xte = torch.tensor((xte - mu) / sd, dtype=torch.float64)
    Ytr = torch.tensor(ytr)
    w = torch.zeros(x.shape[-1], 3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        out = torch.nn.functional.cross_entropy(Xtr @ w + b, Ytr) + 1e-3 * (w * w).sum()
        out.backward()
        return out

    opt.step(loss)
    with torch.no_grad():
        pred = (Xte @ w + b).argmax(1).numpy()
    return float((pred == yte).mean())


def diagnose(name: str, policy, seeds) -> dict:
    """`signalling` (accuracy, chance 1/3) and `listening` (distance to own target with another
    episode's messages minus with the real ones), on the batched world, one episode per seed;
    also the mean distance to own target with real (`target_distance`) and swapped messages."""
    seeds = list(seeds)
    seen, sent, real = _play(name, policy, seeds)
    # at every step each agent hears what the same agent heard at that step in the next seed's episode
    donor = [{a: np.roll(o[a], -1, axis=0) for a in o} for o in seen]
    _, _, swapped = _play(name, policy, seeds, donor=donor)
    return {
        "signalling": signalling_accuracy(seen, sent),
        "listening": float(swapped.mean() - real.mean()),
        "target_distance": float(real.mean()),
        "target_distance_swapped": float(swapped.mean()),
    }


def annotate(frame: np.ndarray, world, e: int) -> np.ndarray:
    """An mpe2 frame of reference env e with what mpe2 does not draw: a line from each agent to its
    own target (in the target's colour), the agents' numbers, and each agent's last message as 10
    grey cells (white 0, black 1) with the colour of the target it knows of beside them."""
    from PIL import Image, ImageDraw

    from memeplex.envs.reference import COLOURS

    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    h, w = frame.shape[:2]
    cam = np.abs(world.pos[e]).max()

    def pixel(p):  # mpe2's draw(): x = (x / cam_range) * width // 2 * 0.9 + width // 2, y flipped
        return (p[0] / cam) * w // 2 * 0.9 + w // 2, (-p[1] / cam) * h // 2 * 0.9 + h // 2

    nA = world.num_agents
    for i in range(nA):
        target = int(world.target()[e, i])
        colour = tuple(int(c * 200) for c in COLOURS[target])
        a, t = pixel(world.pos[e, i]), pixel(world.pos[e, nA + target])
        draw.line([a, t], fill=colour, width=2)
        draw.text((a[0] + 12, a[1] - 18), f"{i}", fill=(0, 0, 0))
        y = 8 + 22 * i
        draw.text((8, y + 3), f"agent {i} says", fill=(0, 0, 0))
        for k, v in enumerate(world.comm[e, i]):
            g = int(255 * (1.0 - float(v)))
            draw.rectangle([100 + 14 * k, y, 112 + 14 * k, y + 12], fill=(g, g, g), outline=(0, 0, 0))
        known = tuple(int(c * 200) for c in COLOURS[int(world.goal[e, i])])
        draw.rectangle([100 + 14 * 10 + 8, y, 100 + 14 * 10 + 20, y + 12], fill=known, outline=(0, 0, 0))
    return np.asarray(img)
