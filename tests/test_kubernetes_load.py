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
    POD_UID,
    KubernetesOptions,
    LoadOptions,
    default_namespace,
    kubernetes_files,
    secret_manifests,
)

from .conftest import REPO, Deployment

pytestmark = pytest.mark.integration

MASTER_PORT = 6925  # the k8sload lane's range, instead of the pod's 5557


class PodStandIns:
    """The load pods' mounts as folders of this host: the ConfigMap's target.yaml (the client Service's name
    resolved to the deployment's published address), the load Secret's files (0440, owned by the pods'
    uid and fsGroup as the pod's defaultMode and fsGroup make them), and the master's run folder."""

    def __init__(self, deployment: Deployment, tmp_path: Path) -> None:
        profile, secrets = deployment.profile, deployment.secrets
        ns = default_namespace(profile)
        options = KubernetesOptions(ns, load=LoadOptions("registry.example.com/rh:1", 2))
        self.files = kubernetes_files(profile, secrets, options)
        (config_map,) = [d for d in yaml.safe_load_all(self.files["load.yaml"]) if d and d["kind"] == "ConfigMap"]
        service = f"redis.{ns}.svc:{profile.network.container_port}"
        target = config_map["data"]["target.yaml"]
        assert service in target
        self.mounts = {LOAD_PROFILE_DIR: tmp_path / "profile", LOAD_SECRETS_DIR: tmp_path / "secrets",
                       LOAD_RUN_DIR: tmp_path / "run"}  # fmt: skip
        for folder in self.mounts.values():
            folder.mkdir()
        published = f"{profile.network.host}:{profile.network.port}"
        (self.mounts[LOAD_PROFILE_DIR] / "target.yaml").write_text(target.replace(service, published))
        (load_secret,) = [
            d for d in yaml.safe_load_all(secret_manifests(profile, secrets)) if d["metadata"]["name"] == LOAD_SECRET
        ]
        for key, value in load_secret["stringData"].items():
            path = self.mounts[LOAD_SECRETS_DIR] / key
            path.write_text(value)
            os.chown(path, POD_UID, POD_UID)
            path.chmod(0o440)
        run_dir = self.mounts[LOAD_RUN_DIR]
        (run_dir / "collected").touch()  # as after `kubectl cp`: the master exits once the run is over
        os.chown(run_dir, POD_UID, POD_UID)  # the emptyDir the pod's uid writes the report to
        for folder in (tmp_path, *self.mounts.values()):
            folder.chmod(folder.stat().st_mode | 0o055)
        self.run_dir = run_dir

    def command(self, job: str, *, local_paths: bool) -> str:
        """The Job's container command, with the in-cluster names replaced by this host's."""
        (doc,) = [
            d
            for d in yaml.safe_load_all(self.files["load.yaml"])
            if d and d["metadata"]["name"] == job and d["kind"] == "Job"
        ]
        command = doc["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        if local_paths:
            for pod_path, here in self.mounts.items():
                command = command.replace(pod_path, str(here))
        command = command.replace(f"--master-port {LOAD_PORT}", f"--master-port {MASTER_PORT}")
        return command.replace("--master-bind-host 0.0.0.0", "--master-bind-host 127.0.0.1").replace(
            "--master-host load-master", "--master-host 127.0.0.1"
        )


def _judge(
    stand_ins: PodStandIns,
    secrets: object,
    master: subprocess.Popen[str],
    workers: list[subprocess.Popen[str]],
) -> None:
    """One distributed run, one report, the master's exit code the verdict, no password on a command line."""
    time.sleep(5)
    command_lines = " ".join(" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))
    out, err = master.communicate(timeout=240)
    print(out[-3000:], err[-2000:])  # before the workers' wait: a master that failed at once says why
    worker_results = [w.communicate(timeout=60) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], worker_results
    assert "report: " in out
    assert not [i for i, pw in enumerate(secrets.all_passwords()) if pw in command_lines]  # type: ignore[attr-defined]
    report_dir = stand_ins.run_dir / "report"
    assert json.loads((report_dir / "raw.json").read_text())["settings"]["workers"] == 2
    report = json.loads((report_dir / "report.json").read_text())
    # The Job's exit code is the run's verdict (gates judge timings on a shared host: either may come out).
    assert master.returncode == (0 if report["passed"] else 1), f"{err}\nworkers: {worker_results}"
    roles = sorted(p["role"].split()[0] for p in report["generator"]["processes"])
    assert roles == ["master", "worker", "worker"]
    assert sum(c["count"] for c in report["commands"].values()) > 0


def test_the_load_pods_commands_make_one_distributed_run(ci_deployment: Deployment, tmp_path: Path) -> None:
    stand_ins = PodStandIns(ci_deployment, tmp_path)
    # No REDIS_* variable from the test: the passwords come from the files only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env |= {
        "PATH": f"{REPO / '.venv' / 'bin'}:{env['PATH']}",
        "HOME": str(tmp_path),
        "REDIS_HARNESS_ENV_FILE": "/nonexistent",
    }

    def start(job: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["sh", "-c", stand_ins.command(job, local_paths=True)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    _judge(stand_ins, ci_deployment.secrets, start("load-master"), [start("load-worker") for _ in range(2)])


def test_the_harness_image_runs_the_load_pods_commands(ci_deployment: Deployment, tmp_path: Path) -> None:
    """`image build-harness` makes the image the load pods run, from Debian's packages and wheels; the same
    run with every pod a container of it, hardened as the pod spec is (uid 10001, read-only root, /tmp a
    tmpfs, no capability, no privilege escalation), the mounts at the pods' own paths and the host's network
    in place of the Service's. The first image failed here: its state went to the read-only root."""
    harness_image = "redis-harness/harness:test"
    built = subprocess.run(
        [str(REPO / ".venv" / "bin" / "redis-harness"), "image", "build-harness", "--tag", harness_image],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    stand_ins = PodStandIns(ci_deployment, tmp_path)
    names = []

    def start(job: str) -> subprocess.Popen[str]:
        name = f"rh-k8sload-{job}-{len(names)}"
        names.append(name)
        volumes = [a for pod, here in stand_ins.mounts.items() for a in ("-v", f"{here}:{pod}")]
        return subprocess.Popen(
            ["docker", "run", "--rm", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
             "--user", f"{POD_UID}:{POD_UID}", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
             *volumes, "--entrypoint", "sh", harness_image, "-c", stand_ins.command(job, local_paths=False)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    try:
        _judge(stand_ins, ci_deployment.secrets, start("load-master"), [start("load-worker") for _ in range(2)])
        # Nothing of the run's secrets is in what Docker keeps of the containers either.
        shown = subprocess.run(["docker", "image", "inspect", harness_image], capture_output=True, text=True)
        assert not [pw for pw in ci_deployment.secrets.all_passwords() if pw in shown.stdout]
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, timeout=60)
        subprocess.run(["docker", "image", "rm", "-f", harness_image], capture_output=True, timeout=60)
