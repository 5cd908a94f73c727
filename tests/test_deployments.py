"""prefect.yaml works as the README says: a real Prefect server, `prefect deploy --all`, a process worker on the
`remind-curate` pool runs the ingest deployment (its report is an artifact in the API), then validate."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).parent / "prefect")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")



def _deployments() -> list[dict]:
    import yaml

    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.mark.timeout(60)
def test_every_deployment_entrypoint_is_a_flow():
    """What `prefect deploy --all` loads first: each entrypoint's file and its @flow function (AST, no import)."""
    import ast

    for deployment in _deployments():
        path, _, name = deployment["entrypoint"].partition(":")
        assert (REPO / path).is_file(), f"deployment {deployment['name']}: {path} does not exist"
        tree = ast.parse((REPO / path).read_text())
        flows = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                 and any("flow" in ast.unparse(d) for d in node.decorator_list)}
        assert name in flows, f"deployment {deployment['name']}: no @flow {name} in {path}"
        assert deployment["work_pool"]["name"] == "remind-curate"


@pytest.mark.slow
@pytest.mark.timeout(900)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(home: Path, api: str) -> dict[str, str]:
    """A clean Prefect environment: this test's server and home, none of the session's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_UI_ENABLED="false", PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(home / "results"),
               PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
               REMIND_CURATE_HOME=str(REPO), PYTHONUNBUFFERED="1")
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    proc = subprocess.run([PREFECT, "--no-prompt", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _stop(proc: subprocess.Popen | None) -> None:
    """End a process group this test started (server or worker, with the flow runs it spawned)."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


def _wait_healthy(api: str, server: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert server.poll() is None, f"the Prefect server exited:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{api}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the Prefect server was not healthy within {timeout} s:\n{log.read_text()[-3000:]}")


def _wait_final(api: str, flow_run_id: str, worker: subprocess.Popen, log: Path, timeout: float = 600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10).json()
        state = (run.get("state") or {}).get("type")
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        assert worker.poll() is None, f"the worker exited:\n{log.read_text()[-3000:]}"
        time.sleep(1)
    pytest.fail(f"flow run {flow_run_id} did not finish within {timeout} s:\n{log.read_text()[-3000:]}")


def _markdown_artifact(api: str, flow_run_id: str, key: str) -> str:
    """Read a run's markdown artifact through the Prefect client (pointed at this test's server)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    assert artifacts, f"no '{key}' artifact for flow run {flow_run_id}"
    return str(artifacts[0].data)


def test_deploy_and_run_ingest_then_validate_on_a_worker(tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = _env(home, api)
    out = tmp_path / "nightly"
    server = worker = None
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    try:
        with open(server_log, "w") as log:
            server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                      cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        _wait_healthy(api, server, server_log)

        _run(["work-pool", "create", "remind-curate", "--type", "process"], env)
        # By name: `--all` also needs every other entrypoint (test_every_deployment_entrypoint_is_a_flow).
        _run(["deploy", "--name", "ingest", "--name", "validate"], env, timeout=600)
        listed = _run(["deployment", "ls"], env)
        assert "ingest/ingest" in listed and "validate/validate" in listed, listed
        ingest = httpx.get(f"{api}/deployments/name/ingest/ingest", timeout=10).json()
        assert ingest["work_pool_name"] == "remind-curate"
        # `prefect deploy` resolves {{ $REMIND_CURATE_HOME }} from ITS environment and stores the path.
        assert ingest["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"] \
            == str(REPO)
        assert [s["schedule"]["cron"] for s in ingest["schedules"]] == ["0 2 * * *"]

        started = _run(["deployment", "run", "ingest/ingest", "--param", "source=synthetic:2",
                        "--param", f"out={out}"], env)
        ingest_run = UUID.search(started.split("UUID", 1)[-1]).group(0)

        with open(worker_log, "w") as log:
            worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "remind-curate", "--limit", "1",
                                       "--prefetch-seconds", "5"], cwd=tmp_path, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        final = _wait_final(api, ingest_run, worker, worker_log)
        assert final["state"]["type"] == "COMPLETED", (final["state"], worker_log.read_text()[-4000:])
        report = _markdown_artifact(api, ingest_run, "ingest-report")
        assert "# remind-curate run ingest-" in report and "inputs: 2" in report, report
        assert "### Rows by status" in report and str(out) in report, report
        assert (out / "metrics.json").exists() and list((out / "shards").glob("shard-*.tar"))

        started = _run(["deployment", "run", "validate/validate", "--param", f"path={out}"], env)
        validate_run = UUID.search(started.split("UUID", 1)[-1]).group(0)
        final = _wait_final(api, validate_run, worker, worker_log)
        assert final["state"]["type"] == "COMPLETED", (final["state"], worker_log.read_text()[-4000:])
        assert ": OK" in _markdown_artifact(api, validate_run, "validate-report")
    finally:
        _stop(worker)
        _stop(server)
        shutil.rmtree(home, ignore_errors=True)
