"""All GUI task templates, by family (app/template)."""

from __future__ import annotations

from agentgym.envs.gui.tasks import comms, contacts, multiapp, organizer, system
from agentgym.envs.gui.tasks.base import Template

TEMPLATES: dict[str, Template] = {t.family: t for module in (contacts, comms, organizer, system, multiapp)
                                  for t in module.TEMPLATES}
