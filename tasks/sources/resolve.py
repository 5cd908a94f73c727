"""Parsing `--source` specs into source items: local:PATH | synthetic:N | pexels:[TYPE,...] | dl3dv:PATH |
openvid:CSV | manifest:FILE | cache:OUT (a finished run's window cache: regenerate)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from schemas.config import Config
from tasks.records import SourceItem
from tasks.sources.local import local_items


KINDS = ("local", "synthetic", "pexels", "dl3dv", "openvid", "manifest", "cache")


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # one of KINDS
    arg: str

    @classmethod
    def parse(cls, spec: str) -> "SourceSpec":
        kind, sep, arg = spec.partition(":")
        if kind not in KINDS or (not sep and kind != "pexels"):
            raise ValueError(f"unknown source '{spec}': use local:PATH, synthetic:N, pexels[:TYPE,...], dl3dv:PATH, "
                             "openvid:CSV, manifest:FILE or cache:OUT")
        if kind == "synthetic" and (not arg.isdigit() or int(arg) < 1):
            raise ValueError(f"synthetic:N needs a positive clip count, got '{arg}'")
        if kind in ("local", "dl3dv", "openvid", "manifest", "cache") and not arg:
            raise ValueError(f"{kind}:PATH needs a path")
        return cls(kind, arg)

    def preflight(self) -> None:
        """Checks that need no fetch (``remind_curate.preflight``): a cache source must be a finished run."""
        if self.kind == "cache":
            from tasks.sources.cache import RegenerateError, finished_run

            try:
                finished_run(self.arg)
            except RegenerateError as exc:
                raise ValueError(f"cache:{self.arg}: {exc}") from exc


@dataclass
class SourceListing:
    items: list[SourceItem]
    stats: dict[str, Any] = field(default_factory=dict)  # e.g. Pexels requests spent and budget left


def list_sources(spec: str, config: Config, out: Path, pexels_permission: bool = False) -> SourceListing:
    """Every input of the run, in a stable order (the Pexels client retries its own requests)."""
    source = SourceSpec.parse(spec)
    if source.kind == "local":
        return SourceListing(local_items(source.arg, out / "cache" / "fetched"))
    if source.kind == "dl3dv":
        from tasks.sources.dl3dv import dl3dv_items

        return SourceListing(dl3dv_items(source.arg, config))
    if source.kind == "openvid":
        from tasks.sources.openvid import openvid_items

        return SourceListing(openvid_items(source.arg, config))
    if source.kind == "manifest":
        from tasks.sources.manifest_source import manifest_items

        return SourceListing(manifest_items(source.arg, config, out / "cache" / "fetched"))
    if source.kind == "cache":  # regenerate (flows/regenerate.py): config checked against the cache's
        from tasks.sources.cache import cache_listing

        return SourceListing(*cache_listing(source.arg, config))
    if source.kind == "synthetic":
        from tasks.sources.synthetic import synthetic_items

        return SourceListing(synthetic_items(int(source.arg), config.synthetic))
    from tasks.sources.pexels.listing import pexels_listing

    types = [t for t in source.arg.split(",") if t] or None
    return pexels_listing(config, out, types, pexels_permission)
