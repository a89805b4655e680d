"""Stage 1, the input: a YAML profile and the secrets from `.env`, validated into typed, immutable values."""
