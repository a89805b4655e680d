"""The certificate lifecycle on real containers: `cert rotate` and `up` load new certificates live
(a client's connection stays open and its commands keep working; a new connection sees the new
certificate), a certificate written but not loaded is caught, a node that refuses new files gets the
previous ones back, and Sentinels (which cannot re-read theirs) restart one at a time.

The tests share the session's mutual-TLS deployment (tlsci); the Sentinel one is in
tests/test_publish_host_ha_integration.py, on that module's mutual-TLS `ha` deployment."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness.deploy import generations, lock
from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.converge import check_certificates, converge
from redis_harness.deploy.desired import desired_state
from redis_harness.deploy.plan import CERTIFICATE_SETTING, make_plan
from redis_harness.deploy.tls_client import tls_kwargs
from redis_harness.deploy.tls_served import served_certificate
from redis_harness.errors import HarnessError
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node
from redis_harness.render import certificates as certs
from redis_harness.render.secret_files import read_secret_files, write_secret_contents

from .conftest import Deployment, emit

pytestmark = pytest.mark.integration


def cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [a.replace("{profile}", str(deployment.profile.source)) for a in args]
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *argv],
        capture_output=True,
        text=True,
        env={**deployment.env, "COLUMNS": "100"},
        timeout=300,
    )


def node(profile: Profile, service: str) -> Node:
    return next(n for n in profile.nodes if n.service == service)


def served(profile: Profile) -> dict[str, certs.CertInfo]:
    """What each node presents to a new connection now."""
    found = {}
    for each in profile.nodes:
        info = served_certificate(profile, each)
        assert not isinstance(info, str), f"{each.service}: {info}"
        found[each.service] = info
    return found


def file_serials(profile: Profile) -> dict[str, int]:
    files = read_secret_files(profile, certs.certificate_file_names(profile))
    return {name: certs.read_cert(name, text).serial for name, text in files.items()}


class Traffic:
    """One connection to a data node, kept open, running SET/GET in a loop until stopped: counts
    commands, errors and the connection's CLIENT ID at start and end (a reconnect changes it)."""

    def __init__(self, deployment: Deployment, service: str | None = None) -> None:
        profile = deployment.profile
        service = service or profile.data_nodes[0].service
        self.client = redis.Redis(
            host=profile.network.host,
            port=node(profile, service).host_port,
            username="admin",
            password=deployment.secrets.admin.password,
            single_connection_client=True,  # one connection for the whole run: CLIENT ID tells a reconnect
            retry=Retry(NoBackoff(), 0),  # an error is counted, never hidden by a retry
            socket_timeout=5,
            **tls_kwargs(profile, "admin"),
        )
        self.ok = self.errors = 0
        self.first_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 240  # bounded, whatever happens to the test
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            n += 1
            try:
                self.client.set("certs:traffic", n, ex=60)
                assert int(self.client.get("certs:traffic") or 0) == n
                self.ok += 2
            except (redis.RedisError, OSError, AssertionError) as exc:
                self.errors += 1
                self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"
            time.sleep(0.002)

    def __enter__(self) -> Traffic:
        self.id_before = self.client.client_id()
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.seconds = time.monotonic() - self.started
        try:
            self.id_after = self.client.client_id()
        finally:
            self.client.close()

    def figures(self) -> dict[str, Any]:
        return {
            "commands": self.ok,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round(self.seconds, 2),
            "commands_per_s": round(self.ok / self.seconds),
            "client_id_before": self.id_before,
            "client_id_after": self.id_after,
        }

    def assert_unbroken(self) -> None:
        assert self.ok > 0
        assert self.errors == 0, self.first_error
        assert self.id_after == self.id_before, "the connection was dropped and made again"


def assert_loaded(profile: Profile, before: dict[str, certs.CertInfo]) -> dict[str, certs.CertInfo]:
    """Every node serves its file's certificate, a new one."""
    after, files = served(profile), file_serials(profile)
    for service, info in after.items():
        assert info.serial != before[service].serial, f"{service} still serves {info.short_serial}"
        assert info.serial == files[certs.node_files(node(profile, service))[0]]
    return after


def test_rotate_loads_new_certificates_live_without_dropping_a_connection(
    tls_deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tls_deployment.profile
    files_before, served_before = file_serials(profile), served(profile)
    with Traffic(tls_deployment) as traffic:
        time.sleep(0.5)
        result = cli(tls_deployment, "cert", "rotate", "{profile}")
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    first = profile.data_nodes[0].service
    assert f"{first:<11} CONFIG SET serial" in result.stdout
    traffic.assert_unbroken()
    assert_loaded(profile, served_before)
    files_after = file_serials(profile)
    assert files_after[certs.CA_CERT] == files_before[certs.CA_CERT]  # clients keep trusting the same bundle
    old_leaves = {s for name, s in files_before.items() if name != certs.CA_CERT}
    assert not old_leaves & set(files_after.values()), "an old certificate is still in .state/"
    # A new client (its certificate renewed too) connects and works.
    client = connect_node(profile, profile.data_nodes[0], "price", tls_deployment.secrets.service("price").password)
    assert client.set("price:certs:new", "1", ex=60) and client.get("price:certs:new") == "1"
    client.close()
    assert cli(tls_deployment, "plan", "{profile}").returncode == 0  # in sync: nothing left to load
    emit(capsys, "cert-rotate-standalone", traffic.figures() | {"rotate_stdout": result.stdout.splitlines()[0]})


def test_a_certificate_written_but_not_loaded_is_caught_and_up_loads_it(tls_deployment: Deployment) -> None:
    profile, secrets = tls_deployment.profile, tls_deployment.secrets
    served_before = served(profile)
    with lock.held(profile, "test"):
        existing = read_secret_files(profile, certs.tls_file_names(profile))
        write_secret_contents(profile, certs.tls_files(profile, existing, renew_all=True))  # no CONFIG SET
        first = profile.data_nodes[0].service
        with pytest.raises(HarnessError, match=rf"{first}: serves certificate serial \w+, not \w+ of tls-{first}.crt"):
            check_certificates(desired_state(profile, secrets))
    plan = cli(tls_deployment, "plan", "{profile}", "--json")
    assert plan.returncode == 1, plan.stderr
    (change,) = [c for c in json.loads(plan.stdout)["changes"] if c["setting"] == CERTIFICATE_SETTING]
    assert change["node"] == first and change["how"] == "live"
    assert change["desired"].endswith("its file's certificate is not loaded")
    with Traffic(tls_deployment) as traffic:
        up = cli(tls_deployment, "up", "{profile}")
    assert up.returncode == 0, up.stderr
    traffic.assert_unbroken()
    assert_loaded(profile, served_before)


def _load_short_lived(deployment: Deployment, service: str, days: float) -> certs.CertInfo:
    """A certificate of `days` for `service`, from the deployment's CA, written and loaded as an old
    one near its end would be."""
    profile = deployment.profile
    each = node(profile, service)
    files = read_secret_files(profile, certs.tls_file_names(profile))
    cert, key = certs.node_files(each)
    pem, key_pem = certs.issue(
        profile,
        files[certs.CA_CERT],
        files[certs.CA_KEY],
        service,
        certs.server_names(profile, each),
        dt.datetime.now(dt.UTC),
        dt.timedelta(days=days),
    )
    with lock.held(profile, "test"):
        write_secret_contents(profile, {cert: pem, key: key_pem})
        admin = connect_node(profile, each, "admin", deployment.secrets.admin.password)
        admin.config_set("tls-cert-file", "/run/secrets/tls-server.crt")
        admin.close()
    return certs.read_cert(cert, pem)


def test_up_renews_a_certificate_within_renew_before_live(
    tls_deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tls_deployment.profile
    first = profile.data_nodes[0].service
    short = _load_short_lived(tls_deployment, first, days=2)
    assert served(profile)[first].serial == short.serial
    monitor = cli(tls_deployment, "monitor", "{profile}", "--once", "--json")
    alert = next(a for a in json.loads(monitor.stdout)["alerts"] if a["name"] == "cert_expiry")
    assert monitor.returncode == 1 and alert["firing"] and alert["value"] <= 2.0, monitor.stdout
    shown = cli(tls_deployment, "cert", "{profile}")
    due = f"tls-{first}.crt: expires in 2.0 days (renew_before 30d)"
    assert shown.returncode == 1 and due in shown.stdout
    plan = cli(tls_deployment, "plan", "{profile}", "--json")
    document = json.loads(plan.stdout)
    assert plan.returncode == 1 and document["renewals"] == [due]
    (change,) = [c for c in document["changes"] if c["setting"] == CERTIFICATE_SETTING]
    assert (change["node"], change["how"]) == (first, "live") and "expires in 2.0 days" in change["desired"]
    with Traffic(tls_deployment) as traffic:
        up = cli(tls_deployment, "up", "{profile}")
    assert up.returncode == 0, up.stderr
    traffic.assert_unbroken()
    renewed = served(profile)[first]
    left = renewed.expires_in(dt.datetime.now(dt.UTC)).total_seconds()
    assert renewed.serial != short.serial and left > profile.tls.validity_s - 3600
    assert cli(tls_deployment, "monitor", "{profile}", "--once").returncode == 0
    emit(capsys, "cert-renew-up-standalone", traffic.figures() | {"up_stdout": up.stdout.splitlines()[0]})


def test_a_node_that_refuses_its_new_certificate_gets_the_previous_files_back(tls_deployment: Deployment) -> None:
    profile, secrets = tls_deployment.profile, tls_deployment.secrets
    files_before = read_secret_files(profile)
    served_before = served(profile)
    with lock.held(profile, "test"):
        desired = desired_state(profile, secrets, renew_all=True)
        # A key of another certificate: Redis refuses the pair on CONFIG SET and keeps what it has.
        first = profile.data_nodes[0].service
        key = certs.node_files(profile.data_nodes[0])[1]
        desired.secret_files[key] = certs.tls_files(profile, {})[key]
        previous = generations.latest(profile)
        planned = make_plan(desired, secrets, previous)
        with pytest.raises(HarnessError, match=rf"{first}: live change refused.*rolled back to generation"):
            converge(desired, secrets, planned, previous)
    assert read_secret_files(profile) == files_before  # every file back as it was, keys and client certificates too
    assert {s: c.serial for s, c in served(profile).items()} == {s: c.serial for s, c in served_before.items()}
    assert cli(tls_deployment, "plan", "{profile}").returncode == 0
