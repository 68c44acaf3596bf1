"""Policy backends. All speak the contract in ``agentgym.policy``; the CLI finds them by name (entry points)."""
