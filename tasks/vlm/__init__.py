"""The VLM filtering stage (ReMind Appendix F.1): Qwen3-VL judges windows, captions and tags the kept ones.

Light entry points import eagerly; ``build_tiny_qwen3vl`` (torch) on first use. On Ray, the judge runs as an actor
pool of the executor (``tasks.judge.JudgeEvents`` through ``engine.ray_data``).
"""
from __future__ import annotations

from typing import Any

from tasks.vlm.backends import VLMBackend, VLMCallError, VLMRequest
from tasks.vlm.factory import make_backend
from tasks.vlm.judge import apply_judgement, judge_clips, judge_windows
from tasks.vlm.prompts import PROMPT_VERSION, EventCatalog, as_catalog

__all__ = ["PROMPT_VERSION", "EventCatalog", "VLMBackend", "VLMCallError", "VLMRequest", "apply_judgement",
           "as_catalog", "build_tiny_qwen3vl", "judge_clips", "judge_windows", "make_backend"]


def __getattr__(name: str) -> Any:
    if name == "build_tiny_qwen3vl":
        from tasks.vlm.tiny import build_tiny_qwen3vl
        return build_tiny_qwen3vl
    raise AttributeError(name)
