"""The load pods' own commands, run: what `render --load-workers 2` puts in the master's and the workers'
containers (their `sh -c` lines, word for word), run as processes on this host against the session's real
`ci` deployment. There is no cluster here, so the test stands in for the cluster's parts: the ConfigMap's
target.yaml and the load Secret's files are written to folders, the pods' mount paths point there, and the
client Service's DNS name is the deployment's published address. It shows the rendered target profile,
the password export from files and the master/worker lines making one distributed run and one report,
with no password on any process's command line."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml

from redis_harness.render.kubernetes import (
    LOAD_PORT,
    LOAD_PROFILE_DIR,
    LOAD_RUN_DIR,
    LOAD_SECRET,
    LOAD_SECRETS_DIR,
    KubernetesOptions,
    LoadOptions,
    default_namespace,
    kubernetes_files,
    secret_manifests,
)

from .conftest import REPO, Deployment

pytestmark = pytest.mark.integration

MASTER_PORT = 6925  # the k8sload lane's range, instead of the pod's 5557


def _pod_command(files: dict[str, str], job: str) -> str:
    (doc,) = [
        d for d in yaml.safe_load_all(files["load.yaml"]) if d and d["metadata"]["name"] == job and d["kind"] == "Job"
    ]
    return doc["spec"]["template"]["spec"]["containers"][0]["command"][-1]


def test_the_load_pods_commands_make_one_distributed_run(ci_deployment: Deployment, tmp_path: Path) -> None:
    profile, secrets = ci_deployment.profile, ci_deployment.secrets
    ns = default_namespace(profile)
    files = kubernetes_files(profile, secrets, KubernetesOptions(ns, load=LoadOptions("registry.example.com/rh:1", 2)))
    # The ConfigMap's target.yaml, with the Service's name resolved to the deployment's published address.
    (config_map,) = [d for d in yaml.safe_load_all(files["load.yaml"]) if d and d["kind"] == "ConfigMap"]
    service = f"redis.{ns}.svc:{profile.network.container_port}"
    target = config_map["data"]["target.yaml"]
    assert service in target
    profile_dir, secrets_dir, run_dir = tmp_path / "profile", tmp_path / "secrets", tmp_path / "run"
    for folder in (profile_dir, secrets_dir, run_dir):
        folder.mkdir()
    (profile_dir / "target.yaml").write_text(target.replace(service, f"{profile.network.host}:{profile.network.port}"))
    # The load Secret as env init writes it, mounted as files.
    (load_secret,) = [
        d for d in yaml.safe_load_all(secret_manifests(profile, secrets)) if d["metadata"]["name"] == LOAD_SECRET
    ]
    for key, value in load_secret["stringData"].items():
        (secrets_dir / key).write_text(value)
    (run_dir / "collected").touch()  # as after `kubectl cp`: the master exits once the run is over

    def local(command: str) -> str:
        for pod_path, here in (
            (LOAD_PROFILE_DIR, profile_dir),
            (LOAD_SECRETS_DIR, secrets_dir),
            (LOAD_RUN_DIR, run_dir),
        ):
            command = command.replace(pod_path, str(here))
        command = command.replace(f"--master-port {LOAD_PORT}", f"--master-port {MASTER_PORT}")
        return command.replace("--master-bind-host 0.0.0.0", "--master-bind-host 127.0.0.1").replace(
            "--master-host load-master", "--master-host 127.0.0.1"
        )

    # No REDIS_* variable from the test: the passwords come from the files only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env |= {
        "PATH": f"{REPO / '.venv' / 'bin'}:{env['PATH']}",
        "HOME": str(tmp_path),
        "REDIS_HARNESS_ENV_FILE": "/nonexistent",
    }

    def start(job: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["sh", "-c", local(_pod_command(files, job))],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    master = start("load-master")
    workers = [start("load-worker") for _ in range(2)]
    time.sleep(5)
    command_lines = " ".join(" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))
    out, err = master.communicate(timeout=240)
    worker_results = [w.communicate(timeout=60) for w in workers]
    print(out[-3000:], err[-2000:])
    assert [w.returncode for w in workers] == [0, 0], worker_results
    assert "report: " in out
    assert not [i for i, pw in enumerate(secrets.all_passwords()) if pw in command_lines]
    report_dir = run_dir / "report"
    assert json.loads((report_dir / "raw.json").read_text())["settings"]["workers"] == 2
    report = json.loads((report_dir / "report.json").read_text())
    # The Job's exit code is the run's verdict (gates judge timings on a shared host: either may come out).
    assert master.returncode == (0 if report["passed"] else 1), f"{err}\nworkers: {worker_results}"
    roles = sorted(p["role"].split()[0] for p in report["generator"]["processes"])
    assert roles == ["master", "worker", "worker"]
    assert sum(c["count"] for c in report["commands"].values()) > 0
