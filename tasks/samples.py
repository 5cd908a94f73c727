"""Stages window -> sample: draw an interruption, build the frame graph, encode once, stage the members.

``build_samples`` is pure (frames in, frames and graph out). ``write_samples`` is the only place that encodes:
the clean clip once into the window cache (which regenerate reuses) and the degraded clip once into the
sample; the sample's ``mp4`` is a hard link to the cached clean clip, never a re-encode.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.stage import ENVIRONMENT_ERRNOS, Resources, function_stage
from schemas.config import Config
from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH
from schemas.graph import InterruptionKind
from schemas.manifest import ManifestRow
from schemas.sample import Attribution, GeometryMeta, SampleMeta, SourceInfo
from schemas.sample_io import Sample, npy_bytes, with_checksums
from tasks.augment import Augmented, augment, choose_kind
from tasks.augment.clean_view import CHUNK_KEYFRAMES, cropped_view
from tasks.captions import choose_caption
from tasks.records import Window
from engine.run import RunContext, atomic_write_bytes, atomic_write_json, sha256_file
from tasks.sources.facts import manifest_fields, meta_fields
from tasks.clip import Clip, Outcome, describe_error, per_window
from tasks.video_io import encode_h264
from tasks.video_splice import encode_over
from taxonomy import load_taxonomy


def sample_key(window: Window) -> str:
    return window.window_id.lower()


def ordinal(window: Window) -> int | None:
    """A small-run-friendly index for the kind mixture (the synthetic clip index), else None (hash-based)."""
    if window.truth is not None and "index" in window.truth.extra:
        return int(window.truth.extra["index"])
    return None


@per_window("build-graph")
def _augment_window(window: Window, config: Config) -> Window:
    augment_config = config.augment
    excluded = (window.geometry or {}).get("excluded_interruptions") or []  # cameras unknown (tasks.cameras)
    if excluded:
        mixture = {k: (0.0 if k in excluded else v) for k, v in dict(augment_config.mixture).items()}
        augment_config = augment_config.model_copy(update={"mixture": mixture})
    kind = choose_kind(window, augment_config, config.seed, ordinal(window))
    window.augmented = augment(window, kind, augment_config, config.seed)
    return window


def build_samples(clip: Clip, config: Config) -> Clip:
    """Draw each window's interruption from the configured mixture and derive its frame graph."""
    return _augment_window(clip, config)


def downsample_depth(depth: np.ndarray) -> np.ndarray:
    """(N,H,W) -> (N,120,208) float16; nearest, so no depth is invented at object boundaries."""
    if depth.shape[1:] == (DEPTH_HEIGHT, DEPTH_WIDTH):  # already packed (regenerate reuses the cache)
        return depth.astype(np.float16)
    return np.stack([cv2.resize(d.astype(np.float32), (DEPTH_WIDTH, DEPTH_HEIGHT), interpolation=cv2.INTER_NEAREST)
                     for d in depth]).astype(np.float16)


def _attribution(provenance: dict[str, Any]) -> Attribution | None:
    if "pexels_id" not in provenance:
        return None
    return Attribution(
        creator_name=str(provenance.get("creator_name", "")), creator_url=str(provenance.get("creator_url", "")),
        page_url=str(provenance.get("page_url", "")), video_id=str(provenance["pexels_id"]),
        license=str(provenance.get("license", "")), license_url=str(provenance.get("license_url", "")),
        retrieved_at=str(provenance.get("retrieved_at", "")), query=str(provenance.get("query", "")),
        event_type=str(provenance.get("event_type", "")))


def _event_group(tags: list[str]) -> str | None:
    taxonomy = load_taxonomy()
    for tag in tags:
        try:
            return taxonomy.group_of(tag)
        except KeyError:
            continue
    return None


def sample_meta(window: Window, aug: Augmented, run: RunContext, key: str, parent_key: str | None = None,
                parent_run: str | None = None) -> SampleMeta:
    item = window.item
    geometry = window.geometry or {}
    known = window.camera_c2w is not None
    caption = choose_caption(window)
    truth = None
    if window.truth is not None:
        truth = {"event_type": window.truth.event_type, "loop_return_frame": window.truth.loop_return_frame,
                 **{k: v for k, v in window.truth.extra.items() if isinstance(v, (int, float, str, bool))}}
    return SampleMeta(
        key=key, clip_id=item.clip_id, window=window.index, parent_key=parent_key, parent_run=parent_run,
        source=SourceInfo(kind=item.source, uri=item.uri,  # type: ignore[arg-type]
                          provenance={k: v for k, v in item.provenance.items() if k != "sha256"}),
        license=item.provenance.get("license"), attribution=_attribution(item.provenance),
        source_span_s=window.span_s, tags=window.tags, event_group=_event_group(window.tags),
        interruption=aug.kind, caption=caption.text, caption_source=caption.source, caption_note=caption.note,
        scores=window.scores, vlm=window.vlm,
        geometry=GeometryMeta(
            known=known, backend=geometry.get("backend", "none") if known else "none",
            has_depth=window.depth is not None,
            translation_centre=geometry.get("translation_centre"), translation_scale=geometry.get("translation_scale"),
            quality={k: float(v) for k, v in (geometry.get("quality") or {}).items()},
            reason=None if known else geometry.get("reason"),
            excluded_interruptions=list(geometry.get("excluded_interruptions") or [])),
        augment={"kind": aug.kind.value, "fallback_from": aug.fallback_from, **aug.params}, truth=truth,
        config_hash=run.clip_hash, run_id=run.run_id, **meta_fields(window))


def _jsonable(value: Any) -> Any:
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else str(value)


def cache_window(window: Window, clean_mp4: bytes, run: RunContext) -> Path:
    """Everything regenerate needs to redo augmentation without the source, the filters or geometry."""
    directory = run.windows / window.window_id
    tmp = run.tmp / f"window-{window.window_id}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "clean.mp4").write_bytes(clean_mp4)
    arrays = {"camera.npy": window.camera_c2w, "intrinsics.npy": window.intrinsics,
              "depth.npy": None if window.depth is None else downsample_depth(window.depth),
              "depth_conf.npy": None if window.depth_conf is None else downsample_depth(window.depth_conf)}
    if window.truth is not None:
        arrays.update({"truth_state.npy": window.truth.state, "truth_object_box.npy": window.truth.object_box})
    for name, array in arrays.items():
        if array is not None:
            (tmp / name).write_bytes(npy_bytes(np.asarray(array)))
    record = {
        "item": {"clip_id": window.item.clip_id, "source": window.item.source, "uri": window.item.uri,
                 "path": window.item.path, "provenance": window.item.provenance},
        "index": window.index, "start_frame": window.start_frame, "span_s": list(window.span_s),
        "scores": window.scores, "tags": window.tags, "caption": window.caption, "vlm": window.vlm,
        "geometry": window.geometry, "dynamic_box": list(window.dynamic_box) if window.dynamic_box else None,
        "truth": None if window.truth is None else {
            "event_type": window.truth.event_type, "caption": window.truth.caption,
            "loop_return_frame": window.truth.loop_return_frame, "extra": window.truth.extra},
        "checksums": {p.name: sha256_file(p) for p in sorted(tmp.iterdir())},
    }
    (tmp / "window.json").write_text(json.dumps(record, indent=1, sort_keys=True, default=_jsonable))
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return directory


def stage_sample(sample: Sample, clean_path: Path | None, run: RunContext) -> Path:
    """Write a sample's members as files named by extension, then rename the folder into place."""
    directory = run.samples / sample.key
    tmp = run.tmp / f"sample-{sample.key}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for ext, data in with_checksums(sample.to_members()).items():  # checksums.json: schema 1.1.0
        if ext == "mp4" and clean_path is not None:
            os.link(clean_path, tmp / "mp4")  # the clean clip is encoded once, shared with the window cache
        else:
            (tmp / ext).write_bytes(data)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return directory


@dataclass
class Written:
    key: str
    seconds: float


def encode_and_stage(window: Window, run: RunContext, clean_mp4: bytes | None = None,
                     parent_key: str | None = None, parent_run: str | None = None) -> Written:
    started = time.perf_counter()
    enc = run.config.encode
    aug: Augmented = window.augmented
    key = sample_key(window)
    keys = CHUNK_KEYFRAMES  # IDR at every chunk start: clean and degraded encode alike outside the interval
    fps = run.config.normalise.fps
    if clean_mp4 is None:
        clean_mp4 = encode_h264(window.frames, fps, enc.crf, enc.preset, enc.threads, keys)
        clean_path = cache_window(window, clean_mp4, run) / "clean.mp4"
    else:
        clean_path = run.windows / window.window_id / "clean.mp4"
    clean_frames = window.frames
    view = cropped_view(window, aug)  # a crop-moving kind renders the clean clip at its crop (issue 12)
    if view is not None:
        clean_mp4 = encode_over(aug.clean_frames, clean_frames, clean_mp4, fps, enc.crf, enc.preset, enc.threads, keys)
        clean_frames = aug.clean_frames
    degraded = None
    if aug.degraded is not None:  # equal to the clean clip outside the interval: only the interval's GOPs encoded
        degraded = encode_over(aug.degraded, clean_frames, clean_mp4, fps, enc.crf, enc.preset, enc.threads, keys)
    meta = sample_meta(window, aug, run, key, parent_key, parent_run)
    depth, depth_conf, intrinsics = view if view is not None else (window.depth, window.depth_conf, window.intrinsics)
    sample = Sample(key=key, mp4=clean_mp4, graph=aug.graph, meta=meta, degraded_mp4=degraded,
                    camera=window.camera_c2w, intrinsics=intrinsics,
                    degraded_camera=aug.degraded_camera, degraded_intrinsics=aug.degraded_intrinsics,
                    depth=None if depth is None else downsample_depth(depth),
                    depth_conf=None if depth_conf is None else downsample_depth(depth_conf),
                    caption=meta.caption, degraded_caption=aug.description if aug.degraded is not None else "")
    stage_sample(sample, None if view is not None else clean_path, run)
    return Written(key, time.perf_counter() - started)


def manifest_row(run: RunContext, window_or_none: Window | None, clip: Clip, status: str, reason: str | None = None,
                 error: str | None = None, key: str | None = None, outcome: Outcome | None = None,
                 seconds: float = 0.0, parent_key: str | None = None) -> ManifestRow:
    item = clip.item
    w = window_or_none
    tags = list(w.tags) if w else (outcome.tags if outcome else [])
    scores = dict(w.scores) if w else (outcome.scores if outcome else {})
    span = w.span_s if w else (outcome.span_s if outcome else None)
    aug = w.augmented if w else None
    vlm = (w.vlm if w else (outcome.extra.get("vlm") if outcome else None)) or {}
    return ManifestRow(
        run_id=run.run_id, clip_id=item.clip_id, window=w.index if w else (outcome.window if outcome else None),
        source=item.source, uri=item.uri, status=status, reason=reason, error=error, key=key,  # type: ignore[arg-type]
        parent_key=parent_key, event_type=tags[0] if tags else None, event_group=_event_group(tags), tags=tags,
        interruption=aug.kind.value if aug else None, scores={k: float(v) for k, v in scores.items()},
        source_start_s=span[0] if span else None, source_end_s=span[1] if span else None,
        geometry_backend=(w.geometry or {}).get("backend") if w else None,
        vlm_decision=vlm.get("decision"), vlm_reason=vlm.get("reason"), caption=(choose_caption(w).text or None) if w else None,
        config_hash=run.clip_hash, seconds=round(seconds, 4), **manifest_fields(item, w))


@dataclass
class ClipResult:
    clip_id: str
    rows: list[ManifestRow]
    timings: dict[str, float]


def write_samples(clip: Clip, run: RunContext) -> ClipResult:
    """Encode and stage every surviving window, then commit the clip's ledger: the clip is done. A clip from a
    window cache (``clip.notes["cache"]``, tasks/sources/cache.py) reuses its cached clean clips and names its
    parent samples."""
    started = time.perf_counter()
    cache = clip.notes.get("cache")
    rows: list[ManifestRow] = []
    for window in clip.windows:
        cached = cache.stage_args(window) if cache else {}
        parent_key = cached.get("parent_key")
        try:
            written = encode_and_stage(window, run, **cached)
            rows.append(manifest_row(run, window, clip, "accepted", key=written.key, seconds=written.seconds,
                                     parent_key=parent_key))
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
                raise  # the machine's fault, not the window's: never committed, so the rerun redoes the clip
            rows.append(manifest_row(run, window, clip, "failed", "write_error", describe_error(exc),
                                     parent_key=parent_key))
    for outcome in clip.outcomes:
        rows.append(manifest_row(run, None, clip, outcome.status, outcome.reason, outcome.error, outcome=outcome,
                                 parent_key=cache.parent_key(outcome.window) if cache else None))
    rows = cache.rows(rows, run) if cache else rows
    save_thumbnails(clip, run)
    clip.timings["write-samples"] = time.perf_counter() - started
    commit_clip(clip, rows, run)
    return ClipResult(clip.item.clip_id, rows, dict(clip.timings))


def save_thumbnails(clip: Clip, run: RunContext) -> None:
    """Audit thumbnails (VLM-judged windows, kept or not) as OUT/previews/vlm/<window_id>.jpg."""
    pictures = [(w.window_id, w.thumbnail) for w in clip.windows if w.thumbnail is not None]
    pictures += [(o.window_id, o.extra["thumbnail"]) for o in clip.outcomes if "thumbnail" in o.extra]
    for window_id, image in pictures:
        ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            atomic_write_bytes(run.previews / "vlm" / f"{window_id}.jpg", jpeg.tobytes(), run.tmp)


def commit_clip(clip: Clip, rows: list[ManifestRow], run: RunContext) -> None:
    """The ledger entry is written last: its presence (with matching hashes) means the clip is finished."""
    keys = [r.key for r in rows if r.key]
    members = {k: {p.name: sha256_file(p) for p in sorted((run.samples / k).iterdir()) if p.is_file()}
               for k in keys}  # every staged member, so a flipped byte anywhere is found before packing
    atomic_write_json(run.clips / f"{clip.item.clip_id}.json", {
        "clip_id": clip.item.clip_id, "clip_hash": run.clip_hash, "rows": [r.model_dump(mode="json") for r in rows],
        "timings": clip.timings,
        "checksums": {k: members[k]["mp4"] for k in keys},  # mp4 only: what older ledgers hold
        "member_checksums": members})
    window_ids = [w.window_id for w in clip.windows] + [o.window_id for o in clip.outcomes if o.window_id]
    run.store.commit_clip(run, clip.item.clip_id, window_ids, keys)  # s3://: cache, samples, then the entry


BuildGraph = function_stage(build_samples, input_type=Clip, output_type=Clip, name="build-graph")
class WriteSamples(function_stage(write_samples, input_type=Clip, output_type=ClipResult, uses="run",
                                  resources=Resources(cpus=2.0))):  # x264
    @classmethod
    def workers_for(cls, config: Config) -> int:
        """Two clips encode at once: x264 spreads one encode over the cores, but feeding it (RGB to YUV, one frame
        at a time) and staging the files run on one; executor.workers overrides."""
        return 2
