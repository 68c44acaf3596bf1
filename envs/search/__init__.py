"""The search environment: multi-hop QA over a generated encyclopedia with in-process retrieval."""
