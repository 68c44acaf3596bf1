"""Policy extraction from a critic: turn the Q values of one state's candidate actions into a training signal.

Small pure functions over the values a critic (``agentgym.trainers.qvalue``) gives N sampled candidates at one
state: which candidate to imitate (Digi-Q's Best-of-N rule), how much to weight each one (advantage-weighted
regression, Peng et al. 2019) and which pair to prefer (a Q-ranked DPO pair). Acting with a critic at inference
time, without training, is ``agentgym.planning.best_of_n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def best_of_n_imitation(advantages: Sequence[float], threshold: float) -> int | None:
    """Digi-Q's rule: A clamped to [0, 1]; imitate argmax A iff A(best) > threshold, else nothing (None)."""
    a = np.clip(np.asarray(advantages, dtype=float), 0.0, 1.0)
    best = int(np.argmax(a))
    return best if a[best] > threshold else None


def awr_weights(advantages: Sequence[float], beta: float, max_weight: float = 100.0) -> np.ndarray:
    """Advantage-weighted regression weights ``min(exp(A / beta), max_weight)``."""
    return np.minimum(np.exp(np.asarray(advantages, dtype=float) / beta), max_weight)


def preference_pair_from_q(q: Sequence[float], margin: float = 0.0) -> tuple[int, int] | None:
    """(chosen, rejected) = (highest-Q, lowest-Q) candidate when their gap exceeds `margin`, else None."""
    q = np.asarray(q, dtype=float)
    if len(q) < 2:
        return None
    hi, lo = int(np.argmax(q)), int(np.argmin(q))
    return (hi, lo) if q[hi] - q[lo] > margin else None
