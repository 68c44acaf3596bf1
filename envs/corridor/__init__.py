"""The corridor environment (``agentgym/corridor-v0``): a decisive-turn benchmark for turn-level credit assignment."""
