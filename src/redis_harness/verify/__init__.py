"""Stage 4a: prove the running containers match the profile (the checks themselves are in infra_tests/)."""
