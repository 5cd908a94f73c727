"""Any OpenAI-compatible chat-completions server that takes video (vLLM serving Qwen3-VL) as a VLM backend.

The window travels as ONE ``video_url`` content part: a ``data:video/mp4;base64,...`` URL of an H.264 MP4 (4:4:4)
holding exactly the frames the transformers backend gives qwen-vl-utils (``VLMRequest.video``: same frames, same
size, same pixel budget), at a constant frame rate of frames / real duration, so the container carries the timing.
Beside it, ``mm_processor_kwargs: {"do_sample_frames": false}`` (what qwen-vl-utils hands the processor) tells
vLLM's Qwen3-VL processor to keep every frame rather than resample. vLLM decodes data: MP4 URLs with its OpenCV
loader, which reads every frame when the video has fewer than ``--media-io-kwargs '{"video": {"num_frames": N}}'``
(default 32), and returns fps and frame indices as the metadata the timestamps come from. (vLLM's other inline form,
``data:video/jpeg;base64,<frame>,<frame>...``, carries no metadata at all, so the timing would be guessed.)
Serve with ``--limit-mm-per-prompt '{"video": 1}'``.

Structured output: with ``vlm.json_mode`` the request carries ``response_format: {"type": "json_schema", ...}``
holding the verdict's schema (event ids as enums), which vLLM enforces with structured outputs. A server that
answers 400 naming the response format is asked again without it, and not asked again for this backend's life;
the answer is then parsed and validated as always (prose is rejected as unparseable, never accepted).
"""
from __future__ import annotations

import base64
import io
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any

import av
import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from schemas.config import VLMConfig
from tasks.vlm.backends import Usage, VideoInput, VLMCallError, VLMRequest

log = logging.getLogger(__name__)

VIDEO_CRF = 10  # near-transparent H.264: the frames the server decodes differ from the raw ones by rounding
_FORMAT_REFUSED = re.compile(r"response_format|json_schema|structured|guided|grammar", re.IGNORECASE)


class _HTTPStatusError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, _HTTPStatusError):
        return exc.status >= 500 or exc.status in (408, 409, 429)
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def video_data_url(video: VideoInput) -> str:
    """The video as a ``data:video/mp4;base64,...`` URL: every frame, constant rate ``video.fps``, full-resolution
    chroma (yuv444p) so colours survive; the server decodes it back to the frames up to rounding."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(video.fps).limit_denominator(10_000))
        stream.width, stream.height, stream.pix_fmt = video.frames.shape[2], video.frames.shape[1], "yuv444p"
        stream.options = {"crf": str(VIDEO_CRF), "preset": "veryfast"}
        for image in video.frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return "data:video/mp4;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIBackend:
    """Chat completions over HTTP with a thread pool, timeouts and bounded, jittered retries."""

    name = "openai"

    def __init__(self, config: VLMConfig) -> None:
        if not config.base_url:
            raise ValueError("vlm.base_url is empty: the openai backend needs a server, e.g. http://127.0.0.1:8000/v1")
        self.model = config.model
        self.config = config
        self.usage = Usage()
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Content-Type": "application/json"}
        key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        if key:
            self._headers["Authorization"] = f"Bearer {key}"  # never logged: errors carry status and body only
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="vlm-openai")
        self._lock = threading.Lock()
        self._local = threading.local()
        self._structured_ok = True  # until the server refuses the response format once

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, url={self._url!r})"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def payload(self, request: VLMRequest, structured: bool | None = None) -> dict[str, Any]:
        """The JSON body for one request (public so tests and logs can inspect it)."""
        cfg = self.config
        messages: list[dict[str, Any]] = []
        frames_attached = False
        for turn in request.turns:
            if turn.role == "user" and not frames_attached:
                url = video_data_url(request.video(cfg))
                messages.append({"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                                             {"type": "text", "text": turn.text}]})
                frames_attached = True
            else:
                messages.append({"role": turn.role, "content": turn.text})
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0.0,
                                "max_tokens": cfg.max_new_tokens,
                                "mm_processor_kwargs": {"do_sample_frames": False}}
        if structured is None:
            structured = cfg.json_mode and self._structured_ok
        if structured and request.json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "clip_verdict", "strict": True, "schema": request.json_schema}}
        return body

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._session().post(self._url, json=body, headers=self._headers, timeout=self.config.timeout_s)
        if response.status_code != 200:
            raise _HTTPStatusError(response.status_code, response.text)
        return response.json()

    def _post_structured(self, request: VLMRequest, body: dict[str, Any]) -> dict[str, Any]:
        """Post; a 400 that names the response format turns structured output off and asks again without it."""
        try:
            return self._post(body)
        except _HTTPStatusError as exc:
            if "response_format" not in body or exc.status not in (400, 422) or not _FORMAT_REFUSED.search(exc.body):
                raise
            with self._lock:
                if self._structured_ok:
                    log.warning("%s VLM %r refused response_format json_schema (%s); continuing without "
                                "structured output (answers are still parsed and validated)", self.name, self.model,
                                exc.body[:120])
                self._structured_ok = False
                self.usage.extra["structured_output_refused"] = 1.0
            return self._post(self.payload(request, structured=False))

    def _one(self, request: VLMRequest) -> str:
        cfg = self.config
        body = self.payload(request)
        retrying = Retrying(
            stop=stop_after_attempt(cfg.max_retries + 1),
            wait=wait_exponential_jitter(initial=cfg.retry_backoff_s, max=cfg.retry_backoff_max_s,
                                         jitter=cfg.retry_backoff_s),
            retry=retry_if_exception(_retryable), reraise=True)
        start = time.perf_counter()
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    data = self._post_structured(request, body)
        except Exception as exc:
            with self._lock:
                self.usage.failures += 1
                self.usage.requests += attempts
            raise VLMCallError(f"{self.name} VLM {self.model!r} failed after {attempts} attempt(s): "
                               f"{type(exc).__name__}: {str(exc)[:200]}") from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise VLMCallError(f"{self.name} VLM {self.model!r}: malformed response {str(data)[:200]}") from None
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        usage = data.get("usage") or {}
        with self._lock:
            self.usage.requests += attempts
            self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
            self.usage.seconds += time.perf_counter() - start
        return content or ""

    def generate(self, requests: list[VLMRequest]) -> list[str | VLMCallError]:
        """All requests concurrently (``config.concurrency`` at a time); per-request failures are returned."""
        futures = [self._pool.submit(self._one, r) for r in requests]
        results: list[str | VLMCallError] = []
        for future in futures:
            try:
                results.append(future.result())
            except VLMCallError as exc:
                log.warning("%s", exc)
                results.append(exc)
        return results
