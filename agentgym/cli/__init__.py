"""The ``agentgym`` command line, the one part that wires envs, policies and trainers together.

One module per command group: ``main`` (the root app: envs, run, bench, main()), ``serving`` (models and
policy servers), ``train`` (training), ``search`` (inference-time search for bench), ``envs`` (new-env,
envs check), ``records`` (records export/import); ``options`` parses KEY=VALUE flags.
"""

from agentgym.cli.main import app, main

__all__ = ["app", "main"]
