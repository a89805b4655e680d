"""Stage 4b: load runs with Locust (the Locust side is in loadtests/), server sampling, benchmarks."""
