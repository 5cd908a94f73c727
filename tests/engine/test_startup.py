"""The temporary Prefect server a flow command launches before its imports (remind_curate/prefect_server.py).

Each case runs in a fresh interpreter, as the command does: Prefect not yet imported, a Prefect home of its own."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

RUN_FLOW = """
import json, os, sys
from remind_curate.prefect_server import prefect_api
with prefect_api() as server:
    from prefect import flow
    @flow
    def double(x: int) -> int:
        return 2 * x
    if server is not None:
        server.wait_ready()
    out = {"server": server is not None, "pid": server.process.pid if server else None,
           "env_url": os.environ.get("PREFECT_API_URL"), "result": double(21)}
    from prefect.settings import PREFECT_API_URL
    out["settings_url"] = PREFECT_API_URL.value()
    import psutil
    out["servers"] = sum("create_app" in " ".join(c.cmdline()) for c in psutil.Process().children()
                         if c.status() != psutil.STATUS_ZOMBIE)
out["env_after"] = os.environ.get("PREFECT_API_URL")
out["stopped"] = server is None or server.process.poll() is not None  # by prefect_api, not by our own exit
print("RESULT " + json.dumps(out))
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    (tmp_path / "prefect").mkdir(parents=True, exist_ok=True)
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90", PYTHONPATH=str(ROOT), **extra)
    return env


def _run(code: str, env: dict[str, str], timeout: float = 120) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(env.get("CWD", ROOT)), env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.timeout(150)
def test_a_flow_runs_against_the_early_server_which_is_gone_afterwards(tmp_path):
    out = _run(RUN_FLOW, _env(tmp_path))
    assert out["server"] and out["result"] == 42 and out["servers"] == 1
    assert out["env_url"] == out["settings_url"] and out["env_url"].startswith("http://127.0.0.1:")
    assert out["env_after"] is None and out["stopped"]  # the server and its URL end with the context
    assert not psutil.pid_exists(out["pid"]) or psutil.Process(out["pid"]).status() == psutil.STATUS_ZOMBIE


@pytest.mark.timeout(150)
def test_a_configured_server_is_used_and_none_is_started(tmp_path):
    """A profile naming a server (not the environment): the early launch is dropped, Prefect talks to that one."""

    first = subprocess.Popen([sys.executable, "-c", RUN_FLOW.replace("server.wait_ready()", "server.wait_ready(); "
                              "print('URL ' + server.api_url, flush=True); import time; time.sleep(60)")],
                             cwd=str(ROOT), env=_env(tmp_path / "a"), stdout=subprocess.PIPE, text=True)
    try:
        url = next(x for x in first.stdout if x.startswith("URL ")).split()[1]
        profiles = tmp_path / "b" / "profiles.toml"
        profiles.parent.mkdir(parents=True)
        profiles.write_text(f'active = "remote"\n[profiles.remote]\nPREFECT_API_URL = "{url}"\n')
        out = _run(RUN_FLOW, _env(tmp_path / "b", PREFECT_PROFILES_PATH=str(profiles)))
        assert not out["server"] and out["result"] == 42 and out["settings_url"] == url
        assert out["env_url"] is None
        assert out["servers"] == 0  # the server launched before Prefect's import was stopped once the profile was read
    finally:
        first.kill()
        first.wait()


@pytest.mark.timeout(120)
def test_the_server_dies_with_a_killed_command(tmp_path):
    code = RUN_FLOW.replace("server.wait_ready()", "server.wait_ready(); print('PID %d' % server.process.pid, "
                            "flush=True); import time; time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(ROOT), env=_env(tmp_path), stdout=subprocess.PIPE,
                            text=True)
    pid = int(next(x for x in proc.stdout if x.startswith("PID ")).split()[1])
    assert psutil.pid_exists(pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and psutil.pid_exists(pid) and \
            psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.timeout(60)
def test_a_server_that_cannot_start_is_a_clear_error(tmp_path):
    code = """
from remind_curate.prefect_server import prefect_api, ServerStartError
with prefect_api() as server:
    try:
        server.wait_ready()
    except ServerStartError as exc:
        print("RESULT " + __import__("json").dumps({"error": str(exc)}))
"""
    bad = _env(tmp_path, PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/x.db")
    out = _run(code, bad, timeout=50)
    assert "temporary Prefect server exited" in out["error"]


FAILING_FLOW = """
import json
from remind_curate.prefect_server import prefect_api
with prefect_api() as server:
    from prefect import flow
    @flow
    def broken() -> None:
        raise ValueError("no such thing")
    server.wait_ready()
    try:
        broken()
    except ValueError as exc:
        print("RESULT " + json.dumps({"error": str(exc)}))
"""


@pytest.mark.timeout(150)
def test_a_failed_flows_last_logs_reach_the_server_before_it_stops(tmp_path):
    proc = subprocess.run([sys.executable, "-c", FAILING_FLOW], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "RESULT " in proc.stdout, proc.stderr[-3000:]
    assert "Error logging to API" not in proc.stderr, proc.stderr[-3000:]  # sent while the server was up
