"""The cache client library a service ships: settings, resilient connection, breaker, cache, codec, keys.

Independent of the harness (import-linter enforces it): it knows nothing of
profiles, rendering or deployments, so a service can take it on its own.
"""
