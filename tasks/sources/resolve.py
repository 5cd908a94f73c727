"""Parsing `--source` specs into source items: local:PATH | synthetic:N | pexels:[TYPE,...] | dl3dv:PATH |
openvid:CSV | manifest:FILE | cache:OUT (a finished run's window cache: regenerate)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.config import Config
from tasks.sources.listing import SourceListing
from tasks.sources.local import is_remote, local_items


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

    def preflight(self, config: Config | None = None) -> None:
        """Checks that need no fetch (``remind_curate.preflight``): a cache source must be a finished run; on a Ray
        cluster, a local source path must be on shared storage."""
        if config is not None and self.kind in ("local", "dl3dv") and not is_remote(self.arg):
            refuse_unshared(config, f"{self.kind}:{self.arg}")
        if self.kind == "cache":
            from tasks.sources.cache import RegenerateError, finished_run

            try:
                finished_run(self.arg)
            except RegenerateError as exc:
                raise ValueError(f"cache:{self.arg}: {exc}") from exc


def unshared_cluster(config: Config) -> str | None:
    """The address of the Ray cluster this run uses when its nodes do not share this machine's disk, else None."""
    address = config.ray.address
    return address if address and address != "local" and not config.ray.shared_storage else None


def refuse_unshared(config: Config, what: str) -> None:
    address = unshared_cluster(config)
    if address:
        raise ValueError(f"{what} is a path on this machine, which the nodes of the Ray cluster at {address} cannot "
                         "read: put the sources in object storage (s3://...), or set ray.shared_storage: true if "
                         "every node mounts it at the same path")


def list_sources(spec: str, config: Config, out: Path, pexels_permission: bool = False) -> SourceListing:
    """Every input of the run, in a stable order (the Pexels client retries its own requests)."""
    source = SourceSpec.parse(spec)
    if source.kind != "cache":  # (a cache source's own check runs again below, through its listing)
        source.preflight(config)
    # On a cluster without shared storage the driver keeps no copy of a remote source: the worker that decodes it
    # fetches it (local.localise), since a file in the driver's folder is not on the other nodes.
    fetch_dir = None if unshared_cluster(config) else out / "cache" / "fetched"
    if source.kind == "local":
        return SourceListing(local_items(source.arg, fetch_dir))
    if source.kind == "dl3dv":
        from tasks.sources.dl3dv import dl3dv_items

        return SourceListing(dl3dv_items(source.arg, config))
    if source.kind == "openvid":
        from tasks.sources.openvid import openvid_items

        return SourceListing(openvid_items(source.arg, config))
    if source.kind == "manifest":
        from tasks.sources.manifest_source import manifest_items

        items = manifest_items(source.arg, config, fetch_dir)
        local = next((i for i in items if i.path is not None and not i.error), None)
        if local is not None:
            refuse_unshared(config, f"{spec}: row {local.provenance.get('manifest_row')} ({local.uri})")
        return SourceListing(items)
    if source.kind == "cache":  # regenerate (flows/regenerate.py): config checked against the cache's
        from tasks.sources.cache import cache_listing

        return SourceListing(*cache_listing(source.arg, config))
    if source.kind == "synthetic":
        from tasks.sources.synthetic import synthetic_items

        return SourceListing(synthetic_items(int(source.arg), config.synthetic))
    from tasks.sources.pexels.listing import pexels_listing

    types = [t for t in source.arg.split(",") if t] or None
    return pexels_listing(config, out, types, pexels_permission)
