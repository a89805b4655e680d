"""Host preflight: settings of the machine, not the deployment, so they warn and never fail.

Read inside the container, where they apply: the kernel's vm and THP settings
are global, somaxconn belongs to the container's network namespace.
"""

from __future__ import annotations

from typing import Any

from redis_harness.profile.model import Profile
from redis_harness.verify import parsers
from redis_harness.verify.check import Check


def test_host_overcommit_memory(host: Any, check: Check) -> None:
    """With 0, a background save or AOF rewrite can fail to fork under memory pressure."""
    found = host.file("/proc/sys/vm/overcommit_memory").content_string.strip()
    check.warn_unless(found == "1", "vm.overcommit_memory = 1", found)


def test_host_transparent_huge_pages(host: Any, check: Check) -> None:
    """`always` makes fork copy-on-write slow and latency spiky."""
    path = "/sys/kernel/mm/transparent_hugepage/enabled"
    found = parsers.thp_mode(host.file(path).content_string) if host.file(path).exists else "not available"
    check.warn_unless(found != "always", "THP madvise or never", found)


def test_host_somaxconn_covers_tcp_backlog(profile: Profile, host: Any, check: Check) -> None:
    """The kernel caps the listen backlog at somaxconn of the container's network namespace."""
    somaxconn = int(host.file("/proc/sys/net/core/somaxconn").content_string.strip())
    backlog = profile.server.tcp_backlog
    check.warn_unless(somaxconn >= backlog, f"net.core.somaxconn >= tcp-backlog {backlog}", somaxconn)
