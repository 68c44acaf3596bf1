"""GUI task templates (AndroidWorld's TaskEval shape): random params, an initial state with distractors, a
state-based success check with a collateral-damage check, and an oracle plan that drives the real UI."""

from agentgym.envs.gui.tasks.base import Step, Template
from agentgym.envs.gui.tasks.registry import TEMPLATES

__all__ = ["TEMPLATES", "Step", "Template"]
