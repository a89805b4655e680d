"""smoke: ten seconds of the mixed service workload (scripts/run and CI)."""

from __future__ import annotations

from loadtests.workloads import DataAcquisition, DataProcessing, LockContention, PriceComparison

__all__ = ["DataAcquisition", "DataProcessing", "LockContention", "PriceComparison"]
