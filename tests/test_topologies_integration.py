"""Sentinel and Cluster deployments in real containers: up, verify, failover under load, a broken node."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from dotenv import dotenv_values
from redis.crc import key_slot

from redis_harness.client.cache import ServiceCache
from redis_harness.client.keys import build_key
from redis_harness.deploy import firewall
from redis_harness.deploy.connect import connect, connect_node, endpoint, service_cache
from redis_harness.deploy.containers import service_container
from redis_harness.deploy.readiness import current_primary, wait_for_new_primary, wait_until_settled
from redis_harness.deploy.tls_client import client_ssl_context
from redis_harness.faults import inject as faults
from redis_harness.load.calibrate import CALLS, KEY, _figures, _measure, calibrate
from redis_harness.load.resp import RedisReplyError, RespConnection, encode
from redis_harness.load.routes import routes_for
from redis_harness.load.scenarios import raw_key
from redis_harness.origin.store import OriginStore
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.report.kill_window import FAILOVER_PARTS

from .conftest import REPO, TLS_REQUIRED, Deployment, deployed, emit, variant_profile
from .netns import ALLOWED_NET, OtherHosts
from .test_converge import fresh_env
from .test_rolling_ha import Writer, admin_refused, bursts, longest_without_ack

pytestmark = pytest.mark.integration


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=timeout,
    )
    # The verdicts, not the whole tables: a failing check shows up in the test's output.
    print(
        "\n".join(line for line in result.stdout.splitlines() if any(w in line for w in ("FAIL", "ERROR", "checks:")))
    )
    print(result.stderr[-2000:])
    return result


def tls_variant(base: str, tmp_dir: Path, **overrides: object) -> Profile:
    """profiles/<base>.yaml with TLS on every link and client certificates required, as `tls<base>`:
    every Sentinel and Cluster path below runs over TLS (the plaintext ones run in test_rolling_ha,
    test_failover_command and the docs' commands)."""
    raw = yaml.safe_load((REPO / "profiles" / f"{base}.yaml").read_text())
    return variant_profile(base, tmp_dir, f"tls{base}", security={**raw["security"], **TLS_REQUIRED}, **overrides)


@pytest.fixture(scope="module")
def ha(secret_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    raw = yaml.safe_load((REPO / "profiles" / "ha.yaml").read_text())
    profile = tls_variant(
        "ha", tmp_path_factory.mktemp("tlsha"), network={"port": 6790}, sentinel={**raw["sentinel"], "port": 6795}
    )
    with deployed(profile, secret_env) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def cluster(
    secret_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, other_hosts: OtherHosts
) -> Iterator[Deployment]:
    """Published on a host address for the allowed network only (the host itself always gets in), so a
    client on another host is redirected across the Cluster too."""
    firewall.ensure_rules()
    network = {"port": 6860, "publish": "host", "host": other_hosts.published, "allow": [ALLOWED_NET]}
    with deployed(tls_variant("cluster", tmp_path_factory.mktemp("tlscluster"), network=network), secret_env) as d:
        yield d


def failover_report(profile: Profile, env: dict[str, str], run_dir: Path, *extra: str) -> tuple[int, dict]:
    source = str(profile.source)
    result = cli(env, "load", source, "--scenario", "failover", "--duration", "20s", "--report", str(run_dir), *extra)
    return result.returncode, json.loads((run_dir / "report.json").read_text())


def test_ha_verifies_on_every_node(ha: Deployment, cli_env: dict[str, str]) -> None:
    again = cli(cli_env, "up", str(ha.profile.source))  # the deployment is already what it says
    assert again.returncode == 0 and "in sync, nothing to change" in again.stdout, again.stderr
    result = cli(cli_env, "verify", str(ha.profile.source), "-v")
    assert result.returncode == 0
    assert result.stdout.startswith(f"verify {ha.profile.project} (3 data nodes): passed")
    tables = result.stdout.split("checks on ")[1:]
    assert [t.split(":", 1)[0] for t in tables] == ["redis-0", "redis-1", "redis-2"]
    for check in ("replication_links_up", "sentinels_agree_on_the_primary", "sentinel_requires_a_password"):
        assert check in tables[0] and check not in tables[1]  # deployment-wide: with the first node only


def test_sentinel_client_follows_the_primary(ha: Deployment) -> None:
    client = connect(ha.profile, "price", ha.secrets.service("price").password,
                     sentinel_password=ha.secrets.default.password)  # fmt: skip
    assert client.set("price:v1:price:SENTINEL", "1") and client.get("price:v1:price:SENTINEL") == "1"
    assert client.connection_pool.get_master_address()[0] == "127.0.0.1"  # remapped from the service name
    client.close()


def test_ha_failover_names_a_new_primary(ha: Deployment, cli_env: dict[str, str], tmp_path: Path) -> None:
    before = current_primary(ha.profile, ha.secrets)
    code, report = failover_report(ha.profile, cli_env, tmp_path)
    assert code == 0
    (fault,) = report["faults"]
    assert fault["old_primary"] == before and fault["new_primary"] not in (None, before)
    assert fault["new_primary_s"] > ha.profile.topology.sentinel.down_after_ms / 1000
    assert report["client"]["events"]["acked_writes"] > 0  # lost ones are reported, not asserted
    assert current_primary(ha.profile, ha.secrets) == fault["new_primary"]
    # Where the time went, step by step from the Sentinels' own logs; the steps tile the window.
    window = fault["failover_window"]
    print("failover window:", window)
    steps = [window[key] for key, _ in FAILOVER_PARTS]
    assert None not in steps and window["fault_to_first_ack_s"] is not None, window
    assert abs(sum(steps) - window["fault_to_first_ack_s"]) < 0.01
    assert window["detection_s"] >= ha.profile.topology.sentinel.down_after_ms / 1000  # nobody jumped the gun


def test_ha_primary_crashed_after_a_failover_comes_back_as_the_sentinels_say(ha: Deployment) -> None:
    """After a failover the profile's first node is a replica. The primary's process killed, its restart
    policy starts it at once: it must rejoin as what the Sentinels say, not as a replica of redis-0 (which
    made a replication loop with no primary, that Sentinel could not fail over: -failover-abort-no-good-slave,
    an outage until someone stepped in). A writer through Sentinel keeps getting acknowledged."""
    profile, secrets = ha.profile, ha.secrets
    master = profile.topology.sentinel.master_name
    if current_primary(profile, secrets) == profile.data_nodes[0].service:
        sentinel = connect_node(profile, profile.sentinel_nodes[-1], "admin", secrets.admin.password)
        sentinel.execute_command("SENTINEL", "FAILOVER", master)
        sentinel.close()
        # 60 s: Sentinel starts no failover within twice failover_timeout of an earlier attempt.
        wait_for_new_primary(profile, secrets, profile.data_nodes[0].service, timeout_s=60)
        wait_until_settled(profile, secrets, timeout_s=60)
    crashed = current_primary(profile, secrets)
    assert crashed != profile.data_nodes[0].service
    client = connect(profile, "processing", secrets.service("processing").password,
                     sentinel_password=secrets.default.password)  # fmt: skip
    acked: list[float] = []
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                client.set("processing:v1:crash:seq", n)
                acked.append(time.time())
            except redis.RedisError:
                time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(2)
        killed = faults.kill(profile, node=crashed)
        wait_until_settled(profile, secrets, timeout_s=60)
        time.sleep(2)
    finally:
        stop.set()
        writer.join()
        client.close()
    after_kill = [t for t in acked if t > killed.requested_at]
    gap = max(b - a for a, b in zip(acked, acked[1:], strict=False) if b > killed.requested_at)
    started = service_container(profile, crashed).logs(since=int(killed.requested_at)).decode()
    print(f"crash of {crashed}: longest gap without an acknowledged write {gap:.2f} s; {started.splitlines()[:1]}")
    assert after_kill and time.time() - after_kill[-1] < 5, "writes did not resume after the crash"
    primary = current_primary(profile, secrets)
    assert "redis-harness: starting as" in started
    node = connect_node(profile, next(n for n in profile.data_nodes if n.service == crashed), "admin",
                        secrets.admin.password)  # fmt: skip
    role = node.execute_command("ROLE")
    node.close()
    if primary == crashed:  # restarted before Sentinel replaced it: it kept its place
        assert role[0] == b"master" or role[0] == "master", role
    else:
        assert role[0] in ("slave", b"slave") and role[1] in (primary, primary.encode()), (primary, role)
    flags = {s.service: connect_node(profile, s, "admin", secrets.admin.password).sentinel_master(master)
             for s in profile.sentinel_nodes}  # fmt: skip
    assert all(not f.get("is_sdown") and not f.get("is_odown") for f in flags.values()), flags


def sentinel_log_lines(profile: Profile, since: float, marker: str) -> list[str]:
    logs = [service_container(profile, n.service).logs(since=int(since)).decode() for n in profile.sentinel_nodes]
    return [line for text in logs for line in text.splitlines() if marker in line]


def pause_primary(ha: Deployment, hold_s: float) -> tuple[str, str, list[str]]:
    """Freeze the primary for hold_s, give Sentinel time to act on it; (before, after, +odown lines)."""
    before = current_primary(ha.profile, ha.secrets)
    since = time.time()
    with faults.injected(ha.profile, "pause", node=before):
        time.sleep(hold_s)
    time.sleep(6)  # down_after and an election would both be over by now
    return before, current_primary(ha.profile, ha.secrets), sentinel_log_lines(ha.profile, since, "+odown")


def raw_run(deployment: Deployment, env: dict[str, str], run_dir: Path) -> dict:
    """A short paced `load --scenario raw` (the lean user): its report, having checked every call succeeded."""
    args = ("--scenario", "raw", "--users", "5", "--rate", "2000", "--duration", "3s", "--report", str(run_dir))
    result = cli(env, "load", str(deployment.profile.source), *args)
    report = json.loads((run_dir / "report.json").read_text())
    commands = report["commands"]
    assert set(commands) == {"GET raw", "SET raw"}
    assert all(c["count"] > 1000 and c["errors"] == 0 for c in commands.values()), commands
    assert result.returncode == 0, result.stderr[-2000:]
    return report


def test_raw_goes_to_the_primary_the_sentinels_name(ha: Deployment, cli_env: dict[str, str], tmp_path: Path) -> None:
    """The lean user sends to the primary the Sentinels name now (after the failovers above, not the node
    the profile lists first); a replica, where it went before, refuses the same SET with READONLY."""
    routes = routes_for(ha.profile, ha.secrets, "price")
    primary = current_primary(ha.profile, ha.secrets)
    published = {node.service: (ha.profile.network.host, node.host_port) for node in ha.profile.data_nodes}
    assert routes.kind == "sentinel" and routes.address() == published[primary]
    raw_run(ha, cli_env, tmp_path)
    replica = next(node for node in ha.profile.data_nodes if node.service != primary)
    tls = client_ssl_context(ha.profile, "price")
    password = ha.secrets.service("price").password
    wrong = RespConnection(*published[replica.service], "price", password, timeout_s=1.0, tls=tls)
    with pytest.raises(RedisReplyError, match="READONLY"):
        wrong.execute(encode("SET", "price:raw:key:000000000001", "xxx"))
    wrong.close()


def test_ha_rides_out_a_two_second_pause_on_a_loaded_host(ha: Deployment) -> None:
    """down_after 2.2 s: a primary frozen for 2 s (a stall, a slow fork) is not failed over, twice, with
    every core busy: not even a quorum agrees it is down (+odown, the verdict that starts a failover, logged
    even when an earlier failover keeps Sentinel from starting another). The broken variant: with down_after
    500 ms on every Sentinel the same pause gets that verdict."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        for _ in range(2):
            before, after, odown = pause_primary(ha, 2.0)
            assert after == before and not odown, (before, after, odown)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    sentinels = [connect_node(ha.profile, n, "admin", ha.secrets.admin.password) for n in ha.profile.sentinel_nodes]
    master = ha.profile.topology.sentinel.master_name
    spec = ha.profile.topology.sentinel
    try:
        for sentinel in sentinels:
            sentinel.execute_command("SENTINEL", "SET", master, "down-after-milliseconds", 500)
        # The quorum's verdict is the check's subject; whether the failover then completes within the pause
        # depends on the vote (two candidates at once split it, and the retry comes after the pause). A
        # Sentinel asks its peers for their verdict once a second, so even a 500 ms down_after can miss
        # the quorum within one 2 s pause: up to three pauses, and one verdict is the broken variant's.
        odown: list[str] = []
        for _ in range(3):
            odown = pause_primary(ha, 2.0)[2]
            if odown:
                break
        assert odown, "with down_after 500 ms a quorum should have called one of three 2 s pauses down"
    finally:
        for sentinel in sentinels:
            sentinel.execute_command("SENTINEL", "SET", master, "down-after-milliseconds", spec.down_after_ms)
            sentinel.close()
        wait_until_settled(ha.profile, ha.secrets, timeout_s=60)


def test_ha_partition_loses_acknowledged_writes_only_within_the_profiles_bound(
    ha: Deployment, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The old primary keeps its clients but loses its replicas and Sentinels; after healing it is
    demoted and what it accepted meanwhile is gone. min_replicas_to_write 1 with 1 s of lag bounds
    that at 3 s of writes after the cut; durable writes (RPUSH then WAIT 1) lose none."""
    code, report = failover_report(ha.profile, cli_env, tmp_path, "--fault", "partition")
    (fault,) = report["faults"]
    gates = {g["name"]: g for g in report["gates"]}
    print("partition:", fault.get("acked_loss"), gates["acked_loss_bounded"]["detail"])
    assert code == 0, gates
    assert fault["kind"] == "failover (partition)" and fault["new_primary"] != fault["old_primary"]
    events = report["client"]["events"]
    assert events["acked_writes"] > 0 and "acked_writes_unverified" not in events  # counted after the heal
    assert report["commands"]["RPUSH seq"]["errors"] > 0  # the isolated primary refused writes (NOREPLICAS)
    assert fault["loss_bound_s"] == ha.profile.topology.replication.acked_loss_bound_s == 3.0
    assert fault["acked_loss"] is None or fault["acked_loss"]["last_s"] <= 3.0
    assert gates["acked_loss_bounded"]["passed"]
    # Durable writes: the isolated primary applied some, none confirmed, so none was acknowledged.
    assert events["durable_acked_writes"] > 0 and events["durable_acked_writes_lost"] == 0
    assert report["commands"]["RPUSH+WAIT seq"]["errors"] > 0


def test_ha_partition_gate_fails_when_the_primary_does_not_refuse(
    ha: Deployment, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The broken variant: every node told to accept writes without replicas (as a profile with
    min_replicas_to_write 0 would render) while the run still expects the profile's bound. The cut-off
    primary then acknowledges until it is demoted, well past 3 s, and the gate says so."""
    password = ha.secrets.admin.password
    admins = [connect_node(ha.profile, node, "admin", password) for node in ha.profile.data_nodes]
    for admin in admins:
        admin.config_set("min-replicas-to-write", 0)
    try:
        code, report = failover_report(ha.profile, cli_env, tmp_path, "--fault", "partition")
    finally:
        for admin in admins:
            admin.config_set("min-replicas-to-write", 1)
            admin.close()
    (fault,) = report["faults"]
    gate = next(g for g in report["gates"] if g["name"] == "acked_loss_bounded")
    print("unrefused partition:", fault.get("acked_loss"), gate["detail"])
    assert code != 0 and not gate["passed"], gate
    assert fault["acked_loss"]["last_s"] > fault["loss_bound_s"] == 3.0


def test_ha_one_second_lag_refuses_no_write_on_a_loaded_host(
    ha: Deployment, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """min_replicas_max_lag 1 s, the least Redis accepts, with every core busy (three spinning
    processes beside the saturated generator and the TLS deployment): not one write is refused."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        result = cli(cli_env, "load", str(ha.profile.source), "--scenario", "cache-latency", "--duration", "20s",
                     "--report", str(tmp_path))  # fmt: skip
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    report = json.loads((tmp_path / "report.json").read_text())
    writes = {name: c for name, c in report["commands"].items() if name.split()[0] in ("HSET", "EXPIRE", "PIPELINE")}
    assert sum(c["count"] for c in writes.values()) > 1000
    assert not [e for e in report["error_types"] if "NOREPLICAS" in e["error"]], report["error_types"]
    assert sum(c["errors"] for c in report["commands"].values()) == 0, (result.stdout, report["error_types"])


def test_verify_names_a_broken_replication_link(ha: Deployment, cli_env: dict[str, str]) -> None:
    primary = current_primary(ha.profile, ha.secrets)
    replica = next(n.service for n in ha.profile.data_nodes if n.service != primary)
    with faults.injected(ha.profile, "disconnect", network="internal", node=replica):
        faults.disconnect(ha.profile, "edge", node=replica)
        try:
            result = cli(cli_env, "verify", str(ha.profile.source), "-k", "replication_links_up or sentinel_quorum")
        finally:
            faults.reconnect(ha.profile, "edge", node=replica)
    assert result.returncode != 0
    # FAIL, or ERROR when asking the cut-off replica already fails: either way the check is named whole.
    assert re.search(r"^(FAIL |ERROR) replication_links_up  on redis-0$", result.stdout, re.MULTILINE), result.stdout


def test_cluster_verifies_and_reup_is_harmless(cluster: Deployment, cli_env: dict[str, str]) -> None:
    again = cli(cli_env, "up", str(cluster.profile.source))  # the init container finds the cluster and does nothing
    assert again.returncode == 0 and "in sync, nothing to change" in again.stdout, again.stderr
    result = cli(
        cli_env, "verify", str(cluster.profile.source), "-k", "cluster or replica or confined or runs_as_non_root", "-v"
    )
    assert result.returncode == 0
    assert result.stdout.count("checks on redis-") == 6
    assert "cluster_all_slots_covered" in result.stdout


def test_cluster_admin_rotation_runs_live_under_a_writer(
    cluster: Deployment, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The admin password rotated on the Cluster (TLS) and back, live, under a writer: every primary's
    replicas log in again with the new replication password, nothing acknowledged is lost, no write
    fails, and the password rotated away from is refused by every node at the end of each."""
    profile = cluster.profile
    source = str(profile.source)
    original = cli_env["REDIS_ADMIN_PASSWORD"]
    new = fresh_env()["REDIS_ADMIN_PASSWORD"]
    writer = Writer(connect(profile, "price", cluster.secrets.service("price").password))
    writer.start()
    time.sleep(1)
    forth = cli({**cli_env, "REDIS_ADMIN_PASSWORD": new, "REDIS_ADMIN_PASSWORD_PREVIOUS": original}, "up", source)
    refused_after_forth = admin_refused(profile, original)
    back = cli({**cli_env, "REDIS_ADMIN_PASSWORD_PREVIOUS": new}, "up", source)
    time.sleep(1)
    writer.stop.set()
    writer.join(timeout=30)
    assert forth.returncode == 0 and back.returncode == 0, forth.stderr + back.stderr
    stored = connect(profile, "price", cluster.secrets.service("price").password).mget_nonatomic(
        [f"price:v1:seq:{i}" for i in writer.acked]
    )
    lost = [i for i, v in zip(writer.acked, stored, strict=True) if v is None]
    emit(
        capsys,
        "admin_rotation_cluster",
        {
            "writes_acknowledged": len(writer.acked),
            "acknowledged_writes_lost": len(lost),
            "failed_writes": len(writer.failed_at),
            "longest_without_ack_s": round(longest_without_ack(writer), 3),
            "proof": [line for line in forth.stderr.splitlines() + back.stderr.splitlines() if "logged in" in line],
        },
    )
    every_node = [n.service for n in profile.data_nodes]
    assert refused_after_forth == every_node and admin_refused(profile, new) == every_node
    assert lost == [] and writer.failed_at == [], bursts(writer)
    assert cli(cli_env, "plan", source).returncode == 0


def test_cluster_failover_names_a_new_primary(cluster: Deployment, cli_env: dict[str, str], tmp_path: Path) -> None:
    code, report = failover_report(cluster.profile, cli_env, tmp_path)
    assert code == 0
    (fault,) = report["faults"]
    assert fault["new_primary"] and fault["new_primary"] != fault["old_primary"]
    assert report["commands"]["cache.get price"]["count"] > 0
    # The run's latency floor was measured on every primary (it was null on a Cluster before).
    check_cluster_calibration(report["calibration"], cluster.profile)


def check_cluster_calibration(figures: dict | None, profile: Profile) -> None:
    """A floor for the run (PING and GET, µs) and one per primary, each from its own CALLS calls."""
    assert figures is not None, "no latency floor was measured"
    assert len(figures["nodes"]) == profile.topology.cluster.primaries, figures
    for one in (figures, *figures["nodes"].values()):
        assert 0 < one["ping_p50_us"] <= one["ping_p99_us"] and 0 < one["get_p50_us"] <= one["get_p99_us"], one
    assert figures["calls"] == sum(n["calls"] for n in figures["nodes"].values()) == 2 * CALLS * len(figures["nodes"])


def _calibrate_through_the_endpoint(profile: Profile, secrets: Secrets) -> dict | None:
    """The calibration before Cluster support: one connection to the published port, one fixed key."""
    host, port = endpoint(profile)
    tls = client_ssl_context(profile, "admin")
    connection = RespConnection(host, port, "admin", secrets.admin.password, timeout_s=1.0, tls=tls)
    try:
        return {**_figures(*_measure(connection, KEY)), "nodes": {}}
    except RedisReplyError:
        return None
    finally:
        connection.close()


def test_calibration_measures_every_primary_of_the_cluster(cluster: Deployment) -> None:
    """On the cluster each primary's floor is measured on its own port with a key of its own slots;
    the old single-endpoint calibration meets -MOVED (its key hashes to another node's slot) and
    gives no floor: shown failing the same check."""
    figures = calibrate(cluster.profile, cluster.secrets)
    check_cluster_calibration(figures, cluster.profile)
    answered = {}
    for node in cluster.profile.data_nodes:
        client = connect_node(cluster.profile, node, "admin", cluster.secrets.admin.password)
        answered[node.service] = client.execute_command("ROLE")[0]
        client.close()
    assert set(figures["nodes"]) == {s for s, role in answered.items() if role == "master"}
    with pytest.raises(AssertionError, match="no latency floor"):
        check_cluster_calibration(_calibrate_through_the_endpoint(cluster.profile, cluster.secrets), cluster.profile)


def test_raw_sends_each_key_to_its_slots_primary(cluster: Deployment, cli_env: dict[str, str], tmp_path: Path) -> None:
    """`load --scenario raw` on the Cluster: every call succeeds and every primary served SETs. Sending each
    key to one node instead, as the lean user did before it routed, meets -MOVED for the other slots."""
    admin = cluster.secrets.admin.password
    primaries = [n for n in cluster.profile.data_nodes if _role(cluster, n, admin) == "master"]

    def sets() -> dict[str, int]:
        counts = {}
        for node in primaries:
            client = connect_node(cluster.profile, node, "admin", admin)
            counts[node.service] = client.info("commandstats").get("cmdstat_set", {}).get("calls", 0)
            client.close()
        return counts

    before = sets()
    raw_run(cluster, cli_env, tmp_path)
    after = sets()
    assert all(after[s] - before[s] > 300 for s in after), (before, after)
    routes = routes_for(cluster.profile, cluster.secrets, "price")
    assert routes.kind == "cluster" and len(routes.addresses()) == len(primaries)
    tls = client_ssl_context(cluster.profile, "price")
    one = RespConnection(*routes.address(), "price", cluster.secrets.service("price").password, 1.0, tls=tls)
    moved = 0
    for n in range(30):
        try:
            one.execute(encode("GET", raw_key(n)))
        except RedisReplyError as exc:
            moved += str(exc).startswith("MOVED")
    one.close()
    assert moved > 0


def _role(deployment: Deployment, node: object, password: str) -> str:
    client = connect_node(deployment.profile, node, "admin", password)  # type: ignore[arg-type]
    try:
        return client.execute_command("ROLE")[0]
    finally:
        client.close()


def test_existing_scenarios_run_unchanged_on_cluster(cluster: Deployment, cli_env: dict[str, str]) -> None:
    result = cli(cli_env, "load", str(cluster.profile.source), "--scenario", "smoke", "--duration", "6s")
    assert result.returncode == 0


def test_one_pairs_keys_share_a_slot_on_the_cluster(cluster: Deployment) -> None:
    """A trade's invalidation of one pair's entities as one atomic transaction: only in one slot."""
    client = connect(cluster.profile, "price", cluster.secrets.service("price").password)
    keys = [build_key("price", 1, entity, "BTC-USDT") for entity in ("price", "volume", "historical")]
    for key in keys:
        client.set(key, "1")
    pipe = client.pipeline(transaction=True)
    pipe.delete(*keys)
    assert pipe.execute() == [3]
    client.close()


def test_library_multi_key_paths_span_slots_on_cluster(cluster: Deployment, tmp_path: Path) -> None:
    """get_many, invalidate and replay_pending each take keys of many pairs, which hash to many slots:
    on a Cluster one MGET or UNLINK across them is refused with CROSSSLOT (the library fell back to the
    origin for every get_many: right answers, nothing ever served from Redis)."""
    origin = OriginStore.open_seeded(tmp_path / "origin.sqlite")
    cache = service_cache(cluster.profile, cluster.secrets, "price", origin)
    symbols = origin.hottest(40)
    keys = [cache.key("price", s) for s in symbols]
    slots = {key_slot(k.encode()) for k in keys}
    assert len(slots) > 20, "the ids of one call hash to many slots"
    with pytest.raises(redis.exceptions.RedisClusterException, match="slot"):
        cache.client.redis.mget(keys)  # the broken variant: one MGET across the slots
    try:
        assert cache.invalidate(keys) is True  # the module's load runs cached some of these pairs already
        counts = dict(cache.stats.counts)
        first = cache.get_many("price", symbols)
        assert set(first) == set(symbols) and cache.stats.counts["misses"] - counts["misses"] == len(symbols)
        again = cache.get_many("price", symbols)
        assert again == first, "the second call is served by Redis"
        assert cache.stats.counts["hits"] - counts["hits"] == len(symbols)
        assert cache.invalidate(keys[:20]) is True
        assert cache.client.redis.exists(*keys[:20]) == 0 and cache.client.redis.exists(*keys[20:]) == 20
        cache._journal(keys[20:])  # as an outage would have left them
        assert cache.replay_pending() == 20 and not cache.pending()
        assert cache.client.redis.exists(*keys) == 0
        assert cache.stats.counts["fallback_reads"] == 0
    finally:
        cache.close()
        origin.close()


@pytest.mark.parametrize("topology", ["ha", "cluster"])
def test_a_service_on_another_host_needs_only_what_env_init_prints(
    topology: str, request: pytest.FixtureRequest, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`env init P --service price` prints all a service needs (TLS files, Sentinels or Cluster, the map
    from announced names to published addresses); the shipped library's from_env connects with it alone."""
    deployment: Deployment = request.getfixturevalue(topology)
    printed = cli(cli_env, "env", "init", str(deployment.profile.source), "--service", "price")
    assert printed.returncode == 0, printed.stderr
    (tmp_path / "price.env").write_text(printed.stdout)
    env = {k: v for k, v in dotenv_values(tmp_path / "price.env", interpolate=False).items() if v is not None}
    assert env["REDIS_TLS_CA_FILE"] and env["REDIS_TLS_CERT_FILE"].endswith("tls-client-price.crt")
    assert ("REDIS_SENTINELS" in env) == (topology == "ha") and ("REDIS_CLUSTER" in env) == (topology == "cluster")
    origin = OriginStore.open_seeded(tmp_path / "origin.sqlite")
    cache = ServiceCache.from_env(env, "price", origin)
    try:
        symbol = origin.hottest(1)[0]
        assert cache.get("price", symbol) == cache.get("price", symbol)  # filled, then served
        assert cache.stats.counts["hits"] >= 1 and cache.stats.counts["fallback_reads"] == 0
        # The broken variant: without the map, the names the nodes announce are not reachable from here.
        unmapped = {k: v for k, v in env.items() if k != "REDIS_ADDRESS_MAP"}
        with pytest.raises((redis.RedisError, redis.exceptions.RedisClusterException)):  # noqa: PT012
            blind = ServiceCache.from_env(unmapped, "price", origin)  # a Cluster client reads the slot map here
            try:
                blind.client.redis.set("price:v1:probe:x", "1")
            finally:
                blind.close()
    finally:
        cache.close()
        origin.close()


# A service on the allowed host with nothing but what `env init --service` printed: the Cluster client
# reads the slot map, is redirected across the primaries, and connects only to published addresses.
ON_ANOTHER_HOST = """
import json, sys
from dotenv import dotenv_values
from redis_harness.client.cache import ServiceCache
from redis_harness.origin.store import OriginStore

env = {k: v for k, v in dotenv_values(sys.argv[1], interpolate=False).items() if v is not None}
origin = OriginStore.open_seeded(sys.argv[2])
cache = ServiceCache.from_env(env, "price", origin)
symbols = origin.hottest(30)
cache.invalidate([cache.key("price", s) for s in symbols])
first, again = cache.get_many("price", symbols), cache.get_many("price", symbols)
nodes = sorted({(n.host, n.port) for n in cache.client.redis.get_nodes()})
print(json.dumps({"same": first == again and len(first) == 30, "counts": dict(cache.stats.counts), "nodes": nodes}))
"""


def test_a_service_on_the_allowed_host_is_redirected_only_to_published_addresses(
    cluster: Deployment, other_hosts: OtherHosts, cli_env: dict[str, str], tmp_path: Path
) -> None:
    profile = cluster.profile
    printed = cli(cli_env, "env", "init", str(profile.source), "--service", "price")
    assert printed.returncode == 0, printed.stderr
    env_file = tmp_path / "price.env"
    env_file.write_text(printed.stdout)
    done = other_hosts.allowed.python(ON_ANOTHER_HOST, str(env_file), str(tmp_path / "origin.sqlite"), timeout_s=90)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same"] and result["counts"]["hits"] >= 30 and result["counts"].get("fallback_reads", 0) == 0
    published = {(profile.network.host, n.host_port) for n in profile.data_nodes}
    assert {tuple(n) for n in result["nodes"]} <= published and len(result["nodes"]) == len(published), result
    # What the nodes announce is a name inside the deployment's network, out of that host's reach.
    admin = connect_node(profile, profile.data_nodes[0], "admin", cluster.secrets.admin.password)
    slots = admin.execute_command("CLUSTER", "SLOTS")
    admin.close()
    text = [(h.decode() if isinstance(h, bytes) else str(h), int(p)) for h, p, *_ in (r[2] for r in slots)]
    assert text and set(text).isdisjoint(published)
    assert not any(other_hosts.allowed.connects(host, port) for host, port in set(text)), text
    refused = other_hosts.refused.python(ON_ANOTHER_HOST, str(env_file), str(tmp_path / "o2.sqlite"), timeout_s=90)
    assert refused.returncode != 0
