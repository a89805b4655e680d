"""Faults injected into a running deployment, and failover orchestration built on them."""
