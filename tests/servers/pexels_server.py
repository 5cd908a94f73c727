"""A Pexels-compatible HTTP server for tests: 127.0.0.1, random port, real small MP4s, injectable faults.

Endpoints (relative to ``base_url``): ``search``, ``popular``, ``videos/<id>`` (JSON in Pexels' shape, need
``Authorization: <key>``, send ``X-Ratelimit-*`` on 2xx) and ``files/<file_id>.mp4?t=<token>`` (no auth, like a CDN).
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlparse

import av
import numpy as np

FaultKind = Literal["status", "delay", "cut", "short_length", "stall", "trickle"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour.

    status: answer ``status`` (no rate-limit headers); delay: sleep ``delay_s`` before answering normally;
    cut: full Content-Length but only half the body; short_length: Content-Length and body both cut in half;
    stall: headers and half the body, then sleep ``delay_s`` before the rest;
    trickle: the body in 1 KiB pieces, ``delay_s`` apart (every read is quick, the whole is slow).
    """

    kind: FaultKind
    status: int = 500
    delay_s: float = 0.0


@dataclass
class _Rule:
    fault: Fault
    path: str | None  # request path prefix ("/search", "/files/"); None = any
    first: int  # 1-based index among matching requests
    times: int | None  # None = forever
    seen: int = 0

    def applies(self, path: str) -> bool:
        if self.path is not None and not path.startswith(self.path):
            return False
        self.seen += 1
        return self.seen >= self.first and (self.times is None or self.seen < self.first + self.times)


@dataclass(frozen=True)
class VideoSpec:
    """One catalogue entry. ``clip`` names a library MP4; ``layout`` decides its video_files."""

    id: int
    slug: str
    clip: str = "a"
    duration: int = 6
    user_name: str = "Ada Lovelace"
    layout: Literal["standard", "portrait", "small", "lowfps", "nullfps"] = "standard"
    tags: tuple[str, ...] = ()


def _mosaic(rng: np.random.Generator, width: int, height: int, cell: int) -> np.ndarray:
    """A static background of seed-coloured square tiles: corners to track, cheap to encode (no per-pixel noise)."""
    tiles = rng.integers(30, 226, size=(height // cell + 1, width // cell + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(tiles, cell, axis=0), cell, axis=1)[:height, :width])


def make_clip(path: Path, *, width: int = 864, height: int = 480, fps: int = 16, frames: int = 96,
              seed: int = 0) -> Path:
    """Encode a small H.264 MP4: a fixed camera on a textured mosaic, a striped box sliding across it and growing.

    The motion is real, sustained and localised (the box sweeps part of the frame in every frame, never all of
    it), so the motion pre-filter, scene-cut detection and the classical camera estimator all accept the clip.
    """
    rng = np.random.default_rng(seed)
    background = _mosaic(rng, width, height, cell=max(8, min(width, height) // 15))
    colour = rng.integers(0, 256, size=3, dtype=np.uint8)
    colour[seed % 3] = 255  # saturated: always far from the mosaic's grey levels
    container = av.open(str(path), "w")
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "35"}
        short = min(width, height)
        y0 = height // 4 + int(rng.integers(0, max(1, height // 8)))
        for i in range(frames):
            t = i / max(1, frames - 1)
            box = int(short * (0.18 + 0.14 * t))  # grows from about a fifth to a third of the short side
            x = int(width * 0.05 + t * (width * 0.9 - box))
            image = background.copy()
            patch = image[y0:y0 + box, x:x + box]
            patch[...] = colour
            patch[::8] = 255 - colour  # stripes move with the box: flow has texture to latch onto
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path


def build_library(directory: Path) -> dict[str, Path]:
    """Landscape clips "a".."f" (864x480, 16 fps, 96 frames, distinct content), "portrait" and "small"."""
    directory.mkdir(parents=True, exist_ok=True)
    library = {name: make_clip(directory / f"{name}.mp4", seed=i) for i, name in enumerate("abcdef")}
    library["portrait"] = make_clip(directory / "portrait.mp4", width=480, height=864, seed=10)
    library["small"] = make_clip(directory / "small.mp4", width=640, height=360, seed=11)
    return library


class PexelsTestServer:
    """Threaded fake of the Pexels Videos API. Use as a context manager; counts every request it receives."""

    def __init__(self, library: dict[str, Path], videos: list[VideoSpec], *, key: str = "test-key",
                 match_all: bool = False, ratelimit_limit: int = 20000, ratelimit_remaining: int | None = None) -> None:
        self.library = {name: path.read_bytes() for name, path in library.items()}
        self.videos = {v.id: v for v in videos}
        self.key = key
        self.match_all = match_all
        self.ratelimit_limit = ratelimit_limit
        self.ratelimit_remaining = ratelimit_limit if ratelimit_remaining is None else ratelimit_remaining
        self.ratelimit_reset = int(time.time()) + 3600
        self.api_requests = 0
        self.file_requests: Counter[str] = Counter()
        self.log: list[tuple[str, int]] = []  # (path with query, status)
        self.last_params: dict[str, dict[str, str]] = {}
        self.seen_auth: list[str | None] = []  # Authorization header of every request (to check files get none)
        self._rules: list[_Rule] = []
        self._revoked: dict[int, set[str]] = {}
        self._fresh_token: dict[int, str] = {}
        self._dead_links: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def add_fault(self, fault: Fault, *, path: str | None = None, nth: int = 1, times: int | None = 1) -> None:
        """Apply ``fault`` to the ``nth`` (1-based) request whose path starts with ``path``, for ``times`` requests.

        Every rule counts matching requests on its own; when several apply to one request, the earliest added wins.
        So ``nth=1``, ``nth=2``, ``nth=3`` on one path inject three different faults into three successive requests.
        """
        with self._lock:
            self._rules.append(_Rule(fault, path, nth, times))

    def expire(self, video_id: int, *, refresh_works: bool = True) -> None:
        """Listing links of ``video_id`` now get 403; ``videos/<id>`` hands out a working link unless refresh fails."""
        with self._lock:
            self._revoked.setdefault(video_id, set()).add("L")
            self._fresh_token[video_id] = "F1"
            if not refresh_works:
                self._dead_links.add(video_id)

    def start(self) -> "PexelsTestServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="pexels-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping in delay/stall faults
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "PexelsTestServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- content -------------------------------------------------------------------------------------------------
    def _files(self, spec: VideoSpec, token: str) -> list[dict[str, Any]]:
        def entry(k: int, quality: str, w: int | None, h: int | None, fps: float | None, ext: str = "mp4",
                  file_type: str = "video/mp4") -> dict[str, Any]:
            fid = spec.id * 10 + k
            return {"id": fid, "quality": quality, "file_type": file_type, "width": w, "height": h, "fps": fps,
                    "link": f"{self.base_url}files/{fid}.{ext}?t={token}"}

        hls = entry(0, "hls", None, None, None, "m3u8", "application/x-mpegURL")
        if spec.layout == "portrait":
            return [hls, entry(1, "sd", 360, 640, 16), entry(2, "hd", 480, 864, 16)]
        if spec.layout == "small":
            return [hls, entry(1, "sd", 640, 360, 16)]
        if spec.layout == "lowfps":
            return [hls, entry(1, "sd", 640, 360, 12), entry(2, "hd", 864, 480, 12)]
        fps = None if spec.layout == "nullfps" else 16
        return [hls, entry(1, "sd", 640, 360, fps), entry(3, "hd", 1920, 1080, fps), entry(2, "hd", 864, 480, fps)]

    def _file_bytes(self, fid: int) -> bytes | None:
        spec = self.videos.get(fid // 10)
        if spec is None or fid % 10 == 0:
            return None
        if fid % 10 == 1:
            return self.library["small"]
        return self.library["portrait" if spec.layout == "portrait" else spec.clip]

    def video_json(self, spec: VideoSpec, token: str = "L") -> dict[str, Any]:
        return {"id": spec.id, "width": 1920, "height": 1080, "duration": spec.duration,
                "url": f"https://www.pexels.com/video/{spec.slug}-{spec.id}/",
                "image": f"https://images.pexels.com/videos/{spec.id}/preview.jpeg",
                "user": {"id": 1000 + spec.id, "name": spec.user_name,
                         "url": f"https://www.pexels.com/@{spec.user_name.lower().replace(' ', '-')}"},
                "tags": list(spec.tags), "video_files": self._files(spec, token), "video_pictures": []}

    def _matches(self, spec: VideoSpec, query: str) -> bool:
        if self.match_all:
            return True
        words = set(re.split(r"[\s\-]+", spec.slug.lower())) | {t.lower() for t in spec.tags}
        return all(w in words for w in query.lower().split())

    def _listing(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        query = params.get("query", "")
        hits = [v for _, v in sorted(self.videos.items()) if endpoint == "popular" or self._matches(v, query)]
        page = int(params.get("page", "1"))
        per_page = min(80, int(params.get("per_page", "15")))
        chunk = hits[(page - 1) * per_page:page * per_page]
        body: dict[str, Any] = {"page": page, "per_page": per_page, "total_results": len(hits),
                                "videos": [self.video_json(v) for v in chunk],
                                "url": f"https://www.pexels.com/search/videos/{query}/"}
        if page * per_page < len(hits):
            nxt = dict(params, page=str(page + 1))
            body["next_page"] = f"{self.base_url}{endpoint}/?{urlencode(sorted(nxt.items()))}"
        return body

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                server._serve(self)

        return Handler

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        path = url.path
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        is_file = path.startswith("/files/")
        with self._lock:
            self.seen_auth.append(h.headers.get("Authorization"))
            if is_file:
                self.file_requests[path] += 1
            else:
                self.api_requests += 1
            applied = [r for r in self._rules if r.applies(path)]  # every rule counts its own matching requests
            fault = applied[0].fault if applied else None
        if fault is not None and fault.kind == "delay":
            if self._stop.wait(fault.delay_s):
                return
            fault = None
        if fault is not None and fault.kind == "status":
            return self._send(h, path, fault.status, {"error": f"injected {fault.status}"})
        if is_file:
            return self._serve_file(h, path, params, fault)
        if h.headers.get("Authorization") != self.key:
            return self._send(h, path, 401, {"error": "invalid api key"})
        with self._lock:
            if self.ratelimit_remaining <= 0:
                return self._send(h, path, 429, {"error": "rate limit exceeded"})
            self.ratelimit_remaining -= 1
        endpoint = path.strip("/")
        if endpoint in ("search", "popular"):
            self.last_params[endpoint] = params
            return self._send(h, path, 200, self._listing(endpoint, params), ratelimit=True)
        match = re.fullmatch(r"videos/(\d+)", endpoint)
        spec = self.videos.get(int(match.group(1))) if match else None
        if spec is None:
            return self._send(h, path, 404, {"error": "not found"}, ratelimit=True)
        return self._send(h, path, 200, self.video_json(spec, self._fresh_token.get(spec.id, "L")), ratelimit=True)

    def _serve_file(self, h: BaseHTTPRequestHandler, path: str, params: dict[str, str], fault: Fault | None) -> None:
        match = re.fullmatch(r"/files/(\d+)\.mp4", path)
        data = self._file_bytes(int(match.group(1))) if match else None
        if data is None:
            return self._send(h, path, 404, {"error": "not found"})
        vid, token = int(match.group(1)) // 10, params.get("t", "")
        if vid in self._dead_links or token in self._revoked.get(vid, set()):
            return self._send(h, path, 403, {"error": "link expired"})
        length, body = len(data), data
        if fault is not None and fault.kind in ("cut", "stall"):
            body = data[:len(data) // 2]
        elif fault is not None and fault.kind == "short_length":
            length = len(data) // 2
            body = data[:length]
        self._record(h, path, 200)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "video/mp4")
            h.send_header("Content-Length", str(length))
            h.end_headers()
            if fault is not None and fault.kind == "trickle":
                for start in range(0, len(body), 1024):
                    h.wfile.write(body[start:start + 1024])
                    h.wfile.flush()
                    if self._stop.wait(fault.delay_s):
                        return
                body = b""
            h.wfile.write(body)
            h.wfile.flush()
            if fault is not None and fault.kind == "stall":
                if self._stop.wait(fault.delay_s):
                    return
                h.wfile.write(data[len(body):])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): expected in stall tests
        h.close_connection = True

    def _record(self, h: BaseHTTPRequestHandler, path: str, status: int) -> None:
        with self._lock:
            self.log.append((h.path, status))

    def _send(self, h: BaseHTTPRequestHandler, path: str, status: int, payload: dict[str, Any], *,
              ratelimit: bool = False) -> None:
        self._record(h, path, status)
        body = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            if ratelimit and 200 <= status < 300:
                h.send_header("X-Ratelimit-Limit", str(self.ratelimit_limit))
                h.send_header("X-Ratelimit-Remaining", str(self.ratelimit_remaining))
                h.send_header("X-Ratelimit-Reset", str(self.ratelimit_reset))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

