"""Exceptions raised by the Pexels source. Their messages never contain the API key."""
from __future__ import annotations


class PexelsError(RuntimeError):
    """Base class of every Pexels failure."""


class PexelsAuthError(PexelsError):
    """The key is missing or Pexels refused it (401/403 on the API). Not retried."""


class PexelsPermissionError(PexelsError):
    """The operator has not confirmed holding Pexels' permission for dataset use."""


class BudgetExhausted(PexelsError):
    """No request may be sent now: run cap, hourly/monthly limit or the server's remaining quota is used up."""


class PexelsRateLimited(BudgetExhausted):
    """Pexels kept answering 429 after every retry: the quota is spent until its reset time."""


class PexelsAPIError(PexelsError):
    """A request failed for good (4xx other than auth, or 5xx/timeouts after all retries)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # short, stable label for run statistics, e.g. "http_503", "timeout"


class TransientError(PexelsError):
    """One attempt failed in a way worth retrying (429, 5xx, timeout, connection error)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
