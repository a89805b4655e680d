"""A Sentinel deployment over mutual TLS published on a non-loopback address with an allow list,
used from another host (a network namespace): the client finds the primary through the
Sentinels, is sent only to addresses it can reach (the published ones, never a container's), and
follows the new primary when the old one is killed. The refused host reaches no Sentinel. `cert
rotate` on the same deployment reloads the nodes live and restarts the Sentinels one at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from redis_harness.deploy import firewall
from redis_harness.deploy.connect import connect, connect_node
from redis_harness.deploy.readiness import current_primary

from .conftest import REPO, TLS_REQUIRED, Deployment, deployed, emit, variant_profile
from .netns import ALLOWED_NET, OtherHosts
from .test_certs_integration import Traffic, assert_loaded, served
from .test_certs_integration import cli as cert_cli

pytestmark = pytest.mark.integration

NAME, PORT, SENTINEL_PORT = "netnsha", 6720, 6730

# A service on the allowed host writing numbered keys through the Sentinels for `seconds`, with
# the harness's client path (Sentinel discovery, announced names mapped to published addresses).
WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    import redis
    from redis_harness.deploy.connect import connect, connect_node
    from redis_harness.profile.credentials import load_secrets
    from redis_harness.profile.model import load_profile

    profile = load_profile(sys.argv[1])
    secrets = load_secrets(profile, env=os.environ)
    client = connect(profile, "price", secrets.password_for("price"), sentinel_password=secrets.default.password)
    pool = client.connection_pool
    before = pool.get_master_address()
    acked, errors = [], []
    deadline = time.monotonic() + float(sys.argv[2])
    i = 0
    while time.monotonic() < deadline:
        i += 1
        try:
            client.set(f"price:v1:ha:{i}", i, ex=300)
            acked.append([i, time.time()])
            if len(acked) == 1:
                print("started", flush=True)
        except redis.RedisError as exc:
            errors.append([time.time(), f"{type(exc).__name__}: {str(exc)[:80]}"])
            time.sleep(0.05)
        time.sleep(0.01)
    after = pool.get_master_address()
    print(json.dumps({"before": list(before), "after": list(after), "acked": acked, "errors": errors}), flush=True)
    """
)


# The broken variant: the same discovery without the map, as a client that takes what the Sentinels
# announce would do.
UNMAPPED = textwrap.dedent(
    """
    import dataclasses, os, sys
    from redis_harness.client.connection import make_redis
    from redis_harness.deploy.connect import settings_for
    from redis_harness.profile.credentials import load_secrets
    from redis_harness.profile.model import load_profile

    profile = load_profile(sys.argv[1])
    secrets = load_secrets(profile, env=os.environ)
    settings = settings_for(profile, "price", secrets.password_for("price"), sentinel_password=secrets.default.password)
    client = make_redis(dataclasses.replace(settings, address_map=()))
    print("announced", *client.connection_pool.get_master_address())
    """
)


@pytest.fixture(scope="module")
def published_ha(
    other_hosts: OtherHosts, tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]
) -> Iterator[Deployment]:
    ha = yaml.safe_load((REPO / "profiles" / "ha.yaml").read_text())
    firewall.ensure_rules()
    profile = variant_profile(
        "ha",
        Path(tmp_path_factory.mktemp(NAME)),
        NAME,
        network={"publish": "host", "host": other_hosts.published, "port": PORT, "allow": [ALLOWED_NET]},
        sentinel={"port": SENTINEL_PORT},
        security={**ha["security"], **TLS_REQUIRED},
    )
    with deployed(profile, secret_env) as deployment:
        yield deployment


def test_only_the_allowed_host_reaches_the_sentinels_and_the_nodes(
    published_ha: Deployment, other_hosts: OtherHosts
) -> None:
    profile = published_ha.profile
    ports = [n.host_port for n in (*profile.data_nodes, *profile.sentinel_nodes)]
    assert len(ports) == 6 and None not in ports
    host = profile.network.host
    assert [other_hosts.allowed.connects(host, p) for p in ports] == [True] * 6  # type: ignore[arg-type]
    assert [other_hosts.refused.connects(host, p) for p in ports] == [False] * 6  # type: ignore[arg-type]
    # What the Sentinels announce is a name inside the deployment's network, which this host cannot
    # reach: without the harness's map (REDIS_ADDRESS_MAP for a service) a client would go there.
    unmapped = other_hosts.allowed.python(UNMAPPED, str(profile.source), env=published_ha.env)
    primary = current_primary(profile, published_ha.secrets)
    assert unmapped.stdout.split() == ["announced", str(primary), str(profile.network.container_port)], unmapped
    assert not other_hosts.allowed.connects(str(primary), profile.network.container_port)


def test_rotate_restarts_sentinels_one_at_a_time_and_data_nodes_not_at_all(
    published_ha: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cert rotate` on Sentinel: data nodes load theirs by CONFIG SET (a connection to the primary
    stays open with 0 errors), Sentinels restart one at a time and come back naming the same primary."""
    profile, secrets = published_ha.profile, published_ha.secrets
    master = profile.topology.sentinel.master_name  # type: ignore[union-attr]
    primary = current_primary(profile, secrets)
    served_before = served(profile)
    with Traffic(published_ha, primary) as traffic:
        result = cert_cli(published_ha, "cert", "rotate", "{profile}")
    assert result.returncode == 0, result.stderr
    traffic.assert_unbroken()
    assert_loaded(profile, served_before)
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[1:7]] == [
        ["redis-0", "CONFIG"],
        ["redis-1", "CONFIG"],
        ["redis-2", "CONFIG"],
        ["sentinel-0", "restarted"],
        ["sentinel-1", "restarted"],
        ["sentinel-2", "restarted"],
    ]
    for sentinel in profile.sentinel_nodes:  # each back in the quorum, naming the same primary
        client = connect_node(profile, sentinel, None, secrets.default.password)
        assert client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master)[0] == primary
        assert len(client.execute_command("SENTINEL", "SENTINELS", master)) == 2
        client.close()
    emit(capsys, "cert-rotate-sentinel", traffic.figures() | {"rotate_stdout": lines[0]})


def test_a_client_on_the_allowed_host_follows_the_new_primary(
    published_ha: Deployment, other_hosts: OtherHosts, capsys: pytest.CaptureFixture[str]
) -> None:
    profile, secrets = published_ha.profile, published_ha.secrets
    first = current_primary(profile, secrets)
    seconds = 30.0
    writer = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            other_hosts.allowed.name,
            sys.executable,
            "-c",
            WRITER,
            str(profile.source),
            str(seconds),
        ],  # fmt: skip
        env=published_ha.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "started", writer.stderr
        time.sleep(1.0)
        fault = subprocess.run(
            [sys.executable, "-m", "redis_harness.cli", "fault", str(profile.source), "failover", "--how", "kill"],
            env=published_ha.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        failed_over_at = time.time()
        out, err = writer.communicate(timeout=seconds + 60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert fault.returncode == 0, fault.stdout + fault.stderr
    result = json.loads(out.strip().splitlines()[-1])
    second = current_primary(profile, secrets)
    assert second is not None and second != first, "the Sentinels name a new primary"
    published = {(profile.network.host, n.host_port): n.service for n in profile.data_nodes}
    before, after = tuple(result["before"]), tuple(result["after"])
    # The client was sent to published addresses only: the old primary's, then the new one's.
    assert published.get(before) == first and published.get(after) == second, (before, after, published)
    written_after = [i for i, at in result["acked"] if at > failed_over_at]
    assert written_after, f"no write acknowledged after the failover: {result['errors'][-3:]}"
    check = connect(profile, "admin", secrets.admin.password, sentinel_password=secrets.default.password)
    stored = check.mget([f"price:v1:ha:{i}" for i in written_after])
    check.close()
    assert None not in stored, "a write acknowledged after the failover is missing on the new primary"
    emit(
        capsys,
        "failover_from_the_allowed_host",
        {
            "primary_before": first,
            "primary_after": second,
            "acked": len(result["acked"]),
            "acked_after_failover": len(written_after),
            "failed_writes": len(result["errors"]),
            "errors": sorted({e for _, e in result["errors"]})[:4],
            "fault": fault.stdout.splitlines()[:1],
        },
    )
