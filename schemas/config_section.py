"""The one config mechanism of the run, train and evaluate configs: sections, loading, merging, hashing, errors.

A config is loaded from layers: the model's defaults, then YAML files in order (a base, e.g. a parent run's
``config.yaml``, then the user's file), then explicit overrides. Only the keys given are merged (defaults fill the
rest when validating), so a model can tell a key left out from one set to its default. Mappings under a key named
in ``REPLACED_WHOLE`` are taken as a whole (a weight map in a file means exactly those weights). Unknown keys are
errors; a file that is not a YAML mapping is an error naming the file.

``stable_hash`` is the one config hash: ``section_hash`` and the config-derived cache keys (the engine's clip hash,
training's latent and text cache tags) all call it. Their JSON forms differ only in separators (``compact``) and
their digests in length (``chars``); both are fixed per caller, since hashes already stored in OUT folders (run.json,
ledger entries) and cache folder names must keep their values.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict

C = TypeVar("C", bound="Section")


def deep_merge(base: dict[str, Any], override: dict[str, Any], replace: Sequence[str] = ()) -> dict[str, Any]:
    """``override`` over ``base``, recursively; mappings under a key in ``replace`` are taken as a whole."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in replace:
            out[key] = deep_merge(out[key], value, replace)
        else:
            out[key] = value
    return out


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    loaded = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config file must be a YAML mapping, got {type(loaded).__name__}")
    return loaded


def stable_hash(data: Any, chars: int = 16, compact: bool = True) -> str:
    """The first ``chars`` hex digits of the sha256 of ``data`` as JSON with sorted keys: compact separators
    (``,`` ``:``) when ``compact``, else ``json.dumps``'s defaults (``, `` ``: ``)."""
    separators = (",", ":") if compact else None
    blob = json.dumps(data, sort_keys=True, separators=separators).encode()
    return hashlib.sha256(blob).hexdigest()[:chars]


class Section(BaseModel):
    """Unknown keys are errors: a misspelt option never becomes a silently different run."""

    model_config = ConfigDict(extra="forbid")


class RootConfig(Section):
    """A whole config (run, train, evaluate): loaded by ``load``, identified by ``section_hash``."""

    REPLACED_WHOLE: ClassVar[tuple[str, ...]] = ()
    FILE_KEYS: ClassVar[tuple[str, ...] | None] = None  # the top-level keys read from a file (None: all)
    HASH_CHARS: ClassVar[int] = 16

    @classmethod
    def merged(cls, files: Sequence[str | Path | None] = (), overrides: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """The layers merged: each file's keys in order, then ``overrides``."""
        data: dict[str, Any] = {}
        for path in files:
            if path is None:
                continue
            loaded = read_yaml_mapping(path)
            if cls.FILE_KEYS is not None:
                loaded = {k: v for k, v in loaded.items() if k in cls.FILE_KEYS}
            data = deep_merge(data, loaded, cls.REPLACED_WHOLE)
        return deep_merge(data, overrides or {}, cls.REPLACED_WHOLE)

    @classmethod
    def load(cls: type[C], *files: str | Path | None, overrides: dict[str, Any] | None = None) -> C:
        return cls.model_validate(cls.merged(files, overrides))

    def section_hash(self, *sections: str) -> str:
        """Stable hash of the named sections (all when none): the cache key of work that depends on them."""
        data = self.model_dump(mode="json")
        picked = {name: data[name] for name in (sections or tuple(sorted(data)))}
        return stable_hash(picked, chars=self.HASH_CHARS)

    @property
    def config_hash(self) -> str:
        return self.section_hash()
