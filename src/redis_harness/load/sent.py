"""The commands a load-test client sent, counted as Redis counts them: what `--rate` paces."""

from __future__ import annotations

from typing import Any

from redis_harness.client.pool import pools_of


class SentCommands:
    """The commands a redis-py client sent, as Redis counts them (total_commands_processed, the
    server's ops/s): each of a pipeline's, a transaction's MULTI and EXEC, a connection's HELLO and
    AUTH. `--rate` paces these, so a run at `--rate 600` shows about 600 ops/s on the server (plus
    what a Lua script calls inside, e.g. a lock release's GET and DEL, and the sampler's INFO).

    redis-py sends a command with `send_command` and a pipeline with `pack_commands`; both are
    counted on every connection the client's pools hand out (and on a single-connection client's)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        single = getattr(client, "connection", None)
        if single is not None:
            self._count_on(single)
        for pool in pools_of(client):
            checkout = pool.get_connection

            def get_connection(*args: Any, _checkout: Any = checkout, **kwargs: Any) -> Any:
                connection = _checkout(*args, **kwargs)
                self._count_on(connection)
                return connection

            pool.get_connection = get_connection

    def _count_on(self, connection: Any) -> None:
        if getattr(connection, "_redis_harness_sent", None) is self:
            return
        connection._redis_harness_sent = self
        send_command, pack_commands = connection.send_command, connection.pack_commands

        def counted_send(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return send_command(*args, **kwargs)

        def counted_pack(commands: Any) -> Any:
            commands = list(commands)
            self.count += len(commands)
            return pack_commands(commands)

        connection.send_command = counted_send
        connection.pack_commands = counted_pack
