"""Inference-time search: spend more compute at test time (best-of-N sampling, MCTS over env snapshots) to act better."""
