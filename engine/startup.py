"""Start-up cost of a command: Prefect's temporary API server boots while the command imports its stages.

With no ``PREFECT_API_URL``, Prefect 3 starts a temporary server (a uvicorn child process) on the first flow call
and waits for it: about 3-5 s on 2 cores, on top of the imports. ``boot_prefect_server`` starts that same server
(Prefect's own singleton, ``SubprocessASGIServer()``) in a background thread instead, so the two overlap; the flow
call then finds it running. When a server URL is configured, or the early start fails, nothing changes: the flow
call does what it always did (and reports any error itself).
"""
from __future__ import annotations

import threading


def boot_prefect_server() -> threading.Thread:
    """Start booting the temporary server now; ``join()`` the thread before the first flow call."""

    def boot() -> None:
        try:
            from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

            if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
                return
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
        except Exception:  # noqa: BLE001 - the flow call starts it (or fails with Prefect's own message)
            return

    thread = threading.Thread(target=boot, name="prefect-server-boot", daemon=True)
    thread.start()
    return thread
