"""Runtime: limits, restart policy, healthcheck, image, and the container's history."""

from __future__ import annotations

from typing import Any

from redis_harness.faults import journal
from redis_harness.profile.model import Profile
from redis_harness.profile.units import format_size
from redis_harness.verify import parsers
from redis_harness.verify.check import Check


def test_memory_limit_matches_profile(
    profile: Profile, inspect: dict[str, Any], cgroup: dict[str, str], check: Check
) -> None:
    """Docker's limit, the cgroup the container really has, and no swap beyond it."""
    config = inspect["HostConfig"]
    memory, swap, real = config.get("Memory"), config.get("MemorySwap"), parsers.cgroup_limit(cgroup["memory"])
    want = profile.resources.memory_bytes
    check.that(
        memory == want and swap == want and real == want,
        f"{format_size(want)} ({want}), no swap",
        f"inspect {memory}, memory+swap {swap}, cgroup {cgroup['version']} {real}",
    )


def test_cpu_limit_matches_profile(
    profile: Profile, inspect: dict[str, Any], cgroup: dict[str, str], check: Check
) -> None:
    config = inspect["HostConfig"]
    nano = config.get("NanoCpus") or 0
    period = config.get("CpuPeriod") or 0
    docker_cpus = nano / 1e9 if nano else (config.get("CpuQuota", 0) / period if period else None)
    real = parsers.cgroup_cpus(cgroup["cpu"])
    want = profile.resources.cpus
    ok = docker_cpus is not None and real is not None and abs(docker_cpus - want) < 1e-6 and abs(real - want) < 1e-6
    check.that(ok, f"{want} cpus", f"inspect {docker_cpus}, cgroup {real}")


def test_pids_limit_matches_profile(
    profile: Profile, inspect: dict[str, Any], cgroup: dict[str, str], check: Check
) -> None:
    limit, real = inspect["HostConfig"].get("PidsLimit"), parsers.cgroup_limit(cgroup["pids"])
    want = profile.resources.pids
    check.that(limit == want and real == want, want, f"inspect {limit}, cgroup {real}")


def test_restart_policy_matches_profile(profile: Profile, inspect: dict[str, Any], check: Check) -> None:
    found = (inspect["HostConfig"].get("RestartPolicy") or {}).get("Name") or "no"
    check.equal(profile.restart, found)


def test_healthcheck_defined(inspect: dict[str, Any], check: Check) -> None:
    test = (inspect["Config"].get("Healthcheck") or {}).get("Test") or []
    defined = bool(test) and test[0] in ("CMD", "CMD-SHELL")
    check.that(defined, "a CMD or CMD-SHELL healthcheck", " ".join(test)[:80] if test else "none")


def test_healthcheck_healthy(inspect: dict[str, Any], check: Check) -> None:
    health = inspect["State"].get("Health") or {}
    check.equal("healthy", health.get("Status", "no healthcheck"))


def test_healthcheck_can_fail(inspect: dict[str, Any], host: Any, check: Check) -> None:
    """The container's own healthcheck, run with its secret read as empty: the server answers
    NOAUTH/WRONGPASS, and a healthcheck that still exits 0 would call a refusing server healthy."""
    test = (inspect["Config"].get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        check.that(False, "a healthcheck that fails without credentials", "no healthcheck")
        return
    result = host.run(parsers.healthcheck_without_credentials(test))
    check.that(result.rc != 0, "exit != 0 without credentials", f"exit {result.rc}")


def test_image_is_profile_image(profile: Profile, container: Any, docker: Any, check: Check) -> None:
    """The tag the profile pins, and the image that tag names now (not a stale one)."""
    ref = container.attrs["Config"]["Image"]
    current = docker.images.get(profile.image.ref).id if ref == profile.image.ref else None
    running = container.attrs["Image"]
    check.that(
        ref == profile.image.ref and running == current,
        f"{profile.image.ref} ({current[:19] if current else 'its current id'})",
        f"{ref} ({running[:19]})",
    )


def test_not_oom_killed(inspect: dict[str, Any], check: Check) -> None:
    check.equal(False, inspect["State"].get("OOMKilled", False))


def test_no_unexpected_restart(profile: Profile, inspect: dict[str, Any], check: Check) -> None:
    """A restart since `up` that no deliberate fault accounts for: a crash, an OOM kill, a failed
    start. The harness notes each kill it sends (`redis-harness fault kill`, the recovery and
    failover scenarios) in .state/<name>/faults.json for this very container; those restarts
    are expected. Anything else stays a failure until the container is recreated (down, up)."""
    restarts = inspect.get("RestartCount", 0)
    accounted = journal.expected_restarts(profile.name, inspect["Id"])
    check.that(
        restarts <= accounted,
        f"{accounted} (deliberate kills noted in .state/{profile.name}/{journal.JOURNAL_FILE})",
        f"{restarts}" + (f" ({restarts - accounted} unexplained)" if restarts > accounted else ""),
    )
