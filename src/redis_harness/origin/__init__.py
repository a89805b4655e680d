"""The origin store the cache stands in front of (independent of the harness, like client/)."""
