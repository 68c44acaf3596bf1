"""``python -m agentgym.cli``: the same entry point as the ``agentgym`` console script."""

from agentgym.cli.main import main

main()
