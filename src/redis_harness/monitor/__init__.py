"""Watching a running deployment: live figures per data node, the profile's alert conditions, Prometheus rules."""
