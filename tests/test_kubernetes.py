"""`render --target kubernetes`: every shipped profile's manifests pass the Kubernetes API schemas (oldest and
newest version kubernetes-validate ships) and checkov's Kubernetes checks, offline; maxmemory is the compose
render's; the NetworkPolicies let in only the profile's clients; no manifest holds a secret. Each check is
shown failing on a deliberately broken variant. No containers, no cluster."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from redis_harness.profile.credentials import Secrets, load_secrets, read_dotenv
from redis_harness.profile.model import Profile, load_profile
from redis_harness.render.conf_text import config_directives
from redis_harness.render.files import render_files
from redis_harness.render.kubernetes import (
    CLIENT_LABEL,
    KUSTOMIZATION,
    POD_UID,
    KubernetesOptions,
    LoadOptions,
    default_namespace,
    kubernetes_files,
    secret_manifests,
    write_manifests,
)
from redis_harness.render.secret_files import secret_files

from .conftest import REPO, generated_env, run_start_script
from .test_cli import run_cli, write_profile
from .test_cli_errors import assert_one_line, tree

PROFILES = ("dev", "ci", "prod", "ha", "cluster")
VERSIONS = sorted(all_versions(), key=lambda s: tuple(int(p) for p in s.split(".")))
# checkov's checks the manifests skip, each with its reason in the manifest (templates/kubernetes/macros.j2).
ACCEPTED_SKIPS = {"CKV_K8S_43", "CKV_K8S_15"}
Rendered = dict[str, tuple[Profile, Secrets, dict[str, str]]]


def render(profile: Profile, secrets: Secrets) -> dict[str, str]:
    return kubernetes_files(profile, secrets, KubernetesOptions(default_namespace(profile)))


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    """Every shipped profile rendered, each with fresh secrets."""
    result = {}
    for name in PROFILES:
        profile = load_profile(name)
        secrets = load_secrets(profile, generated_env())
        result[name] = (profile, secrets, render(profile, secrets))
    return result


def documents(files: dict[str, str]) -> list[dict[str, Any]]:
    return [d for name, text in files.items() if name != KUSTOMIZATION for d in yaml.safe_load_all(text) if d]


def of_kind(files: dict[str, str], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in documents(files) if d["kind"] == kind and name in (None, d["metadata"]["name"])]


def write_all(tmp: Path, sets: dict[str, dict[str, str]]) -> Path:
    for name, files in sets.items():
        write_manifests(files, tmp / name)
    return tmp


# --------------------------------------------------------------------------- checks (each shown failing below)


def schema_errors(files: dict[str, str], version: str) -> list[str]:
    """kubernetes-validate, strict (an unknown field is an error), against one Kubernetes version."""
    errors = []
    for doc in documents(files):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata'].get('name')}: {exc.message}")
    return errors


def checkov(folder: Path) -> dict[str, Any]:
    """checkov's Kubernetes framework over a folder, offline: no download, no platform mapping."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR"}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("checkov")), "-d", str(folder), "--framework", "kubernetes"]
        + ["--skip-download", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    return report


def failed_checks(report: dict[str, Any]) -> list[str]:
    return sorted(f"{f['check_id']} {f['resource']}" for f in report.get("results", {}).get("failed_checks", []))


def leaked(files: dict[str, str], secrets: Secrets) -> list[str]:
    """Every password and derived password (healthcheck, replication, sentinel …) that appears in a file."""
    return [
        f"{name}: secret #{i}"
        for name, text in files.items()
        for i, pw in enumerate(secrets.all_passwords())
        if pw in text
    ]


def config_file(files: dict[str, str], name: str) -> str:
    return of_kind(files, "ConfigMap", "redis-config")[0]["data"][name]


def container(files: dict[str, str], workload: str) -> dict[str, Any]:
    sts = of_kind(files, "StatefulSet", workload)[0]
    return sts["spec"]["template"]["spec"]["containers"][0]


def maxmemory_problems(files: dict[str, str], profile: Profile, compose_conf: str) -> list[str]:
    """maxmemory in the ConfigMap's redis.conf is the compose render's, and ratio x the pod's memory limit."""
    problems = []
    k8s_max = int(config_directives(config_file(files, "redis.conf"))["maxmemory"])
    if k8s_max != int(config_directives(compose_conf)["maxmemory"]):
        problems.append(f"maxmemory {k8s_max} differs from the compose render's")
    resources = container(files, "redis")["resources"]
    limit = int(resources["limits"]["memory"])
    if resources["requests"]["memory"] != resources["limits"]["memory"]:
        problems.append("memory request differs from the limit")
    if k8s_max != int(limit * profile.memory.maxmemory_ratio):
        problems.append(f"maxmemory {k8s_max} is not {profile.memory.maxmemory_ratio} x the {limit}-byte limit")
    return problems


def _selects(peer: dict[str, Any]) -> dict[str, list[str]]:
    return {e["key"]: e["values"] for e in peer.get("podSelector", {}).get("matchExpressions", [])}


def network_problems(files: dict[str, str], profile: Profile) -> list[str]:
    """Default deny both ways; Redis's port open to the profile's client labels (any namespace) and the
    deployment's own pods only; Redis's egress only DNS and its own pods."""
    problems = []
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(files, "NetworkPolicy")}
    deny = policies.get("default-deny")
    if (
        not deny
        or deny["podSelector"] != {}
        or set(deny["policyTypes"]) != {"Ingress", "Egress"}
        or (deny.get("ingress") or deny.get("egress"))
    ):
        problems.append("no default deny of ingress and egress for every pod")
    redis = policies.get("redis", {})
    clients = sorted(s.name for s in profile.security.services)
    port = profile.network.container_port
    for rule in redis.get("ingress", []):
        for peer in rule["from"]:
            selects = _selects(peer)
            if CLIENT_LABEL in selects:
                if sorted(selects[CLIENT_LABEL]) != clients or "namespaceSelector" not in peer:
                    problems.append(f"client rule selects {selects[CLIENT_LABEL]}, the profile's clients are {clients}")
                if [p["port"] for p in rule["ports"]] != [port]:
                    problems.append(f"clients reach ports {rule['ports']}, not {port} only")
            elif selects.get("app.kubernetes.io/instance") != [profile.name] or "namespaceSelector" in peer:
                problems.append(f"ingress from outside the deployment: {peer}")
    if not any(CLIENT_LABEL in _selects(p) for r in redis.get("ingress", []) for p in r["from"]):
        problems.append("no ingress rule for the profile's clients")
    for rule in redis.get("egress", []):
        ports = {p["port"] for p in rule.get("ports", [])}
        dns = ports == {53} and all(
            t.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "kube-system"}
            for t in rule["to"]
        )
        own = all(_selects(t).get("app.kubernetes.io/component") == ["redis"] for t in rule["to"])
        if not (dns or own):
            problems.append(f"egress beyond DNS and the replication peers: {rule}")
    return problems


# --------------------------------------------------------------------------- every shipped profile


@pytest.mark.parametrize("version", [VERSIONS[0], VERSIONS[-1]])
def test_every_profile_passes_the_api_schemas(rendered: Rendered, version: str) -> None:
    for name, (_, _, files) in rendered.items():
        assert schema_errors(files, version) == [], (name, version)


def test_the_schema_check_fails_on_a_broken_manifest(rendered: Rendered) -> None:
    files = dict(rendered["dev"][2])
    files["redis.yaml"] = files["redis.yaml"].replace("podManagementPolicy: Parallel", "podManagementPolicy: [1]")
    files["configmap.yaml"] = files["configmap.yaml"].replace("  name: redis-config", "  name: redis-config\n  nmae: x")
    errors = schema_errors(files, VERSIONS[-1])
    assert any("StatefulSet/redis" in e for e in errors) and any("ConfigMap/redis-config" in e for e in errors), errors


def test_checkov_finds_nothing_and_every_skip_says_why(rendered: Rendered, tmp_path: Path) -> None:
    """One checkov run over all five profiles' manifests."""
    report = checkov(write_all(tmp_path, {n: f for n, (_, _, f) in rendered.items()}))
    assert report["summary"]["resource_count"] > 50
    assert report["summary"]["passed"] > 500  # 623 over the five profiles: it read them all
    assert failed_checks(report) == []
    skipped = report["results"]["skipped_checks"]
    assert {s["check_id"] for s in skipped} <= ACCEPTED_SKIPS
    assert all(len(s["check_result"]["suppress_comment"]) > 40 for s in skipped), [
        s["check_result"]["suppress_comment"] for s in skipped
    ]


def test_checkov_fails_without_run_as_non_root(rendered: Rendered, tmp_path: Path) -> None:
    files = dict(rendered["dev"][2])
    # Without runAsNonRoot and the uid, the pod runs as whatever user the image names: root, for all checkov knows.
    lines = files["redis.yaml"].splitlines(keepends=True)
    files["redis.yaml"] = "".join(x for x in lines if x.strip() not in ("runAsNonRoot: true", "runAsUser: 10001"))
    files["redis.yaml"] = files["redis.yaml"].replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    failed = failed_checks(checkov(write_all(tmp_path, {"dev": files})))
    assert "CKV_K8S_23 StatefulSet.redis-harness-dev.redis" in failed, failed
    assert "CKV_K8S_22 StatefulSet.redis-harness-dev.redis" in failed, failed


@pytest.mark.parametrize("name", PROFILES)
def test_maxmemory_is_the_compose_renders(rendered: Rendered, name: str) -> None:
    profile, secrets, files = rendered[name]
    compose_conf = render_files(profile, secrets)["redis.conf"]
    assert maxmemory_problems(files, profile, compose_conf) == []
    assert int(container(files, "redis")["resources"]["limits"]["memory"]) == profile.resources.memory_bytes
    # Only the Sentinels' address of the primary differs from the compose render.
    assert config_file(files, "redis.conf") == compose_conf
    assert config_file(files, "users.acl") == render_files(profile, secrets)["users.acl"]


def test_the_maxmemory_check_fails_on_a_limit_that_disagrees(rendered: Rendered) -> None:
    profile, secrets, files = rendered["ci"]
    broken = dict(files)
    limit = str(profile.resources.memory_bytes)
    broken["redis.yaml"] = files["redis.yaml"].replace(f'memory: "{limit}"', f'memory: "{2 * int(limit)}"')
    problems = maxmemory_problems(broken, profile, render_files(profile, secrets)["redis.conf"])
    assert any("x the" in p for p in problems), problems


@pytest.mark.parametrize("name", PROFILES)
def test_network_policies_let_in_only_the_profiles_clients(rendered: Rendered, name: str) -> None:
    profile, _, files = rendered[name]
    assert network_problems(files, profile) == []


def test_the_network_check_fails_without_default_deny_or_with_other_clients(rendered: Rendered) -> None:
    profile, _, files = rendered["ha"]
    no_deny = {k: v for k, v in files.items()}
    text = files["networkpolicy.yaml"]
    first, _, rest = text.partition("\n---\n")
    no_deny["networkpolicy.yaml"] = rest
    assert "no default deny" in " ".join(network_problems(no_deny, profile))

    stranger = dict(files)
    stranger["networkpolicy.yaml"] = text.replace('values: ["price", ', 'values: ["intruder", "price", ', 1)
    assert stranger["networkpolicy.yaml"] != text
    assert any("client rule selects" in p for p in network_problems(stranger, profile))

    open_egress = dict(files)
    open_egress["networkpolicy.yaml"] = text + (
        "\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: y}\n"
        "spec: {podSelector: {}, policyTypes: [Egress], egress: [{}]}\n"
    )
    policies = of_kind(open_egress, "NetworkPolicy")
    redis = next(p for p in policies if p["metadata"]["name"] == "redis")
    redis["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
    patched = {"networkpolicy.yaml": yaml.safe_dump_all(policies), "redis.yaml": files["redis.yaml"]}
    assert any("egress beyond" in p for p in network_problems(patched, profile))


@pytest.mark.parametrize("name", PROFILES)
def test_no_manifest_holds_a_secret(rendered: Rendered, name: str) -> None:
    _, secrets, files = rendered[name]
    assert len(secrets.all_passwords()) >= 8
    assert leaked(files, secrets) == []


def test_the_secret_check_finds_a_planted_password(rendered: Rendered) -> None:
    profile, secrets, files = rendered["cluster"]
    planted = dict(files)
    planted["configmap.yaml"] = files["configmap.yaml"] + f"# {secrets.derived('replication')}\n"
    assert leaked(planted, secrets) == ["configmap.yaml: secret #6"]
    # The Secrets file env init writes holds them, and only it.
    secret_text = secret_manifests(profile, secrets)
    assert secrets.admin.password in secret_text and secrets.healthcheck_password in secret_text


def test_topologies_get_their_own_objects(rendered: Rendered) -> None:
    ha, cluster, dev = rendered["ha"][2], rendered["cluster"][2], rendered["dev"][2]
    assert of_kind(ha, "StatefulSet", "sentinel")[0]["spec"]["replicas"] == 3
    assert "redis-0.redis-headless.redis-harness-ha.svc 6379 2" in config_file(ha, "sentinel.conf")
    job = of_kind(cluster, "Job", "cluster-create")[0]
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "cluster_state:ok" in script and "--cluster-replicas 1" in script  # idempotent: skips when it exists
    assert of_kind(cluster, "StatefulSet", "redis")[0]["spec"]["replicas"] == 6
    assert not of_kind(dev, "Job") and not of_kind(dev, "StatefulSet", "sentinel")
    for files in (ha, cluster, dev):
        claims = of_kind(files, "StatefulSet", "redis")[0]["spec"]["volumeClaimTemplates"]
        assert claims[0]["metadata"]["name"] == "data"
        assert of_kind(files, "PodDisruptionBudget", "redis")
        listed = yaml.safe_load(files[KUSTOMIZATION])["resources"]
        assert sorted(listed) == sorted(n for n in files if n != KUSTOMIZATION)


# --------------------------------------------------------------------------- the command line


def test_render_kubernetes_writes_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("render", "ha", "--target", "kubernetes", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "kustomization.yaml" in result.stdout and "env init ha --kubernetes" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(
        yaml.safe_load((out / KUSTOMIZATION).read_text())["resources"] + [KUSTOMIZATION]
    )
    # A render without the Namespace object removes the earlier namespace.yaml, and only it.
    (out / "mine.yaml").write_text("kept: true\n")
    assert run_cli("render", "ha", "--target", "kubernetes", "--out", str(out), "--no-namespace-object").returncode == 0
    assert not (out / "namespace.yaml").exists() and (out / "mine.yaml").exists()


def test_the_default_folder_is_git_ignored() -> None:
    for path in ("kubernetes/ci/redis.yaml", ".state/ci/kubernetes-secrets.yaml"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0, path
    assert subprocess.run(["git", "check-ignore", "-q", "templates/kubernetes/redis.yaml.j2"], cwd=REPO).returncode


@pytest.mark.parametrize(
    ("args", "phrases"),
    [
        (["--target", "kubernetes", "--namespace", "Bad_NS"], ["--namespace:", "lower-case"]),
        (["--target", "kubernetes", "--check"], ["--check:"]),
        (["--namespace", "redis"], ["--namespace:", "--target kubernetes"]),
        (["--target", "helm"], ["--target", "invalid choice"]),
    ],
)
def test_bad_kubernetes_flags_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], phrases: list[str]
) -> None:
    out = tmp_path / "out"
    extra = ["--out", str(out)] if "--target" in args and "helm" not in args and "--check" not in args else []
    before = tree(REPO / "kubernetes"), tree(REPO / "compose")
    result = run_cli("render", "ci", *args, *extra)
    assert_one_line(result, 2, *phrases)
    assert not out.exists()
    assert (tree(REPO / "kubernetes"), tree(REPO / "compose")) == before


def test_out_naming_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert_one_line(run_cli("render", "ci", "--target", "kubernetes", "--out", str(target)), 2, "--out:", "folder")
    assert target.read_text() == "x"


def test_env_init_kubernetes_writes_the_secrets_0600(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "k8senvinit")
    env_file = tmp_path / "env"
    state = REPO / ".state" / "k8senvinit"
    try:
        result = run_cli("env", "init", str(path), "--kubernetes", env={"REDIS_HARNESS_ENV_FILE": str(env_file)})
        assert result.returncode == 0, result.stderr
        written = state / "kubernetes-secrets.yaml"
        assert stat.S_IMODE(written.stat().st_mode) == 0o600 and stat.S_IMODE(state.stat().st_mode) == 0o700
        assert "kubectl apply -n redis-harness-k8senvinit -f .state/k8senvinit/kubernetes-secrets.yaml" in result.stdout
        docs = list(yaml.safe_load_all(written.read_text()))
        assert [d["metadata"]["name"] for d in docs] == ["redis-runtime", "redis-load"]
        profile = load_profile(str(path))
        expected = {f.name: f.content for f in secret_files(profile, load_secrets(profile, read_dotenv(env_file)))}
        assert docs[0]["stringData"] == expected  # the runtime secret files, as compose mounts them
        passwords = [v for k, v in read_dotenv(env_file).items() if k.endswith("_PASSWORD")]
        assert not any(p in result.stdout + result.stderr for p in passwords)  # nothing on the terminal
        refused = run_cli(
            "env",
            "init",
            str(path),
            "--kubernetes",
            "--service",
            "price",
            env={"REDIS_HARNESS_ENV_FILE": str(env_file)},
        )
        assert_one_line(refused, 2, "--kubernetes:", "--service")
    finally:
        (state / "kubernetes-secrets.yaml").unlink(missing_ok=True)
        if state.exists():
            state.rmdir()


def test_manifests_are_the_same_for_the_same_inputs(rendered: Rendered) -> None:
    profile, secrets, files = rendered["prod"]
    assert render(profile, secrets) == files


def test_tls_reads_the_clusters_tls_secret_and_never_carries_a_key(rendered: Rendered) -> None:
    """prod has TLS on: every pod mounts the CA, certificate and key from the `redis-tls` Secret the
    cluster's PKI provides; no manifest and no Secret the harness writes holds a certificate or key
    (the harness's own CA key stays on the host it runs on)."""
    profile, secrets, files = rendered["prod"]
    assert profile.tls.enabled
    text = "\n".join(files.values())
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    pods = [doc for doc in yaml.safe_load_all(files["redis.yaml"]) if doc and doc["kind"] == "StatefulSet"]
    for pod in pods:
        volumes = {v["name"]: v for v in pod["spec"]["template"]["spec"]["volumes"]}
        sources = volumes["secrets"]["projected"]["sources"]
        tls = next(s["secret"] for s in sources if s["secret"]["name"] == "redis-tls")
        assert {i["path"] for i in tls["items"]} == {"tls-ca.crt", "tls-server.crt", "tls-server.key"}
    runtime = next(yaml.safe_load_all(secret_manifests(profile, secrets)))
    assert not [key for key in runtime["stringData"] if key.startswith("tls-")]


# --------------------------------------------------------------------------- load from inside the cluster

LOAD_IMAGE = "registry.example.com:5000/team/redis-harness:0.1.0"
LOAD_WORKERS = 3


@pytest.fixture(scope="module")
def rendered_load(rendered: Rendered) -> Rendered:
    """Every shipped profile rendered with the load manifests (--load-workers 3 --load-image LOAD_IMAGE)."""
    return {
        name: (
            profile,
            secrets,
            kubernetes_files(
                profile,
                secrets,
                KubernetesOptions(default_namespace(profile), load=LoadOptions(LOAD_IMAGE, LOAD_WORKERS)),
            ),
        )
        for name, (profile, secrets, _) in rendered.items()
    }


def load_pods(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        job["metadata"]["name"]: job["spec"]["template"]
        for job in of_kind(files, "Job")
        if job["metadata"]["name"].startswith("load-")
    }


def load_problems(files: dict[str, str], workers: int, image: str) -> list[str]:
    """N worker pods, a master waiting for N, both from `image`; the hardening of the Redis pods."""
    problems = []
    pods = load_pods(files)
    if set(pods) != {"load-master", "load-worker"}:
        return [f"load Jobs are {sorted(pods)}"]
    worker_job = of_kind(files, "Job", "load-worker")[0]["spec"]
    if (worker_job.get("completions"), worker_job.get("parallelism")) != (workers, workers):
        problems.append(f"worker Job runs {worker_job.get('parallelism')} pods, not {workers}")
    master_cmd = pods["load-master"]["spec"]["containers"][0]["command"][-1]
    if f"--expect-workers {workers} " not in master_cmd:
        problems.append(f"the master does not wait for {workers} workers")
    for name, pod in pods.items():
        spec = pod["spec"]
        (c,) = spec["containers"]
        sc = c["securityContext"]
        if c["image"] != image:
            problems.append(f"{name} runs {c['image']}")
        if not (spec["securityContext"]["runAsNonRoot"] and sc["runAsNonRoot"] and sc["runAsUser"] == POD_UID):
            problems.append(f"{name} may run as root")
        if (
            not sc["readOnlyRootFilesystem"]
            or sc["allowPrivilegeEscalation"]
            or sc["capabilities"] != {"drop": ["ALL"]}
        ):
            problems.append(f"{name}: root filesystem writable, escalation allowed or capabilities kept")
        if spec["securityContext"]["seccompProfile"]["type"] != "RuntimeDefault":
            problems.append(f"{name}: no RuntimeDefault seccomp")
        if c["resources"]["requests"] != c["resources"]["limits"] or not c["resources"]["limits"]:
            problems.append(f"{name}: requests differ from limits")
        empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        mounted = {m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty}
        if not {"/tmp", "/run/harness"} <= mounted:
            problems.append(f"{name}: /tmp and the run folder are not emptyDirs ({sorted(mounted)})")
        if any("valueFrom" in e or "PASSWORD" in e["name"] for e in c.get("env", [])):
            problems.append(f"{name}: a secret in the pod's environment")
    return problems


def test_load_manifests_pass_the_schemas_and_checkov(rendered_load: Rendered, tmp_path: Path) -> None:
    for name, (_, _, files) in rendered_load.items():
        assert "load.yaml" in yaml.safe_load(files[KUSTOMIZATION])["resources"], name
        for version in (VERSIONS[0], VERSIONS[-1]):
            assert schema_errors(files, version) == [], (name, version)
    report = checkov(write_all(tmp_path, {n: {"load.yaml": f["load.yaml"]} for n, (_, _, f) in rendered_load.items()}))
    assert report["summary"]["passed"] > 100, report["summary"]  # it read the Jobs of all five
    assert failed_checks(report) == []
    assert {s["check_id"] for s in report["results"]["skipped_checks"]} <= ACCEPTED_SKIPS


def test_checkov_and_the_schemas_fail_on_broken_load_manifests(rendered_load: Rendered, tmp_path: Path) -> None:
    text = rendered_load["ci"][2]["load.yaml"]
    writable = text.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    failed = failed_checks(checkov(write_all(tmp_path, {"ci": {"load.yaml": writable}})))
    assert "CKV_K8S_22 Job.redis-harness-ci.load-worker" in failed, failed
    typo = {"load.yaml": text.replace("backoffLimit: 0", "backofLimit: 0")}
    assert any("Job/load-master" in e for e in schema_errors(typo, VERSIONS[-1]))


@pytest.mark.parametrize("name", PROFILES)
def test_load_workers_image_and_hardening_land_where_they_should(rendered_load: Rendered, name: str) -> None:
    profile, _, files = rendered_load[name]
    assert load_problems(files, LOAD_WORKERS, LOAD_IMAGE) == []
    # The load pods carry a client label the Redis NetworkPolicy admits.
    labels = [pod["metadata"]["labels"][CLIENT_LABEL] for pod in load_pods(files).values()]
    assert set(labels) <= {s.name for s in profile.security.services}
    assert network_problems(files, profile) == []
    # Without --load-workers nothing of the load is rendered.
    plain = render(profile, rendered_load[name][1])
    assert "load.yaml" not in plain and not load_pods(plain)


def test_the_load_check_fails_on_a_wrong_count_image_or_hardening(rendered_load: Rendered) -> None:
    files = rendered_load["ha"][2]
    text = files["load.yaml"]
    broken = {
        "completions: 3": "completions: 2",
        LOAD_IMAGE: "docker.io/someone/else:1",
        "readOnlyRootFilesystem: true": "readOnlyRootFilesystem: false",
        "mountPath: /run/harness": "mountPath: /var/run/harness",
        "runAsUser: 10001": "runAsUser: 0",
    }
    expected = ["not 3", "runs docker.io", "root filesystem writable", "not emptyDirs", "may run as root"]
    for (old, new), phrase in zip(broken.items(), expected, strict=True):
        assert old in text, old
        problems = load_problems({**files, "load.yaml": text.replace(old, new)}, LOAD_WORKERS, LOAD_IMAGE)
        assert any(phrase in p for p in problems), (old, problems)


@pytest.mark.parametrize("name", PROFILES)
def test_no_load_manifest_holds_a_secret(rendered_load: Rendered, name: str) -> None:
    profile, secrets, files = rendered_load[name]
    assert leaked(files, secrets) == []
    planted = {"load.yaml": files["load.yaml"] + f"# {secrets.service('price').password}\n"}
    assert leaked(planted, secrets) == [f"load.yaml: secret #{2 + 0}"]
    # The load Secret env init writes holds each service's password under the key the pods read.
    (load_secret,) = [
        d for d in yaml.safe_load_all(secret_manifests(profile, secrets)) if d["metadata"]["name"] == "redis-load"
    ]
    for service in profile.security.services:
        assert load_secret["stringData"][service.name] == secrets.service(service.name).password


@pytest.mark.parametrize("name", PROFILES)
def test_the_load_target_profile_is_a_target_at_the_client_service(
    rendered_load: Rendered, name: str, tmp_path: Path
) -> None:
    """The ConfigMap's target.yaml loads as a target profile; it names the rendered Services, and TLS with it."""
    profile, _, files = rendered_load[name]
    text = of_kind(files, "ConfigMap", "load-profile")[0]["data"]["target.yaml"]
    (tmp_path / "target.yaml").write_text(text)
    target = load_profile(str(tmp_path / "target.yaml")).target
    assert target is not None
    ns = default_namespace(profile)
    where = [*target.sentinels, *target.cluster, *([target.address] if target.address else [])]
    service = "sentinel" if profile.topology.sentinel is not None else "redis"
    assert [h for h, _ in where] == [f"{service}.{ns}.svc"]
    assert (target.tls is not None) == profile.tls.enabled
    assert [s for s, _, _ in target.services()] == [s.name for s in profile.security.services]
    # Every variable the profile reads is exported by the pods from the load Secret's files.
    command = load_pods(files)["load-worker"]["spec"]["containers"][0]["command"][-1]
    for _, _, var in target.services():
        assert f"export {var}=" in command


LOAD_ARGS = ["--target", "kubernetes", "--load-workers", "2", "--load-image", LOAD_IMAGE]


@pytest.mark.parametrize(
    ("args", "phrases"),
    [
        (LOAD_ARGS[:4], ["--load-image:", "build and push"]),
        (["--target", "kubernetes", "--load-image", LOAD_IMAGE], ["--load-workers:", "number of worker pods"]),
        ([*LOAD_ARGS[:2], "--load-workers", "0", *LOAD_ARGS[4:]], ["--load-workers:", "1 to 100"]),
        ([*LOAD_ARGS[:2], "--load-workers", "x", *LOAD_ARGS[4:]], ["--load-workers", "invalid int"]),
        ([*LOAD_ARGS[:5], "redis-harness"], ["--load-image:", "no fixed version"]),
        ([*LOAD_ARGS[:5], "Registry/UPPER:1"], ["--load-image:", "not an image reference"]),
        ([*LOAD_ARGS, "--load-scenario", "eviction"], ["--load-scenario:", "smoke"]),
        (LOAD_ARGS[2:], ["--load-workers:", "--target kubernetes"]),
    ],
)
def test_bad_load_flags_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], phrases: list[str]) -> None:
    out = tmp_path / "out"
    before = tree(REPO / "kubernetes"), tree(REPO / "compose")
    assert_one_line(
        run_cli("render", "ci", *args, "--out", str(out)) if "--target" in args else run_cli("render", "ci", *args),
        2,
        *phrases,
    )
    assert not out.exists()
    assert (tree(REPO / "kubernetes"), tree(REPO / "compose")) == before


def test_render_with_load_writes_load_yaml_and_names_the_image(tmp_path: Path) -> None:
    """The command docs/kubernetes.md shows, word for word."""
    out = tmp_path / "out"
    image = "registry.example.com/team/redis-harness:0.1.0"
    result = run_cli(
        "render", "ha", "--target", "kubernetes", "--load-workers", "4", "--load-image", image,
        "--load-scenario", "raw", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "load.yaml" in result.stdout
    files = {p.name: p.read_text() for p in out.iterdir()}
    assert load_problems(files, 4, image) == []
    assert "--scenario raw " in load_pods(files)["load-master"]["spec"]["containers"][0]["command"][-1]
    # Rendered again without the load: load.yaml goes, the deployment stays.
    assert run_cli("render", "ha", "--target", "kubernetes", "--out", str(out)).returncode == 0
    assert not (out / "load.yaml").exists() and (out / "redis.yaml").exists()


def dockerfile_problems(dockerfile: str, dockerignore: str) -> list[str]:
    """The harness image: a Debian base, the package installed, a numeric non-root user last; the build
    context leaves out the secrets and state (.env*, .state/)."""
    problems = []
    lines = [line.split() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    base = next((w[1] for w in lines if w[0] == "ARG" and w[1].startswith("BASE=")), "")
    if "debian" not in base:
        problems.append(f"base {base!r} is not Debian")
    users = [w[1] for w in lines if w[0] == "USER"]
    if not users or not users[-1].split(":")[0].isdigit() or users[-1].split(":")[0] == "0":
        problems.append(f"runs as {users[-1] if users else 'root'}")
    if "pip install" not in dockerfile or "COPY loadtests/" not in dockerfile:
        problems.append("the package or its locustfiles are not installed")
    ignored = {line.strip() for line in dockerignore.splitlines()}
    for secret in (".env", ".env.*", ".state/"):
        if secret not in ignored:
            problems.append(f"{secret} is sent to the build")
    return problems


def test_the_harness_image_is_debian_non_root_and_keeps_secrets_out() -> None:
    """Checked as text: no image is built here (the base image is not reachable offline)."""
    dockerfile = (REPO / "image" / "harness" / "Dockerfile").read_text()
    dockerignore = (REPO / ".dockerignore").read_text()
    assert dockerfile_problems(dockerfile, dockerignore) == []
    assert f"USER {POD_UID}:" in dockerfile  # the uid the manifests run as
    assert "runs as root" in dockerfile_problems(dockerfile.replace("USER 10001:10001", "USER root"), dockerignore)
    assert ".env.* is sent" in " ".join(dockerfile_problems(dockerfile, dockerignore.replace(".env.*\n", "")))
    assert "not Debian" in " ".join(dockerfile_problems(dockerfile.replace("debian:", "alpine:"), dockerignore))


@pytest.mark.parametrize(
    ("pod", "sentinels_say", "replicaof"),
    [
        ("redis-1", "redis-2", "redis-2"),  # after a failover: the current primary
        ("redis-1", "redis-1", None),  # the primary restarted before Sentinel replaced it
        ("redis-1", None, "redis-0"),  # no Sentinel answers (the first start): redis-0
        ("redis-0", None, None),
        ("redis-1", "attacker.example", "redis-0"),  # only a data pod's name is taken
    ],
)
def test_a_sentinel_topology_pod_starts_as_the_sentinels_say(
    rendered: Rendered, tmp_path: Path, pod: str, sentinels_say: str | None, replicaof: str | None
) -> None:
    """The StatefulSet's start command itself, run by sh with redis-cli and redis-server stood in for; the
    runtime Secret the pod mounts holds the node-lookup password it reads."""
    profile, _, files = rendered["ha"]
    (statefulset,) = of_kind(files, "StatefulSet", "redis")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    domain = f"redis-headless.{default_namespace(profile)}.svc"
    said = f"{sentinels_say}.{domain}" if sentinels_say else None
    argv = run_start_script(tmp_path, container["command"][2], said, {"POD_NAME": pod})[1:]
    expected = ["--replicaof", f"{replicaof}.{domain}", "6379"] if replicaof else []
    assert argv == ["/etc/redis-harness/redis.conf", "--replica-announce-ip", f"{pod}.{domain}", *expected]
    (secrets,) = [v["secret"] for v in statefulset["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    assert {"key": "node-lookup", "path": "node-lookup"} in secrets["items"]


@pytest.mark.parametrize(
    ("peers_say", "watches"), [("redis-2", "redis-2"), (None, "redis-0"), ("evil.example", "redis-0")]
)
def test_a_sentinel_pod_starts_watching_the_primary_its_peers_name(
    rendered: Rendered, tmp_path: Path, peers_say: str | None, watches: str
) -> None:
    """The Sentinel StatefulSet's start command, run by sh with its files under tmp_path and redis-cli and
    redis-server stood in for: after a failover it watches the current primary, not redis-0."""
    profile, _, files = rendered["ha"]
    (statefulset,) = of_kind(files, "StatefulSet", "sentinel")
    domain = f"redis-headless.{default_namespace(profile)}.svc"
    config, secrets, data = (tmp_path / name for name in ("config", "secrets", "data"))
    for folder in (config, secrets, data):
        folder.mkdir()
    (config / "sentinel.conf").write_text(f"sentinel monitor primary redis-0.{domain} 6379 2\n")
    (secrets / "sentinel.conf").write_text("sentinel sentinel-pass peer-password\n")
    script = statefulset["spec"]["template"]["spec"]["containers"][0]["command"][2]
    script = script.replace("/etc/redis-harness/", f"{config}/").replace("/run/secrets/", f"{secrets}/")
    script = script.replace("/data/", f"{data}/")
    said = f"{peers_say}.{domain}" if peers_say else None
    argv = run_start_script(tmp_path, script, said, {"POD_NAME": "sentinel-1"})
    assert argv[0] == f"{data}/sentinel.conf" and "--sentinel" in argv
    assert (data / "sentinel.conf").read_text().splitlines()[0] == f"sentinel monitor primary {watches}.{domain} 6379 2"


@pytest.mark.parametrize("tag", ["redis-harness:0.1.0", "registry.example.com/team/redis-harness:0.1.0"])
def test_build_harness_refuses_a_tag_outside_the_local_namespace(tag: str) -> None:
    """A local build is tagged redis-harness/… (as the Redis image is), never as something to be pulled:
    refused in one line before mmdebstrap or Docker run, no wheel left in the build context."""
    result = run_cli("image", "build-harness", "--tag", tag)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"redis-harness: image build-harness: tag {tag!r} must start with redis-harness/ (a local build)"
    ]
    assert not list((REPO / "image" / "harness" / "wheels").glob("*.whl"))
