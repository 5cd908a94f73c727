"""Stages source -> frames -> windows: decode each source once, find its scene cuts, cut 81-frame windows."""
from __future__ import annotations

import time

from engine.stage import ProcessingStage, Resources
from schemas.config import Config, NormaliseConfig
from tasks.prefilter.cuts import _detector, boundary_frames, detect_transitions, find_cuts  # noqa: F401
from tasks.records import SourceFacts, SourceItem, Window
from tasks.sources.native import window_geometry
from tasks.sources.with_cameras import decode_with_cameras
from tasks.sources.local import localise
from tasks.clip import Clip, Outcome, describe_error
from tasks.video_io import DecodeError, DecodeTimeout, decode_normalised


def frames_needed(config: Config) -> int | None:
    """With the reject policy the windows sit at fixed starts, so decoding can stop after the last one."""
    norm = config.normalise
    if config.prefilter.scene_cut.policy != "reject":
        return None
    return (norm.windows_per_video - 1) * norm.window_stride_frames + norm.num_frames


def decode_source(clip: Clip, config: Config) -> Clip:
    """Render (synthetic) or decode (files) the source once, at 16 fps and 480x832. Never raises."""
    started = time.perf_counter()
    item, norm = clip.item, config.normalise
    try:
        if item.error:
            clip.outcomes.append(Outcome("failed", "source_error", error=item.error, stage="decode-source"))
        elif item.source == "synthetic":
            from tasks.sources.synthetic import render_item

            synth = render_item(item, config.synthetic, num_frames=norm.num_frames, height=norm.height,
                                width=norm.width)
            clip.frames, clip.truth = synth.frames, synth.to_ground_truth()
            clip.facts = SourceFacts(float(norm.fps), len(synth.frames) / norm.fps, "synthetic")
        elif (native := decode_with_cameras(item, config, frames_needed(config))) is not None:
            clip.frames, clip.native, clip.facts = native[0], native[1], SourceFacts(**native[2])  # DL3DV, cameras
        else:
            video = decode_normalised(item.path or item.uri, norm.fps, norm.height, norm.width,
                                      norm.max_source_seconds, norm.decode_timeout_s, frames_needed(config))
            clip.frames = video.frames
            clip.facts = SourceFacts(video.source_fps, video.duration_s, video.codec, video.source_size, video.scale,
                                     video.crop_xy, video.truncated)
    except DecodeTimeout as exc:  # a hung demuxer (FIFO, stalled mount) or a source too slow to decode
        clip.outcomes.append(Outcome("failed", "decode_timeout", error=str(exc), stage="decode-source"))
    except DecodeError as exc:
        clip.outcomes.append(Outcome("failed", "decode_error", error=str(exc), stage="decode-source"))
    except Exception as exc:  # noqa: BLE001 - an unexpected decoder failure is this input's failure only
        clip.outcomes.append(Outcome("failed", "decode_error", error=describe_error(exc), stage="decode-source"))
    clip.timings["decode-source"] = time.perf_counter() - started
    return clip


def detect_scene_cuts(clip: Clip, config: Config) -> Clip:
    started = time.perf_counter()
    if clip.frames is not None:
        try:
            frames = clip.frames
            if clip.truth is not None:  # a rendered clip is one shot by construction: nothing to find
                clip.cuts, clip.transitions, clip.cut_detector = [], [], "ground_truth"
                clip.timings["detect-scene-cuts"] = time.perf_counter() - started
                return clip
            result = detect_transitions(frames, float(config.normalise.fps), config.prefilter.scene_cut)
            clip.cuts = boundary_frames(result.transitions, len(frames))
            clip.transitions = [(t.start, t.end) for t in result.transitions]
            clip.cut_detector = result.detector
            clip.cut_model_fraction = result.model_fraction(len(frames))
            if result.fallback_reason:
                clip.cut_detector_fallback = result.fallback_reason
        except Exception as exc:  # noqa: BLE001
            clip.outcomes.append(Outcome("failed", "scene_cut_error", error=describe_error(exc),
                                         stage="detect-scene-cuts"))
            clip.frames = None
    clip.timings["detect-scene-cuts"] = time.perf_counter() - started
    return clip


def window_starts(num_frames: int, cuts: list[int], norm: NormaliseConfig, policy: str) -> list[tuple[int, int | None]]:
    """Candidate window starts, each with the first cut inside it (None when cut-free)."""
    n = norm.num_frames
    if policy == "split":
        bounds = [0, *cuts, num_frames]
        starts = []
        for lo, hi in zip(bounds, bounds[1:]):
            starts += [(s, None) for s in range(lo, hi - n + 1, norm.window_stride_frames)]
        return starts[: norm.windows_per_video]
    starts = list(range(0, num_frames - n + 1, norm.window_stride_frames))[: norm.windows_per_video]
    return [(s, next((c for c in cuts if s < c <= s + n - 1), None)) for s in starts]


def cut_windows(clip: Clip, config: Config) -> Clip:
    """81-frame windows (stride and count from config); windows with a cut are rejected with the cut frame."""
    started = time.perf_counter()
    frames, truth, native, cuts = clip.frames, clip.truth, clip.native, clip.cuts
    clip.frames = clip.truth = clip.native = None  # the windows hold them from here on
    if frames is None:
        return clip
    norm, fps = config.normalise, config.normalise.fps
    starts = window_starts(len(frames), cuts, norm, config.prefilter.scene_cut.policy)
    if not starts:
        reason = "too_short" if len(frames) < norm.num_frames else "no_cut_free_window"
        detail = (f"{len(frames)} frames at {fps} fps ({len(frames) / fps:.2f} s) is shorter than one "
                  f"{norm.num_frames}-frame window" if reason == "too_short"
                  else f"no shot of {norm.num_frames} frames between cuts at {cuts}")
        clip.outcomes.append(Outcome("rejected", reason, error=detail, stage="cut-windows"))
    for index, (start, cut) in enumerate(starts):
        span = (start / fps, (start + norm.num_frames) / fps)
        window = Window(item=clip.item, index=index, start_frame=start,
                        frames=frames[start:start + norm.num_frames], span_s=span, truth=truth)
        if cut is not None:
            clip.drop(window, Outcome("rejected", "scene_cut", error=f"cut at source frame {cut} "
                                      f"({cut / fps:.2f} s)", stage="cut-windows", scores={"scene_cuts": 1.0}))
            continue
        window.scores["scene_cuts"] = 0.0
        if clip.cut_detector_fallback:
            window.scores["scene_cut_fallback"] = 1.0
        window_geometry(native, window)  # a source's own cameras, anchored to the window's first frame
        retrieved_for = clip.item.provenance.get("event_type")  # the taxonomy type a retrieval query targeted
        if retrieved_for:
            window.tags = [retrieved_for]
        if truth is not None:
            window.camera_c2w, window.intrinsics, window.depth = truth.camera_c2w, truth.intrinsics, truth.depth
            window.tags = [truth.event_type] if truth.event_type else []
            window.caption = truth.caption or ""
        clip.windows.append(window)
    clip.timings["cut-windows"] = time.perf_counter() - started
    return clip


class DecodeSource(ProcessingStage[SourceItem, Clip]):
    """Source -> Clip with its frames decoded once (or rendered)."""

    name, input_type, output_type, resources = "decode-source", SourceItem, Clip, Resources(cpus=1.0)

    def process(self, item: SourceItem) -> Clip:
        item = localise(item, self.run.out) if self.run is not None else item  # s3://: fetched where decoded
        return decode_source(Clip(item), self.config)


class DetectSceneCuts(ProcessingStage[Clip, Clip]):
    name, input_type, output_type, resources = "detect-scene-cuts", Clip, Clip, Resources(cpus=1.0, memory_mb=400)

    @classmethod
    def resources_for(cls, config: Config) -> Resources:
        """TransNetV2 on CUDA is a GPU stage (an actor pool on Ray): a small model (about 1 GB of GPU memory at
        batch 1), so four workers share a GPU."""
        cuts = config.prefilter.scene_cut
        if cuts.detector == "transnetv2" and cuts.transnet_device == "cuda":
            return Resources(cpus=1.0, gpus=0.25, memory_mb=400)
        return cls.resources

    @classmethod
    def workers_for(cls, config: Config) -> int:
        """TransNetV2 on CPU: two workers of ``transnet_threads`` (1) each, sharing one model. A clip's forward
        passes run one after another and are small, so two clips at once use two cores better than one clip on
        two intra-op threads (which mostly wait); executor.workers overrides."""
        cuts = config.prefilter.scene_cut
        return 2 if cuts.detector == "transnetv2" and cuts.transnet_device == "cpu" else 1

    def setup(self) -> None:
        _detector(self.config.prefilter.scene_cut.model_dump_json())  # TransNetV2 weights: once per process

    def process(self, clip: Clip) -> Clip:
        return detect_scene_cuts(clip, self.config)


class CutWindows(ProcessingStage[Clip, Clip]):
    """Clip -> its 81-frame windows; a window with a scene cut inside leaves as a rejected outcome."""

    name, input_type, output_type, resources = "cut-windows", Clip, Clip, Resources(cpus=1.0)

    def process(self, clip: Clip) -> Clip:
        return cut_windows(clip, self.config)
