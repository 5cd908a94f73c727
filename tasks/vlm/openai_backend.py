"""Any OpenAI-compatible chat-completions server (e.g. vLLM serving Qwen3-VL) as a VLM backend.

Frames travel as base64 JPEG ``image_url`` parts, each labelled with its timestamp, resized to the per-frame pixel
budget first. Images rather than a ``video_url`` part because every OpenAI-compatible server accepts them; a vLLM
server needs ``--limit-mm-per-prompt '{"image": N}'`` with N >= vlm.num_frames.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import requests
from PIL import Image
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from schemas.config import VLMConfig
from tasks.vlm.backends import Usage, VLMCallError, VLMRequest, fit_size

log = logging.getLogger(__name__)


class _HTTPStatusError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, _HTTPStatusError):
        return exc.status >= 500 or exc.status in (408, 409, 429)
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def encode_frame(frame: np.ndarray, min_pixels: int, max_pixels: int, quality: int = 90) -> str:
    """A frame as a ``data:image/jpeg;base64,...`` URL, resized to the pixel budget."""
    image = Image.fromarray(frame)
    h, w = fit_size(frame.shape[0], frame.shape[1], min_pixels, max_pixels)
    if (h, w) != frame.shape[:2]:
        image = image.resize((w, h), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, url={self._url!r})"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def payload(self, request: VLMRequest) -> dict[str, Any]:
        """The JSON body for one request (public so tests and logs can inspect it)."""
        cfg = self.config
        n = len(request.frames)
        times = np.linspace(0.0, request.duration_s, num=n) if n > 1 else np.zeros(1)
        messages: list[dict[str, Any]] = []
        frames_attached = False
        for turn in request.turns:
            if turn.role == "user" and not frames_attached:
                parts: list[dict[str, Any]] = []
                for frame, t in zip(request.frames, times):
                    parts.append({"type": "text", "text": f"Frame at {t:.2f} s:"})
                    parts.append({"type": "image_url",
                                  "image_url": {"url": encode_frame(frame, cfg.min_pixels, cfg.max_pixels)}})
                parts.append({"type": "text", "text": turn.text})
                messages.append({"role": "user", "content": parts})
                frames_attached = True
            else:
                messages.append({"role": turn.role, "content": turn.text})
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0.0,
                                "max_tokens": cfg.max_new_tokens}
        if cfg.json_mode:
            body["response_format"] = {"type": "json_object"}
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
                    data = self._post(body)
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
