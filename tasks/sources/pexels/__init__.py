"""Pexels retrieval driven by the event taxonomy (see :mod:`tasks.sources.pexels.source` for the entry point).

Entry points: :func:`require_permission` (licence gate), :func:`pexels_items` (run retrieval, get SourceItems and
:class:`PexelsRunStats`), :func:`plan_pexels` / :func:`format_plan` (what would be searched).
"""
from __future__ import annotations

from tasks.sources.pexels.budget import BudgetSnapshot, RequestBudget
from tasks.sources.pexels.client import PexelsClient, resolve_base_url
from tasks.sources.pexels.errors import (
    BudgetExhausted,
    PexelsAPIError,
    PexelsAuthError,
    PexelsError,
    PexelsPermissionError,
    PexelsRateLimited,
)
from tasks.sources.pexels.license import LICENSE_NAME, LICENSE_URL, require_permission
from tasks.sources.pexels.plan import PexelsPlan, TypePlan, format_plan, plan_pexels, type_quota
from tasks.sources.pexels.secrets import ApiKey, load_api_key
from tasks.sources.pexels.source import PexelsRunStats, pexels_items

__all__ = [
    "LICENSE_NAME",
    "LICENSE_URL",
    "ApiKey",
    "BudgetExhausted",
    "BudgetSnapshot",
    "PexelsAPIError",
    "PexelsAuthError",
    "PexelsClient",
    "PexelsError",
    "PexelsPermissionError",
    "PexelsPlan",
    "PexelsRateLimited",
    "PexelsRunStats",
    "RequestBudget",
    "TypePlan",
    "format_plan",
    "load_api_key",
    "pexels_items",
    "plan_pexels",
    "require_permission",
    "resolve_base_url",
    "type_quota",
]
