"""redis-harness: a Redis deployment as code, proven in real containers."""

__version__ = "0.1.0"
