"""Profile + secrets -> Kubernetes manifests and a kustomization.yaml (`render --target kubernetes`).

The second renderer of the one profile (the first is the compose file): redis.conf, users.acl and
sentinel.conf are the compose deployment's own text (render/files.py's node context), with one
difference, where Sentinels find the first primary: its pod's DNS name instead of a compose service.
The rest of the node's identity (announced names, whom a replica follows) is passed per pod as
arguments, as the compose file does.

No manifest holds a password: ACL users carry SHA-256 hashes, and the pods read their secret files
from a Secret the manifests only name; `redis-harness env init PROFILE --kubernetes` writes them
(secret_manifests) to a 0600 file outside the rendered folder.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from redis_harness import paths
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import MASTER_NAME
from redis_harness.render.files import environment, node_context, write_files
from redis_harness.render.secret_files import DATA_NODE_SECRETS, secret_files

# Secrets the manifests name and `env init --kubernetes` fills.
RUNTIME_SECRET = "redis-runtime"  # the data nodes' and Sentinels' secret files (render/secret_files.py)
KUSTOMIZATION = "kustomization.yaml"
# With security.tls: the kubernetes.io/tls Secret (ca.crt, tls.crt, tls.key) the cluster's PKI provides.
TLS_SECRET = "redis-tls"
SECRETS_FILE = "kubernetes-secrets.yaml"  # in .state/<profile>/, never in the rendered folder
# Pods label themselves `redis-harness/client: <service>` to be let in (NetworkPolicy).
CLIENT_LABEL = "redis-harness/client"
# Above the host's system users (checkov CKV_K8S_40): a uid no host account shares. The image's files are
# world-readable and Redis writes only to /data and /tmp, which the pod's fsGroup owns.
POD_UID = 10001
CLUSTER_BUS_OFFSET = 10000  # Redis Cluster's node-to-node bus: the client port + 10000
SENTINEL_PORT = 26379
# A pod's volume for AOF + RDB: the data set can be maxmemory, and an AOF rewrite or RDB save writes a
# second copy beside the first, so 4x the container limit, at least 1 GiB.
STORAGE_FACTOR = 4
MIN_STORAGE_MIB = 1024
# The one-shot cluster-create Job: small, fixed limits.
JOB_MEMORY_MIB, JOB_CPU_MILLI = 64, 100
JOB_TTL_S = 300
NAMESPACE_MAX = 63


# Load from inside the cluster (`--load-workers N --load-image REF`): a Locust master Job, N worker pods.
LOAD_SECRET = "redis-load"  # the service users' passwords (and the Sentinels'), as files; env init fills it
LOAD_PORT = 5557  # the master's --master-port (Locust's default)
LOAD_RUN_DIR = "/run/harness"  # the master's run folder (an emptyDir): `kubectl cp` takes the report from here
LOAD_PROFILE_DIR = "/etc/redis-harness"  # the target profile, from a ConfigMap
LOAD_SECRETS_DIR = "/run/secrets/load"  # the load Secret's files; the pod's shell exports them
LOAD_TLS_DIR = "/run/secrets/tls"  # with TLS: the redis-tls Secret's ca.crt (tls.crt, tls.key for mutual TLS)
LOAD_MAX_WORKERS = 100
# Fixed limits: a worker is one Locust process (one core flat out); the master only aggregates and reports.
LOAD_MASTER = {"memory_mib": 512, "cpu_milli": 500}
LOAD_WORKER = {"memory_mib": 512, "cpu_milli": 1000}
LOAD_KEEP_S = 3600  # how long the finished master waits for its report to be copied out
# [registry[:port]/]path[:tag][@sha256:digest], as Docker's reference grammar has it (lower-case repository).
_IMAGE_REF = re.compile(
    r"^(?P<name>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?P<digest>@sha256:[0-9a-f]{64})?$"
)


@dataclass(frozen=True)
class LoadOptions:
    image: str
    workers: int
    scenario: str = "smoke"


@dataclass(frozen=True)
class KubernetesOptions:
    namespace: str
    create_namespace: bool = True
    load: LoadOptions | None = None


def check_load_options(image: str | None, workers: int | None, scenario: str | None) -> LoadOptions | None:
    """--load-workers N --load-image REF [--load-scenario NAME]: all or none; no default registry."""
    if workers is None and image is None and scenario is None:
        return None
    if workers is None:
        raise BadInput("--load-workers: load manifests need the number of worker pods; add --load-workers N (1-100)")
    if not 1 <= workers <= LOAD_MAX_WORKERS:
        raise BadInput(f"--load-workers: {workers} is not from 1 to {LOAD_MAX_WORKERS}; give the worker pods to run")
    if not image:
        raise BadInput(
            "--load-image: load manifests need the harness image your cluster pulls; build and push it "
            "(docs/kubernetes.md), then add --load-image REGISTRY/redis-harness:TAG"
        )
    ref = _IMAGE_REF.match(image)
    if not ref:
        raise BadInput(
            f"--load-image: {image!r} is not an image reference; e.g. registry.example.com/redis-harness:0.1.0"
        )
    if not ref["digest"] and ref["tag"] in (None, "latest"):
        raise BadInput(f"--load-image: {image!r} names no fixed version; add a tag other than latest (or @sha256:…)")
    return LoadOptions(image, workers, scenario or "smoke")


def default_namespace(profile: Profile) -> str:
    """redis-harness-<name>: a profile name may hold `_`, which a DNS label may not."""
    return profile.project.replace("_", "-")


def check_namespace(namespace: str) -> str:
    """A DNS-1123 label, as Kubernetes requires of a namespace."""
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", namespace) or len(namespace) > NAMESPACE_MAX:
        raise BadInput(
            f"--namespace: {namespace!r} is not a Kubernetes namespace name; use up to 63 lower-case letters, "
            "digits and -, starting and ending with a letter or digit"
        )
    return namespace


def default_out(profile: Profile) -> Path:
    return paths.ROOT / "kubernetes" / profile.name


def storage_mib(profile: Profile) -> int:
    return max(MIN_STORAGE_MIB, math.ceil(STORAGE_FACTOR * profile.resources.memory_bytes / 1024**2))


def data_node_count(profile: Profile) -> int:
    return len(profile.data_nodes)


def _headless(service: str, namespace: str) -> str:
    """The DNS suffix of a StatefulSet's pods, reachable from any namespace (`<pod>.<suffix>`)."""
    return f"{service}.{namespace}.svc"


def _context(profile: Profile, secrets: Secrets, options: KubernetesOptions) -> dict[str, object]:
    ns = options.namespace
    redis_domain = _headless("redis-headless", ns)
    context = node_context(profile, secrets)
    context["primary_host"] = f"redis-0.{redis_domain}"
    runtime_keys = [f.name for f in secret_files(profile, secrets)]
    return {
        **context,
        "ns": ns,
        "options": options,
        "redis_domain": redis_domain,
        "sentinel_domain": _headless("sentinel-headless", ns),
        "replicas": data_node_count(profile),
        "data_secret_keys": [k for k in runtime_keys if k in DATA_NODE_SECRETS],
        "runtime_secret": RUNTIME_SECRET,
        "tls_secret": TLS_SECRET,
        "client_label": CLIENT_LABEL,
        "clients": [s.name for s in profile.security.services],
        "uid": POD_UID,
        "memory_bytes": profile.resources.memory_bytes,
        "cpu_milli": max(1, round(profile.resources.cpus * 1000)),
        "storage_mib": storage_mib(profile),
        "storage_factor": STORAGE_FACTOR,
        "job_ttl_s": JOB_TTL_S,
        "bus_port": profile.network.container_port + CLUSTER_BUS_OFFSET,
        "sentinel_port": SENTINEL_PORT,
        "job": {"memory_mib": JOB_MEMORY_MIB, "cpu_milli": JOB_CPU_MILLI},
        "load": options.load,
    }


def manifest_templates(profile: Profile, options: KubernetesOptions) -> dict[str, str]:
    """Manifest file -> template, for this profile's topology and options (kustomization.yaml lists them)."""
    files = {}
    if options.create_namespace:
        files["namespace.yaml"] = "kubernetes/namespace.yaml.j2"
    files["configmap.yaml"] = "kubernetes/configmap.yaml.j2"
    files["redis.yaml"] = "kubernetes/redis.yaml.j2"
    if profile.topology.sentinel is not None:
        files["sentinel.yaml"] = "kubernetes/sentinel.yaml.j2"
    if profile.topology.cluster is not None:
        files["cluster-create.yaml"] = "kubernetes/cluster-create.yaml.j2"
    files["networkpolicy.yaml"] = "kubernetes/networkpolicy.yaml.j2"
    if options.load is not None:
        files["load.yaml"] = "kubernetes/load.yaml.j2"
    return files


def load_secret_keys(profile: Profile) -> dict[str, str]:
    """Key in the load Secret -> the variable the target profile reads it from: each service's password, and
    the Sentinels' (the default user's) when there are Sentinels."""
    keys = {s.name: s.password_env for s in profile.security.services}
    if profile.topology.sentinel is not None:
        keys["sentinel"] = "REDIS_SENTINEL_PASSWORD"
    return keys


def load_target_profile(profile: Profile, namespace: str) -> str:
    """The target profile the load pods run with: the rendered client Service, the profile's services (their
    passwords from the load Secret's files, exported by the pod's shell), TLS with the cluster's CA."""
    port = profile.network.container_port
    target: dict[str, object] = {}
    if profile.topology.sentinel is not None:
        target["sentinels"] = [f"sentinel.{namespace}.svc:{SENTINEL_PORT}"]
        target["master_name"] = MASTER_NAME
        target["sentinel_password_env"] = "REDIS_SENTINEL_PASSWORD"
    elif profile.topology.cluster is not None:
        target["cluster"] = [f"redis.{namespace}.svc:{port}"]
    else:
        target["address"] = f"redis.{namespace}.svc:{port}"
    if profile.tls.enabled:
        tls: dict[str, str] = {"ca_file": f"{LOAD_TLS_DIR}/ca.crt", "min_version": profile.tls.min_version}
        if profile.tls.client_auth != "none":  # the cluster PKI's certificate in redis-tls serves as the client's
            tls |= {"cert_file": f"{LOAD_TLS_DIR}/tls.crt", "key_file": f"{LOAD_TLS_DIR}/tls.key"}
        target["tls"] = tls
    keys = load_secret_keys(profile)
    target["services"] = {s.name: {"password_env": keys[s.name]} for s in profile.security.services}
    target["eviction_policy"] = profile.memory.policy
    text = yaml.safe_dump({"name": profile.name, "target": target}, sort_keys=False, default_flow_style=False)
    return f"# The rendered deployment as a target, from inside the cluster (no password here).\n{text}"


def kubernetes_files(profile: Profile, secrets: Secrets, options: KubernetesOptions) -> dict[str, str]:
    """File name -> rendered text, in memory: the manifests and the kustomization.yaml listing them."""
    env = environment()
    context = _context(profile, secrets, options)
    node_files = {"redis.conf": "redis.conf.j2", "users.acl": "users.acl.j2"}
    if profile.topology.sentinel is not None:
        node_files["sentinel.conf"] = "sentinel.conf.j2"
    config_files = {name: env.get_template(t).render(context) for name, t in node_files.items()}
    context["config_files"] = config_files
    context["config_sha256"] = hashlib.sha256("\0".join(config_files.values()).encode()).hexdigest()
    if options.load is not None:
        context |= {
            "load_profile": load_target_profile(profile, options.namespace),
            "load_keys": load_secret_keys(profile),
            "load_secret": LOAD_SECRET,
            "load_port": LOAD_PORT,
            "load_run_dir": LOAD_RUN_DIR,
            "load_profile_dir": LOAD_PROFILE_DIR,
            "load_secrets_dir": LOAD_SECRETS_DIR,
            "load_tls_dir": LOAD_TLS_DIR,
            "load_master": LOAD_MASTER,
            "load_worker": LOAD_WORKER,
            "load_keep_s": LOAD_KEEP_S,
            "load_by_digest": "@sha256:" in options.load.image,
        }
    files = {name: env.get_template(t).render(context) for name, t in manifest_templates(profile, options).items()}
    files[KUSTOMIZATION] = env.get_template("kubernetes/kustomization.yaml.j2").render(
        {**context, "resources": list(files)}
    )
    return files


def write_manifests(files: dict[str, str], target: Path) -> Path:
    """Each file written atomically (the compose renderer's writer). Manifests an earlier render listed in
    its kustomization.yaml that this one no longer has (a topology changed) are removed; nothing else."""
    try:
        earlier = _listed_resources(target / KUSTOMIZATION)
        write_files(files, target)
        for stale in earlier - set(files):
            (target / stale).unlink(missing_ok=True)
    except OSError as exc:
        raise BadInput(
            f"render: cannot write {target}/ ({exc.strerror or exc}); make it and {target.parent}/ writable, "
            "or choose another folder with --out"
        ) from None
    return target


def _listed_resources(kustomization: Path) -> set[str]:
    """The plain file names a kustomization.yaml rendered here lists (one written by hand is left alone)."""
    if not kustomization.is_file():
        return set()
    text = kustomization.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("# Rendered by redis-harness"):
        return set()
    try:
        listed = (yaml.safe_load(text) or {}).get("resources") or []
    except yaml.YAMLError:
        return set()
    return {name for name in listed if isinstance(name, str) and "/" not in name and name.endswith(".yaml")}


# --------------------------------------------------------------------------- the Secrets (never rendered)


def secret_manifests(profile: Profile, secrets: Secrets) -> str:
    """The Secret the manifests name, with the passwords: for `env init --kubernetes` only."""
    runtime = {f.name: f.content for f in secret_files(profile, secrets)}
    load = {key: secrets.service(key).password for key in load_secret_keys(profile) if key != "sentinel"}
    if profile.topology.sentinel is not None:
        load["sentinel"] = secrets.sentinel_password
    documents = [
        _secret(RUNTIME_SECRET, runtime, profile, "the data nodes' and Sentinels' secret files"),
        _secret(LOAD_SECRET, load, profile, "the service users' passwords, for the load pods (render --load-workers)"),
    ]
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, width=1000)


def _secret(name: str, data: dict[str, str], profile: Profile, what: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "redis-harness", "app.kubernetes.io/instance": profile.name},
            "annotations": {"redis-harness/holds": what},
        },
        "type": "Opaque",
        "stringData": data,
    }


def secrets_path(profile: Profile) -> Path:
    return paths.state_dir(profile.name) / SECRETS_FILE


def write_secret_manifests(profile: Profile, secrets: Secrets) -> Path:
    """.state/<profile>/kubernetes-secrets.yaml, mode 0600 from its first byte, replaced atomically: it is
    derived from the profile's .env, so a second run brings it up to date."""
    target = secrets_path(profile)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o700)
    fd, staging = tempfile.mkstemp(prefix=f".{SECRETS_FILE}.", dir=target.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret_manifests(profile, secrets))
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target
