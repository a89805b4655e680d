"""redis-benchmark beside the harness's own load generator on one deployment: how much of Redis the harness measures."""
