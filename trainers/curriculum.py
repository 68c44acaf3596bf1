"""A curriculum over task families: sample more of what the policy sometimes, but not always, solves.

Online difficulty filtering keeps intermediate-accuracy prompts; here each family is drawn with probability
``∝ p(1 − p) + ε`` where p is a running (exponentially forgetting) Beta estimate of its success rate. Sampling
is deterministic given the seed, and ``state_dict``/``load_state_dict`` (counts and RNG state) resume exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class CurriculumSampler:
    """Draw task families (and tasks) favouring intermediate success."""

    def __init__(self, families: Iterable[str], *, epsilon: float = 0.02, decay: float = 0.95,
                 prior: tuple[float, float] = (1.0, 1.0), seed: int = 0):
        """``decay`` multiplies old counts at each update (forgetting); ``prior`` = Beta(a, b) pseudo-counts."""
        self.families = sorted(set(families))
        if not self.families:
            raise ValueError("a curriculum needs at least one family")
        if not 0.0 < decay <= 1.0:
            raise ValueError("decay must be in (0, 1]")
        self.epsilon, self.decay, self.prior = float(epsilon), float(decay), (float(prior[0]), float(prior[1]))
        self.successes = {f: 0.0 for f in self.families}
        self.trials = {f: 0.0 for f in self.families}
        self.rng = np.random.default_rng(seed)

    def success_rate(self, family: str) -> float:
        """Posterior mean ``(s + a) / (n + a + b)``."""
        a, b = self.prior
        return (self.successes[family] + a) / (self.trials[family] + a + b)

    def weights(self) -> np.ndarray:
        """Sampling probabilities, ``p(1 − p) + ε`` normalised, in ``self.families`` order."""
        w = np.array([(p := self.success_rate(f)) * (1.0 - p) + self.epsilon for f in self.families])
        return w / w.sum()

    def sample(self, n: int) -> list[str]:
        """``n`` families drawn with replacement."""
        picks = self.rng.choice(len(self.families), size=n, p=self.weights())
        return [self.families[int(i)] for i in picks]

    def sample_tasks(self, tasks: Sequence[Any], n: int) -> list[Any]:
        """``n`` tasks (objects with ``.family``): a family by ``weights()``, then a task of it uniformly."""
        by_family: dict[str, list[Any]] = {}
        for t in tasks:
            by_family.setdefault(t.family, []).append(t)
        unknown = set(by_family) - set(self.families)
        if unknown:
            raise ValueError(f"tasks of families the curriculum does not know: {sorted(unknown)}")
        out = []
        for family in self.sample(n):
            pool = by_family.get(family)
            if pool:
                out.append(pool[int(self.rng.integers(len(pool)))])
            else:
                out.append(tasks[int(self.rng.integers(len(tasks)))])
        return out

    def update(self, results: Iterable[tuple[str, float]]) -> None:
        """Fold in a batch of (family, success in [0, 1]); old counts decay once per batch."""
        results = list(results)
        for f in self.families:
            self.successes[f] *= self.decay
            self.trials[f] *= self.decay
        for family, success in results:
            if family not in self.trials:
                raise KeyError(f"unknown family {family!r}")
            self.successes[family] += float(success)
            self.trials[family] += 1.0

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (JSON-able)."""
        return {"families": list(self.families), "epsilon": self.epsilon, "decay": self.decay,
                "prior": list(self.prior), "successes": dict(self.successes), "trials": dict(self.trials),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["families"]) != self.families:
            raise ValueError("the saved curriculum has other families")
        self.epsilon, self.decay = float(state["epsilon"]), float(state["decay"])
        self.prior = (float(state["prior"][0]), float(state["prior"][1]))
        self.successes = {k: float(v) for k, v in state["successes"].items()}
        self.trials = {k: float(v) for k, v in state["trials"].items()}
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]


__all__ = ["CurriculumSampler"]
