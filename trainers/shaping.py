"""Training-side reward shaping: dense per-turn signals from what episode records already carry.

The env's reward stays the benchmark's reward (success on held-out tasks never changes). For training, a
weak policy that never succeeds gives every group zero variance and so no gradient; shaping adds
weighted terms the trainer chooses, e.g. ``invalid_action=-0.1,tool_error=-0.05,syntax_ok=0.1``:

    r'_t = r_t + w_invalid · [turn t's action was malformed] + w_tool_error · [turn t's tool call failed]
           + [t = T] · Σ_k w_k · component_k          (components: the env's ``reward_components``)

Malformed actions and tool errors are turn-level facts, so turn-level estimators (GiGPO, turn GAE) can put
the penalty on the turn that earned it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agentgym.records import EpisodeRecord

TURN_COUNTERS = {"invalid_action": "invalid_actions", "tool_error": "tool_errors"}


def parse_shaping(spec: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"invalid_action=-0.1,syntax_ok=0.1"`` (or a mapping) -> {name: weight}; empty for None/""."""
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        return {str(k): float(v) for k, v in spec.items()}
    weights: dict[str, float] = {}
    for part in spec.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not name:
            raise ValueError(f"reward shaping term {part!r}: expected NAME=WEIGHT")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"reward shaping term {part!r}: weight {value!r} is not a number") from None
    return weights


def _turn_increments(record: EpisodeRecord, counter: str) -> list[int]:
    """How much the env's cumulative `counter` (in turn info) grew on each turn."""
    out, previous = [], 0
    for turn in record.turns:
        value = int(turn.info.get(counter, previous) or 0)
        out.append(max(0, value - previous))
        previous = value
    return out


def shaped_turn_rewards(records: Sequence[EpisodeRecord], weights: Mapping[str, float]) -> list[list[float]]:
    """Per-turn training rewards of each episode: its turn rewards plus the weighted shaping terms."""
    result: list[list[float]] = []
    for record in records:
        rewards = [float(t.reward) for t in record.turns]
        for name, weight in weights.items():
            if not rewards or weight == 0.0:
                continue
            if name in TURN_COUNTERS:
                for t, count in enumerate(_turn_increments(record, TURN_COUNTERS[name])):
                    rewards[t] += weight * count
            else:  # an outcome component: credited on the last turn, 0 when the env did not report it
                rewards[-1] += weight * float(record.reward_components.get(name, 0.0))
        result.append(rewards)
    return result
