"""Changes to a running Sentinel deployment: one that needs new containers goes one node at
a time (replicas first, then a failover, then the old primary) while a writer keeps going;
Sentinel's own settings go in live by SENTINEL SET."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import yaml

from redis_harness import paths
from redis_harness.deploy import rotation
from redis_harness.deploy.compose import up
from redis_harness.deploy.connect import connect, connect_node
from redis_harness.deploy.containers import data_containers, project_containers
from redis_harness.deploy.readiness import current_primary, wait_until_settled
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import Profile, profile_from_mapping

from .conftest import REPO, emit
from .test_converge import Live, cli, fresh_env

pytestmark = pytest.mark.integration


class Writer(threading.Thread):
    """Writes numbered keys through Sentinel until told to stop (bounded in count); records
    which writes were acknowledged and when writes failed."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.acked: list[int] = []
        self.failed_at: list[float] = []
        self.acked_at: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        for i in range(200_000):
            if self.stop.is_set():
                return
            try:
                self.client.set(f"price:v1:seq:{i}", i)
                self.acked.append(i)
                self.acked_at.append(time.monotonic())
            except redis.RedisError as exc:
                self.failed_at.append(time.monotonic())
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:80]}")
                time.sleep(0.05)
            time.sleep(0.005)


def longest_without_ack(writer: Writer) -> float:
    """The longest time the writer went without an acknowledged write."""
    acks = writer.acked_at
    return max((b - a for a, b in zip(acks, acks[1:], strict=False)), default=0.0)


def longest_gap_at(writer: Writer) -> float:
    """When the longest time without an ack began, in seconds from the first ack."""
    acks = writer.acked_at
    if len(acks) < 2:
        return 0.0
    start = max(zip(acks, acks[1:], strict=False), key=lambda pair: pair[1] - pair[0])[0]
    return start - acks[0]


def bursts(writer: Writer) -> list[dict[str, object]]:
    """Failed writes grouped where they are under 0.5 s apart: start, length, count, errors."""
    groups: list[list[tuple[float, str]]] = []
    for failure in zip(writer.failed_at, writer.errors, strict=True):
        if groups and failure[0] - groups[-1][-1][0] < 0.5:
            groups[-1].append(failure)
        else:
            groups.append([failure])
    t0 = writer.acked_at[0] if writer.acked_at else 0.0
    return [
        {
            "at_s": round(group[0][0] - t0, 2),
            "length_s": round(group[-1][0] - group[0][0], 2),
            "count": len(group),
            "errors": sorted({error for _, error in group}),
        }
        for group in groups
    ]


def sentinel_failover_log(profile: Profile, since: float) -> list[str]:
    """The failover steps in the log of the Sentinel `up` asks to fail over (the last one), from
    `since` (monotonic): where a slow switchover spent its time."""
    services = {c.labels.get("com.docker.compose.service"): c for c in project_containers(profile)}
    container = services.get(profile.sentinel_nodes[-1].service)
    if container is None:
        return []
    lines = container.logs(since=int(time.time() - (time.monotonic() - since)) - 1).decode(errors="replace")
    steps = ("failover", "promoted", "selected", "slave-reconf", "switch-master", "convert-to-slave")
    return [line[line.find(" ") + 1 :][:110] for line in lines.splitlines() if any(s in line for s in steps)]


@contextmanager
def ha_deployment(tmp_path: Path, name: str, port: int) -> Iterator[Live]:
    """profiles/ha.yaml as `name` on `port` (Sentinels from port + 3), up; down with its volumes after."""
    raw = yaml.safe_load((REPO / "profiles" / "ha.yaml").read_text())
    raw["name"] = name
    raw["network"]["port"] = port
    raw["sentinel"]["port"] = port + 3
    live = Live(path=tmp_path / f"{name}.yaml", raw=raw, env=fresh_env())
    live.write()
    live.run("down", "--volumes", "--take-over")
    try:
        assert live.run("up").returncode == 0
        yield live
    finally:
        live.run("down", "--volumes", "--take-over")


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One Sentinel deployment for the tests below, in order: each leaves it healthy and in sync."""
    with ha_deployment(tmp_path_factory.mktemp("cvha"), "cvha", 6500) as live:
        yield live


def test_memory_limit_on_ha_rolls_node_by_node(ha: Live, capsys: pytest.CaptureFixture[str]) -> None:
    live = ha
    raw = live.raw
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
    unserved = longest_without_ack(writer)
    assert {c.attrs["HostConfig"]["Memory"] for c in data_containers(live.profile)} == {144 * 1024 * 1024}
    plan_after = live.run("plan")
    assert plan_after.returncode == 0, plan_after.stdout
    # The reference, in the same run: the same writer across an unplanned failover (the
    # primary killed and kept down until Sentinel promotes a replica, then given back).
    reference = Writer(connect(profile, None, secrets.default.password, sentinel_password=secrets.default.password))
    reference.start()
    killed = cli("fault", str(live.path), "failover", "--how", "kill", env={**os.environ, **live.env})
    reference.stop.set()
    reference.join(timeout=30)
    assert killed.returncode == 0, killed.stderr
    unplanned = longest_without_ack(reference)
    wait_until_settled(profile, secrets, timeout_s=60)
    emit(
        capsys,
        "rolling_ha_memory_limit",
        {
            "up_s": round(took, 1),
            "writes_acknowledged": len(writer.acked),
            "acknowledged_writes_lost": len(lost),
            "failed_writes": len(writer.failed_at),
            "error_window_s": round(window, 2),
            "longest_without_ack_s": round(unserved, 2),
            "longest_without_ack_at_s": round(longest_gap_at(writer), 2),
            "up_started_at_s": round(started - writer.acked_at[0], 2) if writer.acked_at else None,
            "up_progress": [line for line in result.stderr.splitlines() if "primary" in line or "SENTINEL" in line],
            "leader_sentinel_log": sentinel_failover_log(profile, since=started),
            "bursts": bursts(writer),
            "unplanned_failover_longest_without_ack_s": round(unplanned, 2),
            "failover_down_after_s": raw["sentinel"]["down_after"],
        },
    )
    # Every acknowledged write is kept, and the writer waits less than it does when the
    # primary simply dies: clients keep being served through the change.
    assert lost == [], f"{len(lost)} acknowledged writes lost"
    assert unserved < unplanned, (
        f"{unserved:.1f} s without an ack while rolling, {unplanned:.1f} s in a failover; "
        + json.dumps({"bursts": bursts(writer), "leader": sentinel_failover_log(profile, since=started)})
    )


def test_sentinel_settings_go_in_live_and_drift_is_seen(ha: Live) -> None:
    """down_after and quorum reach every Sentinel by SENTINEL SET (same containers); a value
    changed by hand on one Sentinel shows in `plan` and the next `up` puts it back."""
    live = ha
    profile = live.profile
    secrets = load_secrets(profile, env=live.env)
    sentinels = {n.service: n for n in profile.sentinel_nodes}

    def sentinel_figures() -> dict[str, tuple[int, int]]:
        out = {}
        for service, node in sentinels.items():
            client = connect_node(profile, node, "admin", secrets.admin.password)
            master = client.sentinel_master(profile.topology.sentinel.master_name)  # type: ignore[union-attr]
            client.close()
            out[service] = (master["down-after-milliseconds"], master["quorum"])
        return out

    def started() -> dict[str, str]:
        return {c.name: c.attrs["State"]["StartedAt"] for c in project_containers(profile)}

    before = started()
    live.raw["sentinel"]["down_after"] = "4s"
    live.raw["sentinel"]["quorum"] = 3
    live.write()
    plan = live.run("plan", "--json")
    assert plan.returncode == 1, plan.stdout
    rows = {(c["node"], c["setting"], c["how"]) for c in json.loads(plan.stdout)["changes"]}
    assert rows == {(s, f"sentinel {o}", "live") for s in sentinels for o in ("down-after-milliseconds", "quorum")}
    assert live.run("up").returncode == 0
    assert sentinel_figures() == {s: (4000, 3) for s in sentinels}
    assert started() == before, "a Sentinel or data node was restarted for a live setting"
    assert live.run("plan").returncode == 0
    # Drift: one Sentinel changed by hand is seen by plan and put back by up.
    client = connect_node(profile, sentinels["sentinel-1"], "admin", secrets.admin.password)
    master_name = profile.topology.sentinel.master_name  # type: ignore[union-attr]
    client.execute_command("SENTINEL", "SET", master_name, "down-after-milliseconds", "5000")
    client.close()
    drift = live.run("plan")
    assert drift.returncode == 1 and "sentinel-1" in drift.stdout and "5000" in drift.stdout, drift.stdout
    assert live.run("up").returncode == 0
    assert sentinel_figures()["sentinel-1"] == (4000, 3)


def test_a_sentinel_made_again_after_a_failover_watches_the_current_primary_from_its_start(ha: Live) -> None:
    """The rendered sentinel.conf names the profile's first node; a Sentinel whose container `up`
    makes again after a failover asks its peers and starts on the node that is the primary now."""
    live = ha
    profile = live.profile
    secrets = load_secrets(profile, env=live.env)
    first = profile.data_nodes[0].service
    rendered = (paths.deployment_dir(profile.name) / "sentinel.conf").read_text()
    assert re.search(rf"^sentinel monitor \S+ {first} ", rendered, re.MULTILINE), "the file names the first node"
    if current_primary(profile, secrets) == first:
        moved = cli("fault", str(live.path), "failover", "--how", "kill", env={**os.environ, **live.env})
        assert moved.returncode == 0, moved.stderr
        wait_until_settled(profile, secrets, timeout_s=60)
    primary = current_primary(profile, secrets)
    assert primary is not None and primary != first
    service = profile.sentinel_nodes[0].service
    old = {c.labels["com.docker.compose.service"]: c for c in project_containers(profile)}[service]
    old.remove(force=True)
    assert live.run("up").returncode == 0
    new = {c.labels["com.docker.compose.service"]: c for c in project_containers(profile)}[service]
    assert new.id != old.id
    watched = re.findall(r"\+monitor master \S+ (\S+) ", new.logs().decode(errors="replace"))
    assert watched[:1] == [primary], f"{service} started watching {watched[:1]}, the primary is {primary}"


def test_admin_rotation_on_ha_is_refused_without_the_previous_password(ha: Live) -> None:
    """A new admin password changes the replication and Sentinel passwords derived from it: without
    the value it runs with, `up` refuses (one line naming the variable, nothing changed)."""
    live = ha
    folder = paths.deployment_dir(live.profile.name)
    files_before = {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}
    started_before = {c.name: c.attrs["State"]["StartedAt"] for c in project_containers(live.profile)}
    running_with = live.env["REDIS_ADMIN_PASSWORD"]
    live.env["REDIS_ADMIN_PASSWORD"] = fresh_env()["REDIS_ADMIN_PASSWORD"]
    try:
        plan = live.run("plan", "--json")
        assert plan.returncode == 1 and "REDIS_ADMIN_PASSWORD_PREVIOUS" in json.loads(plan.stdout)["refusal"]
        refused = live.run("up")
        assert refused.returncode == 1, refused.stderr
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith("redis-harness: up: the admin password differs") and "_PREVIOUS" in last, last
        assert {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()} == files_before
        assert {c.name: c.attrs["State"]["StartedAt"] for c in project_containers(live.profile)} == started_before
    finally:
        live.env["REDIS_ADMIN_PASSWORD"] = running_with


def rotate_to_a_new_admin_password(live: Live) -> str:
    """Sets the env of `live` for a rotation: a new admin password, the one it runs with as previous."""
    live.env["REDIS_ADMIN_PASSWORD_PREVIOUS"] = live.env["REDIS_ADMIN_PASSWORD"]
    live.env["REDIS_ADMIN_PASSWORD"] = fresh_env()["REDIS_ADMIN_PASSWORD"]
    return live.env["REDIS_ADMIN_PASSWORD_PREVIOUS"]


def admin_refused(profile: Profile, password: str, user: str | None = "admin") -> list[str]:
    """The data nodes and Sentinels that refuse `password` for `user` (admin; None: the default user)."""
    refused = []
    for node in [*profile.data_nodes, *profile.sentinel_nodes]:
        client = connect_node(profile, node, user, password, retries=0)
        try:
            client.ping()
        except redis.AuthenticationError:
            refused.append(node.service)
        finally:
            client.close()
    return refused


def test_admin_rotation_on_ha_runs_live_under_a_writer(ha: Live, capsys: pytest.CaptureFixture[str]) -> None:
    """With REDIS_ADMIN_PASSWORD_PREVIOUS, `up` rotates admin and every password derived from it on
    every node and Sentinel, live: no container restarted, no acknowledged write lost, no longer
    without an ack than a live setting change (measured in the same run), the old admin password
    refused everywhere at the end, every link made again with the new ones."""
    live = ha
    profile = live.profile
    secrets = load_secrets(profile, env=live.env)
    started_before = {c.name: c.attrs["State"]["StartedAt"] for c in project_containers(profile)}

    def under_writer(change: str) -> tuple[Writer, subprocess.CompletedProcess[str]]:
        writer = Writer(connect(profile, None, secrets.default.password, sentinel_password=secrets.default.password))
        writer.start()
        time.sleep(1)
        result = live.run("up")
        time.sleep(1)
        writer.stop.set()
        writer.join(timeout=30)
        assert result.returncode == 0, f"{change}: {result.stderr}"
        return writer, result

    # The reference: a live setting (SENTINEL SET on every Sentinel) under the same writer.
    live.raw["sentinel"]["down_after"] = "5s"
    live.write()
    reference, _ = under_writer("live setting")
    old = rotate_to_a_new_admin_password(live)
    plan = live.run("plan", "--json")
    assert plan.returncode == 1, plan.stdout
    planned = json.loads(plan.stdout)
    assert not planned["refusal"] and {c["how"] for c in planned["changes"]} == {"live"}, plan.stdout
    writer, result = under_writer("rotation")
    check = connect(profile, None, secrets.default.password, sentinel_password=secrets.default.password)
    stored = check.mget([f"price:v1:seq:{i}" for i in writer.acked])
    lost = [i for i, v in zip(writer.acked, stored, strict=True) if v is None]
    emit(
        capsys,
        "admin_rotation_ha",
        {
            "writes_acknowledged": len(writer.acked),
            "acknowledged_writes_lost": len(lost),
            "failed_writes": len(writer.failed_at),
            "longest_without_ack_s": round(longest_without_ack(writer), 3),
            "live_setting_longest_without_ack_s": round(longest_without_ack(reference), 3),
            "live_setting_failed_writes": len(reference.failed_at),
            "proof": [line for line in result.stderr.splitlines() if "logged in again" in line],
        },
    )
    assert lost == [], f"{len(lost)} acknowledged writes lost"
    assert len(writer.failed_at) <= len(reference.failed_at), bursts(writer)
    assert longest_without_ack(writer) <= max(2 * longest_without_ack(reference), 0.5), bursts(writer)
    assert {c.name: c.attrs["State"]["StartedAt"] for c in project_containers(profile)} == started_before
    assert admin_refused(live.profile, old) == [n.service for n in [*profile.data_nodes, *profile.sentinel_nodes]]
    assert admin_refused(live.profile, live.env["REDIS_ADMIN_PASSWORD"]) == []
    assert live.run("plan").returncode == 0
    assert live.run("verify").returncode == 0
    del live.env["REDIS_ADMIN_PASSWORD_PREVIOUS"]
    assert live.run("plan").returncode == 0, "the previous value is not needed once the rotation is done"


def test_a_default_password_rotation_keeps_the_old_one_until_previous_is_removed(ha: Live) -> None:
    """REDIS_PASSWORD (the default user, on every data node and Sentinel) with REDIS_PASSWORD_PREVIOUS:
    both log in everywhere, set live (no container restarted, Sentinels included); once the previous
    value is removed, the next `up` refuses it everywhere."""
    live = ha
    profile = live.profile
    started_before = {c.name: c.attrs["State"]["StartedAt"] for c in project_containers(profile)}
    old, new = live.env["REDIS_PASSWORD"], fresh_env()["REDIS_PASSWORD"]
    live.env.update(REDIS_PASSWORD=new, REDIS_PASSWORD_PREVIOUS=old)
    plan = live.run("plan", "--json")
    assert plan.returncode == 1 and {c["how"] for c in json.loads(plan.stdout)["changes"]} == {"live"}, plan.stdout
    both = live.run("up")
    assert both.returncode == 0, both.stderr
    assert "note: REDIS_PASSWORD_PREVIOUS keeps default's old password accepted" in both.stderr
    assert admin_refused(profile, old, None) == [] and admin_refused(profile, new, None) == []
    del live.env["REDIS_PASSWORD_PREVIOUS"]
    assert live.run("up").returncode == 0
    everyone = [n.service for n in [*profile.data_nodes, *profile.sentinel_nodes]]
    assert admin_refused(profile, old, None) == everyone and admin_refused(profile, new, None) == []
    assert {c.name: c.attrs["State"]["StartedAt"] for c in project_containers(profile)} == started_before
    assert live.run("plan").returncode == 0


@pytest.mark.parametrize("stop_at", ["sentinel-1: accepting the new passwords", "sentinel-0: SENTINEL SET auth-pass"])
def test_a_rotation_killed_mid_way_is_finished_by_the_next_up(ha: Live, stop_at: str) -> None:
    """`up` killed (SIGKILL) in the middle of a rotation: half the members on the new passwords, or
    the links half switched. `plan` shows the rotation still pending and the next `up` finishes it."""
    live = ha
    profile = live.profile
    old = rotate_to_a_new_admin_password(live)
    command = [str(REPO / ".venv" / "bin" / "redis-harness"), "up", str(live.path)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, **live.env})
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if stop_at in line:
            process.kill()
            break
    process.wait(timeout=60)
    assert process.returncode == -9, "".join(seen)
    half = live.run("plan", "--json")
    assert half.returncode == 1, half.stdout
    assert any(c["setting"] == "admin and internal passwords" for c in json.loads(half.stdout)["changes"])
    finished = live.run("up")
    assert finished.returncode == 0, finished.stderr
    assert admin_refused(live.profile, old) == [n.service for n in [*profile.data_nodes, *profile.sentinel_nodes]]
    assert live.run("plan").returncode == 0
    wait_until_settled(profile, load_secrets(profile, env=live.env), timeout_s=30)
    del live.env["REDIS_ADMIN_PASSWORD_PREVIOUS"]


@pytest.mark.parametrize(
    ("skipped", "caught"),
    [("switch_links", "not every link logged in again"), ("drop_old", "still accepts the previous admin password")],
)
def test_a_broken_rotation_fails_its_proof_and_the_next_up_finishes_it(
    ha: Live, monkeypatch: pytest.MonkeyPatch, skipped: str, caught: str
) -> None:
    """Broken variants: a rotation that never switches the links to the new passwords (the Sentinels
    keep the old auth-pass), or never drops the old ones (the Sentinels keep the old admin), must not
    pass its proof; `up` says so in one line, rolls nothing back, and the next `up` finishes it.
    Sentinels cut off from the data nodes would start a failover after down_after, so it is longer
    than the proof's wait here."""
    live = ha
    kept = dict(live.raw["sentinel"])
    live.raw["sentinel"].update(down_after="30s", failover_timeout="60s")
    live.write()
    assert live.run("up").returncode == 0
    old = rotate_to_a_new_admin_password(live)
    monkeypatch.setattr(rotation, skipped, lambda desired, secrets: None)
    monkeypatch.setattr(rotation, "PROOF_TIMEOUT_S", 5.0)
    with pytest.raises(HarnessError, match=f"{caught}.*rotation stopped part-way"):
        up(live.profile, load_secrets(live.profile, env=live.env), take_over=False)
    monkeypatch.undo()
    assert live.run("up").returncode == 0
    members = [n.service for n in [*live.profile.data_nodes, *live.profile.sentinel_nodes]]
    assert admin_refused(live.profile, old) == members
    del live.env["REDIS_ADMIN_PASSWORD_PREVIOUS"]
    live.raw["sentinel"] = kept
    live.write()
    assert live.run("up").returncode == 0
    wait_until_settled(live.profile, load_secrets(live.profile, env=live.env), timeout_s=30)
