"""`pexels[:TYPE,...]`: taxonomy-driven retrieval into a content-addressed store (see tasks/sources/pexels/)."""
from __future__ import annotations

from pathlib import Path

from schemas.config import Config
from tasks.sources.pexels import pexels_items
from tasks.sources.listing import SourceListing
from taxonomy import load_taxonomy


def pexels_listing(config: Config, out: Path, event_types: list[str] | None, permission: bool) -> SourceListing:
    """Search, filter and download; every candidate video becomes an item (failed downloads carry the error)."""
    store = Path(config.pexels.store_dir) if config.pexels.store_dir else out / "pexels"
    items, stats = pexels_items(config, store, event_types, load_taxonomy(), cli_permission=permission)
    return SourceListing(items, stats.to_dict())
