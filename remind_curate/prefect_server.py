"""Start-up cost of a command: the temporary Prefect API server starts first, the imports run while it boots.

With no API URL configured, Prefect 3 starts a temporary server (a uvicorn child process) on the first flow call
and waits for it: about 3 s of one core on this machine, after the imports. ``prefect_api()`` launches that same
server (Prefect's own command line: ``uvicorn --factory prefect.server.api.server:create_app``, UI off, the
ephemeral flags set) before the stages are imported and points Prefect at it with ``temporary_settings``; the
imports then run on one core while the server boots on the other, and the flow call finds it up, as it would a
dedicated server. When an API URL is configured (environment, profile, ``prefect.toml``: the early launch is
stopped once Prefect's settings say so), ephemeral servers are off, or Prefect is already imported (a library
caller), nothing is started and Prefect behaves as it always does.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServerStartError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM when the command dies, even by SIGKILL (no orphans)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the atexit stop still runs on a normal exit
        pass


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporaryServer:
    """One temporary Prefect API server, a child of this process."""

    def __init__(self, process: subprocess.Popen, port: int, startup_timeout_s: float):
        self.process, self.port, self.startup_timeout_s = process, port, startup_timeout_s
        self.api_url = f"http://127.0.0.1:{port}/api"

    @classmethod
    def launch(cls, startup_timeout_s: float) -> "TemporaryServer":
        """Start it (returns at once; ``wait_ready`` blocks until it answers)."""
        spec = importlib.util.find_spec("prefect")  # its folder, without importing it
        if spec is None or spec.origin is None:
            raise ServerStartError("Prefect is not installed")
        port = _free_port()
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        return cls(process, port, startup_timeout_s)

    def wait_ready(self) -> None:
        """Block until the server answers its health check (raise ServerStartError if it exits or times out)."""
        timeout_s = self.startup_timeout_s
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"the temporary Prefect server exited with status {self.process.returncode} "
                                       "before it was ready (its error is printed above)")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise ServerStartError(f"the temporary Prefect server did not answer within {timeout_s:.0f} s "
                               "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def prefect_api() -> Iterator[TemporaryServer | None]:
    """Inside: a Prefect API to talk to, the configured one or a temporary server launched now (stopped on exit).
    Call ``wait_ready()`` on a yielded server before the first flow call; child processes inherit its URL.

    Only a fresh command process launches one: where Prefect is already imported (tests, a notebook calling
    ``main``) Prefect's own temporary server, started once and reused for every call, is the cheaper choice."""
    if "prefect" in sys.modules or os.environ.get("PREFECT_API_URL") or \
            os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "true").lower() in ("0", "false", "no", "off"):
        yield None
        return
    server = TemporaryServer.launch(0.0)  # before Prefect's own ~1 s import; dropped if a profile names a server
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        server.stop()
        yield None
        return
    server.startup_timeout_s = float(settings.server.ephemeral.startup_timeout_seconds)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
    finally:
        _drain_prefect_senders()
        server.stop()
        os.environ.pop("PREFECT_API_URL", None)


def _drain_prefect_senders(timeout_s: float = 5.0) -> None:
    """Send what Prefect's background workers still hold (a failed flow's last log lines, run events) while the
    server is up: otherwise they fail at exit and print ``Error logging to API`` under our own error."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout_s)
