"""Utterance-level Q-value critics on frozen features (Digi-Q / ArCHer layout): twin Q, twin V, Polyak targets.

Equations (Digi-Q, Bai et al. 2025; ArCHer, Zhou et al. 2024; expectile V from IQL, Kostrikov et al. 2021; CQL,
Kumar et al. 2020), with ``'`` the target network:
    L_Q   = Σ_i MSE(Q_i(s, a), r + γ (1 − d) B_i(s'))      B = V'_i(s')  ("in_sample", Digi-Q)
                                                          B = min(Q'_1, Q'_2)(s', argmax_a' Q'_1(s', a'))  ("max")
    L_V   = Σ_i E[|τ − 1(Q'_i(s, a) < V_i(s))| (Q'_i(s, a) − V_i(s))²]   (expectile; τ = 0.5 is in-sample SARSA)
    L_CQL = α Σ_i E[T logsumexp_{a ∈ cand(s)} Q_i(s, a)/T − Q_i(s, a_data)]   (candidates: actions seen at s)
    θ' ← τ_polyak θ + (1 − τ_polyak) θ'  after every update.
Extraction reduces the twins with ``min`` by default (pessimistic, ArCHer/TD3); Digi-Q uses ``max``: set ``twin``.
A TextCritic pairs the heads with a frozen featurizer: ``fit_critic_from_records`` trains one offline from episode
records, ``TextCritic.update`` takes one online step on fresh transitions, ``load_critic`` reads a saved one.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agentgym.messages import Message, message_text
from agentgym.provenance import entries_from_records, write_model_provenance
from agentgym.records import EpisodeRecord, iter_episodes
from agentgym.trainers.features import Featurizer, make_featurizer

# --- pure pieces ----------------------------------------------------------------------------------------


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``θ' ← τ θ + (1 − τ) θ'`` for every parameter (τ = 1 copies)."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(1.0 - tau).add_(o.detach(), alpha=tau)


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """``E[|τ − 1(diff < 0)| diff²]`` with diff = target − prediction (τ = 0.5: half the MSE; τ → 1: the max)."""
    weight = torch.where(diff < 0, 1.0 - tau, tau)
    return (weight * diff.pow(2)).mean()


def _masked(q: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return q if mask is None else q.masked_fill(~mask, -math.inf)


def max_q_target(q_next: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``max_a' Q(s', a')`` over the last dim (biased upward under noise)."""
    return _masked(q_next, mask).max(-1).values


def double_q_target(q_select: torch.Tensor, q_eval: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Double-Q: ``Q_eval(s', argmax_a' Q_select(s', a'))``."""
    a = _masked(q_select, mask).argmax(-1, keepdim=True)
    return q_eval.gather(-1, a).squeeze(-1)


def clipped_double_q_target(q1: torch.Tensor, q2: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Clipped double-Q: ``min(Q1, Q2)(s', a*)`` at ``a* = argmax Q1`` (the min after the argmax, not before)."""
    a = _masked(q1, mask).argmax(-1, keepdim=True)
    return torch.minimum(q1, q2).gather(-1, a).squeeze(-1)


def cql_penalty(q_cand: torch.Tensor, cand_mask: torch.Tensor, q_data: torch.Tensor,
                temperature: float = 1.0) -> torch.Tensor:
    """``E[T logsumexp_{a∈cand} Q(s, a)/T − Q(s, a_data)]``: pushes down actions the data never took at s."""
    lse = temperature * torch.logsumexp(_masked(q_cand, cand_mask) / temperature, dim=-1)
    return (lse - q_data).mean()


# --- the critic -------------------------------------------------------------------------------------------


@dataclass
class QValueConfig:
    """Critic hyper-parameters (defaults: Digi-Q/ILQL values, scaled for small offline data)."""

    gamma: float = 0.95           # discount per turn
    tau: float = 0.01             # Polyak rate per update (ILQL 0.005 per step; Digi-Q 0.1 per epoch)
    lr: float = 1e-3              # Adam learning rate
    hidden: tuple[int, ...] = (256,)  # MLP widths of each head; () = linear (tabular with one-hot features)
    backup: str = "in_sample"     # in_sample (V'(s')) | max (clipped double-Q over next-state candidates)
    expectile: float = 0.5        # V expectile: 0.5 = in-sample mean (SARSA), 0.7-0.9 = IQL
    cql_alpha: float = 0.0        # CQL weight (0 = off)
    cql_temperature: float = 1.0
    twin: str = "min"             # twin reduction for extraction: min (pessimistic) | max (Digi-Q)
    epochs: int = 50              # offline passes over the transitions
    batch_size: int = 64
    grad_clip: float = 10.0
    seed: int = 0
    state_chars: int = 2000       # state text = the last N characters of the conversation
    featurizer: Any = "bow"       # encoder spec (see trainers/features.make_featurizer)


def _mlp(inp: int, hidden: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(inp, h), nn.ReLU()]
        inp = h
    layers.append(nn.Linear(inp, 1))
    return nn.Sequential(*layers)


class TwinHeads(nn.Module):
    """Q1, Q2 over (state, action) features and V1, V2 over state features."""

    def __init__(self, sa_dim: int, s_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.q1, self.q2 = _mlp(sa_dim, hidden), _mlp(sa_dim, hidden)
        self.v1, self.v2 = _mlp(s_dim, hidden), _mlp(s_dim, hidden)

    def q(self, sa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q1(sa).squeeze(-1), self.q2(sa).squeeze(-1)

    def v(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.v1(s).squeeze(-1), self.v2(s).squeeze(-1)


@dataclass
class TransitionBatch:
    """Feature tensors of B transitions; candidate sets are padded to K with a mask."""

    sa: torch.Tensor                   # [B, Dsa]
    s: torch.Tensor                    # [B, Ds]
    reward: torch.Tensor               # [B]
    done: torch.Tensor                 # [B] (1 = no bootstrap)
    next_s: torch.Tensor               # [B, Ds]
    next_cand_sa: torch.Tensor | None = None   # [B, K, Dsa] (max backup)
    next_cand_mask: torch.Tensor | None = None
    cand_sa: torch.Tensor | None = None        # [B, K, Dsa] (CQL)
    cand_mask: torch.Tensor | None = None

    def index(self, idx: torch.Tensor) -> TransitionBatch:
        return TransitionBatch(**{k: (v[idx] if v is not None else None) for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return int(self.reward.shape[0])


class QCritic:
    """Twin Q/V heads, their Polyak target and an Adam optimiser; ``update(batch)`` is one gradient step."""

    def __init__(self, sa_dim: int, s_dim: int, cfg: QValueConfig | None = None):
        self.cfg = cfg or QValueConfig()
        torch.manual_seed(self.cfg.seed)
        self.sa_dim, self.s_dim = sa_dim, s_dim
        self.online = TwinHeads(sa_dim, s_dim, self.cfg.hidden)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.opt = torch.optim.Adam(self.online.parameters(), lr=self.cfg.lr)
        self.updates = 0

    def losses(self, b: TransitionBatch) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        with torch.no_grad():
            if cfg.backup == "in_sample":
                boot1, boot2 = self.target.v(b.next_s)
            elif cfg.backup == "max":
                assert b.next_cand_sa is not None, "the max backup needs next-state candidates"
                nq1, nq2 = self.target.q(b.next_cand_sa)
                mask = b.next_cand_mask
                empty = ~mask.any(-1) if mask is not None else torch.zeros_like(b.done, dtype=torch.bool)
                boot1 = boot2 = clipped_double_q_target(nq1, nq2, mask).masked_fill(empty, 0.0)
            else:
                raise ValueError(f"unknown backup {cfg.backup!r}")
            y1 = b.reward + cfg.gamma * (1.0 - b.done) * boot1
            y2 = b.reward + cfg.gamma * (1.0 - b.done) * boot2
            tq1, tq2 = self.target.q(b.sa)
        q1, q2 = self.online.q(b.sa)
        v1, v2 = self.online.v(b.s)
        out = {"q_loss": ((q1 - y1) ** 2).mean() + ((q2 - y2) ** 2).mean(),
               "v_loss": expectile_loss(tq1 - v1, cfg.expectile) + expectile_loss(tq2 - v2, cfg.expectile)}
        if cfg.cql_alpha > 0 and b.cand_sa is not None:
            c1, c2 = self.online.q(b.cand_sa)
            out["cql_loss"] = cfg.cql_alpha * (cql_penalty(c1, b.cand_mask, q1, cfg.cql_temperature)
                                               + cql_penalty(c2, b.cand_mask, q2, cfg.cql_temperature))
        out["loss"] = sum(out.values())  # type: ignore[assignment]
        out["q_mean"] = q1.detach().mean()
        return out

    def update(self, b: TransitionBatch) -> dict[str, float]:
        """One Adam step on all losses, then the Polyak target update."""
        self.online.train()
        losses = self.losses(b)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = nn.utils.clip_grad_norm_(self.online.parameters(), self.cfg.grad_clip)
        self.opt.step()
        polyak_update(self.target, self.online, self.cfg.tau)
        self.updates += 1
        return {**{k: float(v.detach()) for k, v in losses.items()}, "grad_norm": float(grad_norm)}

    def fit(self, data: TransitionBatch, epochs: int | None = None) -> list[dict[str, float]]:
        """Offline training: `epochs` shuffled passes of minibatches; returns per-epoch mean metrics."""
        g = torch.Generator().manual_seed(self.cfg.seed)
        history = []
        for _ in range(epochs if epochs is not None else self.cfg.epochs):
            perm = torch.randperm(len(data), generator=g)
            metrics: list[dict[str, float]] = []
            for start in range(0, len(data), self.cfg.batch_size):
                metrics.append(self.update(data.index(perm[start:start + self.cfg.batch_size])))
            history.append({k: sum(m[k] for m in metrics) / len(metrics) for k in metrics[0]})
        return history

    @torch.no_grad()
    def q_values(self, sa: torch.Tensor, twin: str | None = None) -> torch.Tensor:
        q1, q2 = self.online.q(sa)
        return torch.minimum(q1, q2) if (twin or self.cfg.twin) == "min" else torch.maximum(q1, q2)

    @torch.no_grad()
    def v_values(self, s: torch.Tensor, twin: str | None = None) -> torch.Tensor:
        v1, v2 = self.online.v(s)
        return torch.minimum(v1, v2) if (twin or self.cfg.twin) == "min" else torch.maximum(v1, v2)


# --- transitions from episode records --------------------------------------------------------------------


def state_text(messages: Sequence[Mapping[str, Any]], max_chars: int = 2000) -> str:
    """The conversation as text for an encoder: role-tagged messages, keeping the last `max_chars` characters."""
    text = "\n".join(f"[{m.get('role')}] {message_text(m) or ''}" for m in messages)
    return text[-max_chars:]


def action_text(message: Mapping[str, Any]) -> str:
    """An action as text: its content plus each tool call as name(arguments)."""
    calls = [f"{c.get('function', {}).get('name')}({c.get('function', {}).get('arguments')})"
             for c in message.get("tool_calls") or []]
    return " ".join([message_text(message) or "", *calls]).strip()


@dataclass
class TextTransition:
    """(s, a, r, s', done) as texts, with the candidate actions seen at s and at s' (CQL, max backup)."""

    state: str
    action: str
    reward: float
    done: bool
    next_state: str
    candidates: list[str] = field(default_factory=list)
    next_candidates: list[str] = field(default_factory=list)


def transitions_from_records(records: Iterable[EpisodeRecord], state_chars: int = 2000) -> list[TextTransition]:
    """One transition per turn of every scored episode; candidates = distinct actions taken at the same state text."""
    out: list[TextTransition] = []
    for r in records:
        if not r.scored or not r.turns:
            continue
        messages: list[Mapping[str, Any]] = list(r.first_observation)
        for i, t in enumerate(r.turns):
            s = state_text(messages, state_chars)
            messages = [*messages, t.action, *(r.turns[i + 1].observation if i + 1 < len(r.turns)
                                               else r.final_observation)]
            last = i == len(r.turns) - 1
            out.append(TextTransition(s, action_text(t.action), float(t.reward), last,
                                      state_text(messages, state_chars) if not last else ""))
    by_state: dict[str, list[str]] = {}
    for tr in out:
        acts = by_state.setdefault(tr.state, [])
        if tr.action not in acts:
            acts.append(tr.action)
    for tr in out:
        tr.candidates = by_state[tr.state]
        tr.next_candidates = by_state.get(tr.next_state, []) if not tr.done else []
    return out


class TextCritic:
    """A QCritic on a frozen featurizer: Q(s, a) from (state text, action text); a BestOfNPolicy scorer."""

    def __init__(self, featurizer: Featurizer, cfg: QValueConfig | None = None, critic: QCritic | None = None):
        self.featurizer = featurizer
        self.cfg = cfg or QValueConfig()
        self.critic = critic or QCritic(2 * featurizer.dim, featurizer.dim, self.cfg)
        self._cache: dict[str, torch.Tensor] = {}

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Encoder features of `texts`, each text encoded once (cached)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            for t, e in zip(new, self.featurizer.encode(new)):
                self._cache[t] = e
        if not texts:
            return torch.zeros(0, self.featurizer.dim)
        return torch.stack([self._cache[t] for t in texts])

    def _sa(self, states: Sequence[str], actions: Sequence[str]) -> torch.Tensor:
        return torch.cat([self.embed(states), self.embed(actions)], dim=-1)

    def _cands(self, states: Sequence[str], cands: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        k = max(1, max((len(c) for c in cands), default=1))
        sa = torch.zeros(len(states), k, 2 * self.featurizer.dim)
        mask = torch.zeros(len(states), k, dtype=torch.bool)
        for i, (s, cs) in enumerate(zip(states, cands)):
            if cs:
                sa[i, :len(cs)] = self._sa([s] * len(cs), cs)
                mask[i, :len(cs)] = True
        return sa, mask

    def batch(self, transitions: Sequence[TextTransition]) -> TransitionBatch:
        """Feature tensors for a list of text transitions."""
        st = [t.state for t in transitions]
        ns = [t.next_state for t in transitions]
        cand_sa, cand_mask = self._cands(st, [t.candidates or [t.action] for t in transitions])
        next_sa, next_mask = self._cands(ns, [t.next_candidates for t in transitions])
        return TransitionBatch(sa=self._sa(st, [t.action for t in transitions]), s=self.embed(st),
                               reward=torch.tensor([t.reward for t in transitions], dtype=torch.float32),
                               done=torch.tensor([float(t.done) for t in transitions]), next_s=self.embed(ns),
                               next_cand_sa=next_sa, next_cand_mask=next_mask, cand_sa=cand_sa, cand_mask=cand_mask)

    def fit(self, transitions: Sequence[TextTransition], epochs: int | None = None) -> list[dict[str, float]]:
        """Offline training on text transitions."""
        return self.critic.fit(self.batch(transitions), epochs)

    def update(self, transitions: Sequence[TextTransition]) -> dict[str, float]:
        """One online gradient step on fresh transitions (then the target update)."""
        return self.critic.update(self.batch(transitions))

    def score(self, messages: Sequence[Message], actions: Sequence[Message]) -> list[float]:
        """Q(s, a) of each candidate action at the conversation `messages` (twin reduction per config)."""
        s = state_text(messages, self.cfg.state_chars)
        return self.critic.q_values(self._sa([s] * len(actions), [action_text(a) for a in actions])).tolist()

    def advantages(self, messages: Sequence[Message], actions: Sequence[Message]) -> list[float]:
        """A(s, a) = Q(s, a) − V(s) for each candidate (Digi-Q's extraction signal)."""
        v = float(self.critic.v_values(self.embed([state_text(messages, self.cfg.state_chars)]))[0])
        return [q - v for q in self.score(messages, actions)]

    def value(self, messages: Sequence[Message]) -> float:
        """V(s): a value function for MCTS leaves."""
        return float(self.critic.v_values(self.embed([state_text(messages, self.cfg.state_chars)]))[0])

    def save(self, out_dir: str | Path) -> Path:
        """Write ``critic.pt`` and ``critic.json`` (config and featurizer spec) to `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"online": self.critic.online.state_dict(), "target": self.critic.target.state_dict()},
                   out / "critic.pt")
        cfg = asdict(self.cfg)
        cfg["hidden"] = list(cfg["hidden"])
        (out / "critic.json").write_text(json.dumps({"config": cfg, "featurizer": self.featurizer.spec(),
                                                     "sa_dim": self.critic.sa_dim, "s_dim": self.critic.s_dim},
                                                    indent=2))
        return out


def load_critic(path: str | Path) -> TextCritic:
    """Read a critic saved by ``TextCritic.save`` / ``fit_critic_from_records``."""
    path = Path(path)
    meta = json.loads((path / "critic.json").read_text())
    cfg = QValueConfig(**{**meta["config"], "hidden": tuple(meta["config"]["hidden"])})
    critic = QCritic(meta["sa_dim"], meta["s_dim"], cfg)
    state = torch.load(path / "critic.pt", weights_only=True)
    critic.online.load_state_dict(state["online"])
    critic.target.load_state_dict(state["target"])
    return TextCritic(make_featurizer(meta["featurizer"]), cfg, critic)


def fit_critic_from_records(paths: Sequence[str | Path], out_dir: str | Path, cfg: QValueConfig | None = None,
                            *, split: str | None = "train") -> Path:
    """Train a critic offline on the episodes in JSONL `paths` (only `split`, if given) and save it to `out_dir`."""
    cfg = cfg or QValueConfig()
    records = [r for p in paths for r in iter_episodes(p) if split is None or r.split == split]
    if not records:
        raise ValueError(f"no episode records of split {split!r} in {list(map(str, paths))}")
    critic = TextCritic(make_featurizer(cfg.featurizer), cfg)
    history = critic.fit(transitions_from_records(records, cfg.state_chars))
    out = critic.save(out_dir)
    (out / "history.json").write_text(json.dumps(history))
    write_model_provenance(out, entries_from_records(records, trainer="critic"))
    return out
