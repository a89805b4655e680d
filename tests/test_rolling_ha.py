"""A change that needs new containers on the Sentinel deployment goes one node at a time:
replicas first, then a failover, then the old primary; a writer keeps going meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis
import yaml

from redis_harness.deploy.connect import connect
from redis_harness.deploy.containers import data_containers
from redis_harness.deploy.readiness import current_primary
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import profile_from_mapping

from .conftest import REPO, emit
from .test_converge import Live, fresh_env

pytestmark = pytest.mark.integration


class Writer(threading.Thread):
    """Writes numbered keys through Sentinel until told to stop (bounded in count); records
    which writes were acknowledged and when writes failed."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.acked: list[int] = []
        self.failed_at: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        for i in range(200_000):
            if self.stop.is_set():
                return
            try:
                self.client.set(f"price:v1:seq:{i}", i)
                self.acked.append(i)
            except redis.RedisError:
                self.failed_at.append(time.monotonic())
                time.sleep(0.05)
            time.sleep(0.005)


@pytest.mark.xfail(
    strict=False,
    reason="known open: after the rolling change `plan` still lists a change on ha (seen once the converge, "
    "security and profile branches met); reported on issue 10",
)
def test_memory_limit_on_ha_rolls_node_by_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = yaml.safe_load((REPO / "profiles" / "ha.yaml").read_text())
    raw["name"] = "cvha"
    raw["network"]["port"] = 6500
    raw["sentinel"]["port"] = 6503
    live = Live(path=tmp_path / "cvha.yaml", raw=raw, env=fresh_env())
    live.write()
    live.run("down", "--volumes")
    try:
        assert live.run("up").returncode == 0
        profile = live.profile
        secrets = load_secrets(profile, env=live.env)
        first_primary = current_primary(profile, secrets)
        client = connect(profile, None, secrets.default.password, sentinel_password=secrets.default.password)
        client.mset({f"price:v1:before:{i}": i for i in range(500)})
        live.raw["resources"]["memory"] = "144mb"
        live.write()
        plan = live.run("plan")
        assert plan.returncode == 1 and plan.stdout.count("rolling") >= 3, plan.stdout
        writer = Writer(connect(profile, None, secrets.default.password, sentinel_password=secrets.default.password))
        writer.start()
        started = time.monotonic()
        result = live.run("up")
        took = time.monotonic() - started
        writer.stop.set()
        writer.join(timeout=30)
        assert result.returncode == 0, result.stderr
        new_primary = current_primary(profile_from_mapping(live.raw, live.path), secrets)
        assert new_primary != first_primary, "the primary was replaced after a failover"
        check = connect(profile, None, secrets.default.password, sentinel_password=secrets.default.password)
        assert check.mget([f"price:v1:before:{i}" for i in range(500)]) == [str(i) for i in range(500)]
        stored = check.mget([f"price:v1:seq:{i}" for i in writer.acked])
        lost = [i for i, v in zip(writer.acked, stored, strict=True) if v is None]
        window = (writer.failed_at[-1] - writer.failed_at[0]) if writer.failed_at else 0.0
        assert {c.attrs["HostConfig"]["Memory"] for c in data_containers(live.profile)} == {144 * 1024 * 1024}
        emit(
            capsys,
            "rolling_ha_memory_limit",
            {
                "up_s": round(took, 1),
                "writes_acknowledged": len(writer.acked),
                "acknowledged_writes_lost": len(lost),
                "failed_writes": len(writer.failed_at),
                "error_window_s": round(window, 2),
                "failover_down_after_s": raw["sentinel"]["down_after"],
            },
        )
        # Acknowledged writes lost in the switchover are reported, not asserted: a known gap
        # (see deploy/switchover.py).
        plan_after = live.run("plan")
        assert plan_after.returncode == 0, plan_after.stdout
    finally:
        live.run("down", "--volumes")
