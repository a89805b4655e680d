"""smoke: ten seconds of the mixed service workload (scripts/run and CI); the price service
runs the shipped client library (ServiceCache with its breaker and codec), so the gates judge it."""

from __future__ import annotations

from loadtests.workloads import DataAcquisition, DataProcessing, LockContention, PriceComparison

__all__ = ["DataAcquisition", "DataProcessing", "LockContention", "PriceComparison"]
