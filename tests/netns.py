"""Other hosts for tests: network namespaces on veth links to this host (redis_harness.verify.netns).

Addresses are RFC 2544's test range only: the published address 198.18.0.1 is this host's (on lo),
an "allowed" host lives in 198.18.1.0/24 and a "refused" one in 198.18.2.0/24; each namespace
routes to the published address and nothing else. Everything is removed at the end of the session,
also after a failure, and a killed earlier run's leftovers (prefix `rhnt`) before it starts. The
fixture is made on first use only (conftest imports it, so every module shares the one set).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from redis_harness.verify.netns import Hosts, Namespace

PREFIX = "rhnt"
PUBLISHED = "198.18.0.1"
ALLOWED_NET, REFUSED_NET = "198.18.1.0/24", "198.18.2.0/24"


@dataclass(frozen=True)
class OtherHosts:
    published: str  # this host's address the deployment publishes on
    allowed: Namespace  # a host in ALLOWED_NET
    refused: Namespace  # a host in REFUSED_NET


@pytest.fixture(scope="session")
def other_hosts() -> Iterator[OtherHosts]:
    with Hosts(PREFIX) as hosts:
        hosts.add_address(PUBLISHED)
        yield OtherHosts(
            PUBLISHED,
            hosts.namespace("allowed", ALLOWED_NET, [PUBLISHED]),
            hosts.namespace("refused", REFUSED_NET, [PUBLISHED]),
        )
