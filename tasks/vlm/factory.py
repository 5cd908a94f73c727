"""``make_backend(config)``: the VLM backend ``vlm.backend`` names (transformers or an OpenAI-compatible server).
Kept apart from tasks/vlm/backends.py, which the backends import, so no module imports one that imports it."""
from __future__ import annotations

from schemas.config import VLMConfig
from tasks.vlm.backends import VLMBackend


def make_backend(config: VLMConfig) -> VLMBackend:
    """The backend ``config.backend`` names, serving ``config.model``. Loads weights now (transformers)."""
    if not config.model:
        raise ValueError("vlm.model is empty: set a hub id or local path (transformers) "
                         "or a served model name (openai)")
    if config.backend == "transformers":
        from tasks.vlm.transformers_backend import TransformersBackend
        return TransformersBackend(config)
    if config.backend == "openai":
        from tasks.vlm.openai_backend import OpenAIBackend
        return OpenAIBackend(config)
    raise ValueError(f"unknown vlm.backend {config.backend!r}")
