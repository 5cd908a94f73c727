"""The Pexels licence gate and attribution constants."""
from __future__ import annotations

from typing import Any

from schemas.config import PexelsConfig
from tasks.sources.pexels.errors import PexelsPermissionError

LICENSE_NAME = "Pexels License"
LICENSE_URL = "https://www.pexels.com/license/"

PERMISSION_HELP = (
    "Pexels' terms forbid using its API to collect videos or metadata at scale to train or evaluate machine-learning "
    "models or to build datasets without explicit permission from Pexels. Once you hold that permission, set "
    "pexels.permission_confirmed: true in the config or pass --pexels-permission-confirmed. Every clip still records "
    f"its creator, page URL and licence ({LICENSE_URL}) for attribution."
)


def pexels_config(config: Any) -> PexelsConfig:
    """Accept either the full run Config or its ``pexels`` section."""
    section = getattr(config, "pexels", config)
    if not isinstance(section, PexelsConfig):
        raise TypeError(f"expected a Config or PexelsConfig, got {type(config).__name__}")
    return section


def require_permission(config: Any, cli_flag: bool = False) -> None:
    """Raise PexelsPermissionError unless the operator confirmed (config or CLI flag) holding Pexels' permission."""
    if cli_flag or pexels_config(config).permission_confirmed:
        return
    raise PexelsPermissionError(f"Pexels retrieval refused: permission not confirmed. {PERMISSION_HELP}")
