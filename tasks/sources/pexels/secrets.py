"""The Pexels API key: loaded lazily from the environment or a Prefect Secret block, never printable."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NoReturn

from schemas.config import PexelsConfig
from tasks.sources.pexels.errors import PexelsAuthError

REDACTED = "***"


class ApiKey:
    """Holds the key. repr/str are redacted and pickling is refused, so it cannot reach logs, caches or results."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise PexelsAuthError("the Pexels API key is empty")
        self._value = value

    def reveal(self) -> str:
        """The raw key, for the Authorization header only."""
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced by a placeholder."""
        return text.replace(self._value, REDACTED) if self._value in text else text

    def __repr__(self) -> str:
        return f"ApiKey({REDACTED!r})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("ApiKey cannot be pickled (it would write the Pexels key to disk)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash((ApiKey, self._value))


def load_api_key(config: PexelsConfig) -> ApiKey:
    """The key from env ``config.api_key_env``, else from the Prefect Secret block ``config.secret_block``."""
    value = os.environ.get(config.api_key_env, "").strip()
    if value:
        return ApiKey(value)
    if config.secret_block:
        return ApiKey(_load_secret_block(config.secret_block))
    raise PexelsAuthError(
        f"no Pexels API key: set the environment variable {config.api_key_env} "
        "or name a Prefect Secret block in pexels.secret_block")


# How a named secret block is read: set by the flows (flows/secret_blocks.py), the only floor that knows Prefect.
_block_reader: Callable[[str], Any] | None = None


def read_secret_blocks_with(reader: Callable[[str], Any] | None) -> None:
    """``reader(name)`` returns the value of the secret block ``name`` (Prefect's ``Secret.load(name).get()``)."""
    global _block_reader
    _block_reader = reader


def _load_secret_block(name: str) -> str:
    if _block_reader is None:
        raise PexelsAuthError(f"pexels.secret_block {name!r} is read through Prefect: run the ingest flow (the "
                              "command line or a deployment), or set the API key's environment variable")
    try:
        value = _block_reader(name)
    except Exception as exc:  # noqa: BLE001 - any failure means "no key"; the text may not contain it (not loaded)
        raise PexelsAuthError(
            f"could not load the Prefect Secret block {name!r} holding the Pexels key: {type(exc).__name__}") from None
    if not isinstance(value, str):
        raise PexelsAuthError(f"the Prefect Secret block {name!r} does not hold a string")
    return value


class LazyKey:
    """Loads the key on first use, so cache-only runs need none and errors surface at the first request."""

    def __init__(self, config: PexelsConfig, key: ApiKey | None = None) -> None:
        self._config = config
        self._key = key

    def get(self) -> ApiKey:
        if self._key is None:
            self._key = load_api_key(self._config)
        return self._key

    def scrub(self, text: str) -> str:
        """Scrub the key from ``text`` if it has been loaded (an unloaded key cannot be in any text)."""
        return self._key.scrub(text) if self._key is not None else text

    def __repr__(self) -> str:
        return f"LazyKey(loaded={self._key is not None})"
