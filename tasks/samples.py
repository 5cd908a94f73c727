"""Stages window -> sample: draw an interruption, build the frame graph, encode once, stage the members.

``build_samples`` is pure (frames in, frames and graph out). ``write_samples`` is the only place that encodes:
the clean clip once into the window cache (which regenerate reuses) and the degraded clip once into the
sample; the sample's ``mp4`` is a hard link to the cached clean clip, never a re-encode.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from engine.run import RunContext
from engine.stage import ENVIRONMENT_ERRNOS, ProcessingStage, Resources
from schemas.config import Config
from schemas.manifest import ManifestRow
from schemas.sample_io import Sample
from tasks.augment import Augmented, augment, choose_kind
from tasks.augment.clean_view import CHUNK_KEYFRAMES, cropped_view
from tasks.clip import Clip, describe_error, per_window
from tasks.records import Window
from tasks.sample_fields import manifest_row, sample_meta
from tasks.sample_files import cache_window, commit_clip, downsample_depth, save_thumbnails, stage_sample
from tasks.video_io import encode_h264
from tasks.video_splice import encode_over


def sample_key(window: Window) -> str:
    return window.window_id.lower()


def ordinal(window: Window) -> int | None:
    """A small-run-friendly index for the kind mixture (the synthetic clip index), else None (hash-based)."""
    return window.truth.index if window.truth is not None else None


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


@dataclass
class Written:
    key: str
    seconds: float


def encode_and_stage(window: Window, run: RunContext) -> Written:
    """Encode the clean clip (unless the window brings it, already in the window cache) and the degraded one, and
    stage the sample."""
    started = time.perf_counter()
    enc = run.config.encode
    aug: Augmented = window.augmented
    key = sample_key(window)
    keys = CHUNK_KEYFRAMES  # IDR at every chunk start: clean and degraded encode alike outside the interval
    fps = run.config.normalise.fps
    clean_mp4 = window.clean_mp4
    if clean_mp4 is None:  # not encoded yet: once, into the window cache (a cache source's window brings it there)
        clean_mp4 = encode_h264(window.frames, fps, enc.crf, enc.preset, enc.threads, keys)
        cache_window(window, clean_mp4, run)
    clean_path = run.windows / window.window_id / "clean.mp4"
    clean_frames = window.frames
    view = cropped_view(window, aug)  # a crop-moving kind renders the clean clip at its crop (issue 12)
    if view is not None:
        clean_mp4 = encode_over(aug.clean_frames, clean_frames, clean_mp4, fps, enc.crf, enc.preset, enc.threads, keys)
        clean_frames = aug.clean_frames
    degraded = None
    if aug.degraded is not None:  # equal to the clean clip outside the interval: only the interval's GOPs encoded
        degraded = encode_over(aug.degraded, clean_frames, clean_mp4, fps, enc.crf, enc.preset, enc.threads, keys)
    meta = sample_meta(window, aug, run, key)
    depth, depth_conf, intrinsics = view if view is not None else (window.depth, window.depth_conf, window.intrinsics)
    sample = Sample(key=key, mp4=clean_mp4, graph=aug.graph, meta=meta, degraded_mp4=degraded,
                    camera=window.camera_c2w, intrinsics=intrinsics,
                    degraded_camera=aug.degraded_camera, degraded_intrinsics=aug.degraded_intrinsics,
                    depth=None if depth is None else downsample_depth(depth),
                    depth_conf=None if depth_conf is None else downsample_depth(depth_conf),
                    caption=meta.caption, degraded_caption=aug.description if aug.degraded is not None else "")
    stage_sample(sample, None if view is not None else clean_path, run)
    return Written(key, time.perf_counter() - started)


@dataclass
class ClipResult:
    clip_id: str
    rows: list[ManifestRow]
    timings: dict[str, float]
    cut_model_fraction: float | None = None  # share of frames TransNetV2 scored
    cut_detector_fallback: str | None = None  # why the configured cut detector was not used


def write_samples(clip: Clip, run: RunContext) -> ClipResult:
    """Encode and stage every surviving window, then commit the clip's ledger: the clip is done. The rows decided
    before this run (``clip.carried``, a cache source's) follow the clip's own, as they are."""
    started = time.perf_counter()
    rows: list[ManifestRow] = []
    for window in clip.windows:
        try:
            written = encode_and_stage(window, run)
            rows.append(manifest_row(run, window, clip, "accepted", key=written.key, seconds=written.seconds))
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
                raise  # the machine's fault, not the window's: never committed, so the rerun redoes the clip
            rows.append(manifest_row(run, window, clip, "failed", "write_error", describe_error(exc)))
        window.clean_mp4 = None
    for outcome in clip.outcomes:
        rows.append(manifest_row(run, None, clip, outcome.status, outcome.reason, outcome.error, outcome=outcome))
    rows += clip.carried
    save_thumbnails(clip, run)
    clip.timings["write-samples"] = time.perf_counter() - started
    commit_clip(clip, rows, run)
    return ClipResult(clip.item.clip_id, rows, dict(clip.timings), clip.cut_model_fraction,
                      clip.cut_detector_fallback)


class BuildGraph(ProcessingStage[Clip, Clip]):
    """Clip -> Clip with each window's interruption drawn and its frame graph derived (``build_samples``)."""

    name, input_type, output_type, resources = "build-graph", Clip, Clip, Resources(cpus=1.0)

    def process(self, clip: Clip) -> Clip:
        return build_samples(clip, self.config)


class WriteSamples(ProcessingStage[Clip, ClipResult]):
    """Clip -> ClipResult: every window encoded and staged, the clip's ledger committed (``write_samples``)."""

    name, input_type, output_type, resources = "write-samples", Clip, ClipResult, Resources(cpus=2.0)  # x264

    @classmethod
    def workers_for(cls, config: Config) -> int:
        """Two clips encode at once: x264 spreads one encode over the cores, but feeding it (RGB to YUV, one frame
        at a time) and staging the files run on one; executor.workers overrides."""
        return 2

    def process(self, clip: Clip) -> ClipResult:
        return write_samples(clip, self.run)
