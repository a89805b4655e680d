"""Checks that a running deployment matches its profile; run by `redis-harness verify PROFILE`."""
