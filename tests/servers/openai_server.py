"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

Replies come from a script (a list consumed in order, then ``default``) or from a callable given the request body.
Each reply is a ``Reply`` or a plain string (a 200 answer with that content). Every request is recorded.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    body: str | None = None  # raw body overriding the chat-completion JSON


@dataclass
class RecordedRequest:
    path: str
    model: str
    num_images: int
    messages: list[dict[str, Any]]
    body: dict[str, Any]
    has_auth: bool
    received_at: float = field(default_factory=time.monotonic)
    num_videos: int = 0


@dataclass
class ReceivedVideo:
    """A ``video_url`` part as the server decoded it: what a vLLM server would hand its processor."""

    frames: Any  # (T,H,W,3) uint8 RGB
    fps: float  # the container's constant frame rate
    times_s: list[float]  # presentation time of every frame
    media_type: str


def decode_videos(body: dict[str, Any]) -> list[ReceivedVideo]:
    """Every ``data:video/...;base64`` part of a request body, decoded with PyAV (every frame, no sampling)."""
    import base64
    import io

    import av
    import numpy as np

    out = []
    for message in body.get("messages") or []:
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, dict) or part.get("type") != "video_url":
                continue
            url = part["video_url"]["url"]
            header, data = url.split(",", 1)
            with av.open(io.BytesIO(base64.b64decode(data))) as container:
                stream = container.streams.video[0]
                frames = list(container.decode(stream))
                out.append(ReceivedVideo(np.stack([f.to_ndarray(format="rgb24") for f in frames]),
                                         float(stream.average_rate), [float(f.time) for f in frames],
                                         header.split(":", 1)[1].split(";", 1)[0]))
    return out


def count_videos(messages: list[dict[str, Any]]) -> int:
    return sum(1 for message in messages if isinstance(message.get("content"), list)
               for part in message["content"] if isinstance(part, dict) and part.get("type") == "video_url")


Script = list["Reply | str"] | Callable[[dict[str, Any]], "Reply | str"]


def count_images(messages: list[dict[str, Any]]) -> int:
    n = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            n += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image_url")
    return n


class ScriptedOpenAIServer:
    """Context manager: ``with ScriptedOpenAIServer([...]) as server: server.base_url``."""

    def __init__(self, script: Script | None = None, default: Reply | str = Reply(status=500, body="script exhausted")):
        self._script = script if script is not None else []
        self._default = default
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if callable(self._script):
                reply = self._script(body)
            elif self._script:
                reply = self._script.pop(0)
            else:
                reply = self._default
        return Reply(content=reply) if isinstance(reply, str) else reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    body = {}
                messages = body.get("messages") or []
                with server._lock:
                    server.requests.append(RecordedRequest(
                        self.path, str(body.get("model", "")), count_images(messages), messages, body,
                        bool(self.headers.get("Authorization")), num_videos=count_videos(messages)))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, json.dumps({"error": "not found"}))
                    return
                reply = server._next(body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.body is not None:
                    self._send(reply.status, reply.body)
                    return
                payload = {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion",
                    "model": body.get("model", ""),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply.content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": max(1, len(reply.content) // 4),
                              "total_tokens": 100 + max(1, len(reply.content) // 4)},
                }
                self._send(reply.status, json.dumps(payload))

            def _send(self, status: int, text: str) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        return Handler

    def __enter__(self) -> "ScriptedOpenAIServer":
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        httpd.daemon_threads = True
        httpd.block_on_close = False  # slow replies must not hold up shutdown
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="scripted-openai", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
