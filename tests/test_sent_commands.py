"""`--rate` paces commands as Redis counts them: SentCommands against the server's own commandstats."""

from __future__ import annotations

import pytest
import redis

from redis_harness.load.sent import SentCommands

from .conftest import Deployment
from .test_deployment import as_user

pytestmark = pytest.mark.integration

# The server's counts these tests leave aside: the INFO that reads them, and the healthcheck's AUTH and
# PING (every few seconds, from another connection).
NOT_OURS = {"cmdstat_info", "cmdstat_auth", "cmdstat_ping", "cmdstat_hello"}


def server_commands(admin: redis.Redis) -> int:
    stats = admin.info("commandstats")
    return sum(int(row["calls"]) for name, row in stats.items() if name not in NOT_OURS)


def single_connection(deployment: Deployment) -> redis.Redis:
    """As the load users make theirs: one connection, made by the pool but owned by the client."""
    client = as_user(deployment, "processing")
    client.connection = client.connection_pool.make_connection()
    return client


@pytest.mark.parametrize("make", [single_connection, lambda d: as_user(d, "processing")], ids=["single", "pooled"])
def test_every_command_redis_counts_is_counted(ci_deployment: Deployment, make) -> None:  # type: ignore[no-untyped-def]
    """A command, a pipeline of three, a transaction of two (with its MULTI and EXEC): as many as the
    server counted. Counting a pipeline as one call (as --rate once did) would give 3, not 10."""
    admin = as_user(ci_deployment, "admin")
    client = make(ci_deployment)
    sent = SentCommands(client)
    client.get("processing:v1:calc:sent-warm")  # connects; the handshake's HELLO is counted too
    assert sent.count >= 1
    before_client, before_server = sent.count, server_commands(admin)
    client.set("processing:v1:calc:sent-a", "1", ex=60)
    pipe = client.pipeline(transaction=False)
    pipe.get("processing:v1:calc:sent-a").expire("processing:v1:calc:sent-a", 60).get("processing:v1:calc:sent-b")
    pipe.execute()
    transaction = client.pipeline(transaction=True)
    transaction.incr("processing:v1:calc:sent-b").expire("processing:v1:calc:sent-b", 60)
    transaction.execute()
    client_counted = sent.count - before_client
    assert client_counted == 1 + 3 + (2 + 2)
    assert server_commands(admin) - before_server == client_counted
    client.close()
    admin.close()
