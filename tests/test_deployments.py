"""prefect.yaml works as the README says: a real Prefect server, `prefect deploy --all`, a process worker on the
`remind-curate` pool runs the ingest deployment (its report is an artifact in the API), then regenerate, train and
validate on its output, and validate again on a broken shard (the run fails)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
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


def _drop_member(src: Path, dst: Path, ext: str) -> None:
    """Copy a shard without the first sample's ``ext`` member."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        members = tin.getmembers()
        first = members[0].name.split(".", 1)[0]
        for info in members:
            if info.name != f"{first}.{ext}":
                tout.addfile(info, tin.extractfile(info))


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


def _start(deployment: str, env: dict[str, str], **params: object) -> str:
    """`prefect deployment run` with ``params``; the new flow run's id."""
    args = ["deployment", "run", deployment]
    for name, value in params.items():
        args += ["--param", f"{name}={value}"]
    return UUID.search(_run(args, env).split("UUID", 1)[-1]).group(0)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_deploy_and_run_every_deployment_on_a_worker(tmp_path):
    """ingest, then regenerate, train and validate from its output, all through one worker; validate fails the
    run on a bad shard."""
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
        _run(["deploy", "--all"], env, timeout=600)  # as the README says
        listed = _run(["deployment", "ls"], env)
        for name in ("ingest/ingest", "regenerate/regenerate", "train/train", "validate/validate"):
            assert name in listed, listed
        ingest = httpx.get(f"{api}/deployments/name/ingest/ingest", timeout=10).json()
        assert ingest["work_pool_name"] == "remind-curate"
        # `prefect deploy` resolves {{ $REMIND_CURATE_HOME }} from ITS environment and stores the path.
        assert ingest["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"] \
            == str(REPO)
        assert [s["schedule"]["cron"] for s in ingest["schedules"]] == ["0 2 * * *"]

        ingest_run = _start("ingest/ingest", env, source="synthetic:2", out=out)

        with open(worker_log, "w") as log:
            worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", "remind-curate", "--limit", "1",
                                       "--prefetch-seconds", "5"], cwd=tmp_path, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        final = _wait_final(api, ingest_run, worker, worker_log)
        assert final["state"]["type"] == "COMPLETED", (final["state"], worker_log.read_text()[-4000:])
        report = _markdown_artifact(api, ingest_run, "ingest-report")
        assert "# remind-curate run ingest-" in report and "inputs: 2" in report, report
        assert "### Rows by status" in report and str(out) in report, report
        assert (out / "metrics.json").exists() and list((out / "shards").glob("shard-*.tar")), report

        validate_run = _start("validate/validate", env, path=out)
        final = _wait_final(api, validate_run, worker, worker_log)
        assert final["state"]["type"] == "COMPLETED", (final["state"], worker_log.read_text()[-4000:])
        assert ": OK" in _markdown_artifact(api, validate_run, "validate-report")

        # regenerate from the ingest's cache into a new output
        regen_out = tmp_path / "regenerated"
        regen_run = _start("regenerate/regenerate", env, source_out=out, out=regen_out)
        final = _wait_final(api, regen_run, worker, worker_log)
        assert final["state"]["type"] == "COMPLETED", (final["state"], worker_log.read_text()[-4000:])
        assert "# remind-curate run regenerate-" in _markdown_artifact(api, regen_run, "regenerate-report")
        run_record = json.loads((regen_out / "run.json").read_text())
        assert run_record["kind"] == "regenerate" and run_record["parent"] == str(out)
        assert list((regen_out / "shards").glob("shard-*.tar"))

        # train two steps of the tiny model on the ingest's shards (the deployment's relative config path
        # resolves against the stored working directory)
        train_out = tmp_path / "train"
        train_run = _start("train/train", env, shards=out / "shards", out=train_out, max_steps=2)
        final = _wait_final(api, train_run, worker, worker_log)
        assert final["state"]["type"] == "COMPLETED", (final["state"], worker_log.read_text()[-4000:])
        assert "steps 1..2" in _markdown_artifact(api, train_run, "train-summary")
        steps = [json.loads(line)["step"] for line in (train_out / "metrics.jsonl").read_text().splitlines()]
        assert steps and max(steps) == 2

        # a CI job validating a shard someone broke: the flow run fails and says which sample and why
        bad = tmp_path / "bad"
        bad.mkdir()
        _drop_member(sorted((out / "shards").glob("shard-*.tar"))[0], bad / "shard-000000.tar", "graph.json")
        failing_run = _start("validate/validate", env, path=bad)
        final = _wait_final(api, failing_run, worker, worker_log)
        assert final["state"]["type"] == "FAILED", final["state"]
        assert "missing required entry 'graph.json'" in _markdown_artifact(api, failing_run, "validate-report")
    finally:
        _stop(worker)
        _stop(server)
        shutil.rmtree(home, ignore_errors=True)
