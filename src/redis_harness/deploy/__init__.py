"""Stage 3: the rendered deployment as running containers (engine, image, compose, readiness, status)."""
