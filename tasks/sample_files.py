"""What the write stage leaves on disk for a window: its window cache entry (what regenerate reuses), the staged
sample's members, the audit thumbnails, and the clip's ledger entry (written last: the clip is done)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.run import RunContext, atomic_write_bytes, atomic_write_json, sha256_file
from schemas.constants import DEPTH_HEIGHT, DEPTH_WIDTH
from schemas.manifest import ManifestRow
from schemas.sample_io import Sample, npy_bytes, with_checksums
from tasks.clip import Clip
from tasks.records import Window


def downsample_depth(depth: np.ndarray) -> np.ndarray:
    """(N,H,W) -> (N,120,208) float16; nearest, so no depth is invented at object boundaries. Depth already at
    120x208 float16 comes back bit for bit (a resize to the same size is a copy; float16 -> float32 is exact)."""
    return np.stack([cv2.resize(d.astype(np.float32), (DEPTH_WIDTH, DEPTH_HEIGHT), interpolation=cv2.INTER_NEAREST)
                     for d in depth]).astype(np.float16)


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
            "loop_return_frame": window.truth.loop_return_frame, "extra": window.truth.facts()},
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


def save_thumbnails(clip: Clip, run: RunContext) -> None:
    """Audit thumbnails (VLM-judged windows, kept or not) as OUT/previews/vlm/<window_id>.jpg."""
    pictures = [(w.window_id, w.thumbnail) for w in clip.windows if w.thumbnail is not None]
    pictures += [(o.window_id, o.thumbnail) for o in clip.outcomes if o.thumbnail is not None]
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
