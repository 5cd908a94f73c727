"""The run configuration: one pydantic model, defaults that run anywhere offline on CPU.

A YAML file sets only the keys it overrides (deep merge over the defaults). ``configs/offline.yaml`` is the
default profile and must equal ``Config()``; ``configs/gpu.yaml`` selects the real checkpoints.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NormaliseConfig(_Section):
    fps: int = 16
    height: int = 480
    width: int = 832
    num_frames: int = 81
    windows_per_video: int = Field(2, ge=1, description="At most this many 81-frame windows per source video.")
    window_stride_frames: int = Field(81, ge=1, description="Frames between window starts (81 = no overlap).")
    max_source_seconds: float = Field(60.0, gt=0, description="Decode at most this much of each source.")
    decode_timeout_s: float = Field(120.0, gt=0)


class SceneCutConfig(_Section):
    detector: Literal["adaptive", "content", "none"] = "adaptive"
    threshold: float = Field(3.0, gt=0, description="AdaptiveDetector adaptive_threshold / ContentDetector threshold.")
    min_scene_frames: int = Field(8, ge=1)
    analysis_height: int = Field(144, ge=32, description="Cuts are detected on frames downscaled to this height.")
    policy: Literal["reject", "split"] = Field(
        "reject", description="reject: windows containing a cut are rejected; split: windows are placed inside shots.")


class MotionConfig(_Section):
    analysis_height: int = Field(120, ge=16, description="Motion is measured on frames downscaled to this height.")
    frame_step: int = Field(4, ge=1, description="Compare frames this far apart: slow changes (growth, filling) "
                                                 "show up, and it is that many times cheaper.")
    pixel_threshold: float = Field(1.0, gt=0, description="Residual flow (px at analysis scale) that counts as moving.")
    discount_camera_motion: bool = True
    min_spatial_occupancy: float = Field(0.03, ge=0, le=1, description="Fraction of the frame in the dynamic region.")
    max_spatial_occupancy: float = Field(0.95, ge=0, le=1, description="Above this the whole frame moves (pure camera).")
    min_temporal_occupancy: float = Field(0.5, ge=0, le=1, description="Fraction of frames with enough motion.")
    frame_active_fraction: float = Field(0.003, ge=0, le=1, description="A frame is active above this moving fraction.")


class PrefilterConfig(_Section):
    scene_cut: SceneCutConfig = SceneCutConfig()
    motion: MotionConfig = MotionConfig()


class VLMConfig(_Section):
    enabled: bool = Field(False, description="Off in the offline profile: random weights cannot judge.")
    backend: Literal["transformers", "openai"] = "transformers"
    model: str = Field("", description="Hub id or local path (transformers) or served model name (openai).")
    base_url: str = Field("", description="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the server's key, if any.")
    prompt_version: str = "judge-v1"
    num_frames: int = Field(8, ge=1)
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 256 * 28 * 28
    batch_size: int = Field(4, ge=1)
    max_new_tokens: int = Field(256, ge=16)
    concurrency: int = Field(4, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    retry_backoff_s: float = Field(1.0, ge=0, description="openai: first backoff; doubles per retry, plus jitter.")
    retry_backoff_max_s: float = Field(30.0, ge=0)
    json_mode: bool = Field(False, description="openai: send response_format json_object (vLLM guided decoding).")
    dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    min_confidence: float = Field(0.5, ge=0, le=1)
    min_spatial_occupancy: float = Field(0.1, ge=0, le=1)
    min_temporal_occupancy: float = Field(0.6, ge=0, le=1)
    num_gpus_per_worker: float = Field(0.0, ge=0)
    num_cpus_per_worker: float = Field(1.0, ge=0, description="Ray actor CPU reservation.")
    num_workers: int = Field(1, ge=1)


class GeometryConfig(_Section):
    backend: Literal["classical", "da3", "none"] = "classical"
    model: str = Field("", description="DA3 checkpoint dir or hub id (backend da3).")
    process_res: int = Field(504, ge=14)
    subset_frames: int = Field(0, ge=0, description="Run on this many evenly spaced frames and interpolate (0 = all).")
    assumed_hfov_deg: float = Field(60.0, gt=1, lt=179, description="Classical backend focal length assumption.")
    cross_check: bool = Field(True, description="DA3: also run the classical backend and record the disagreement.")
    cross_check_max_deg: float = Field(2.0, gt=0, description="Flag (not reject) a median per-pair rotation "
                                       "disagreement above this between DA3 and the classical backend.")
    max_rotation_step_deg: float = Field(15.0, gt=0, description="Implausible jump between consecutive frames.")
    max_translation_step: float = Field(0.5, gt=0, description="Per-frame step, as a fraction of the clip's extent.")
    min_confidence: float = Field(0.0, ge=0, description="Reject below this mean depth confidence (DA3 conf >= 1).")
    max_untracked_fraction: float = Field(0.5, ge=0, le=1, description="Classical: reject when more of the "
                                          "frame steps than this had too few feature tracks.")
    num_gpus_per_worker: float = Field(0.0, ge=0)
    num_workers: int = Field(1, ge=1)


class LightToggleConfig(_Section):
    fade_frames: tuple[int, int] = Field((4, 10), description="Fade-out / fade-in length range, frames (each drawn).")
    dark_frames: tuple[int, int] = Field((12, 30), description="Dark interval length range, frames.")
    min_level: tuple[float, float] = Field((0.0, 0.25), description="Light level while dark (0 black, <1 partial).")

    @model_validator(mode="after")
    def _ranges(self) -> "LightToggleConfig":
        if min(self.fade_frames) < 0 or min(self.dark_frames) < 1 or not 0 <= min(self.min_level) <= max(
                self.min_level) < 1:
            raise ValueError("light_toggle needs fade_frames >= 0, dark_frames >= 1 and 0 <= min_level < 1")
        return self


class OccluderConfig(_Section):
    shapes: list[Literal["rect", "ellipse"]] = ["rect", "ellipse"]
    textured: bool = True
    cover: Literal["dynamic_region", "full_frame", "either"] = "either"
    speed_px_per_frame: tuple[float, float] = Field(
        (40.0, 90.0), description="Slide speed range; raised when the pass would not fit frames 9..68.")
    hold_frames: tuple[int, int] = Field((8, 24), description="Frames the shape stands still over the region.")

    @model_validator(mode="after")
    def _ranges(self) -> "OccluderConfig":
        if not self.shapes or min(self.speed_px_per_frame) <= 0 or min(self.hold_frames) < 0:
            raise ValueError("occluder needs a shape, speed_px_per_frame > 0 and hold_frames >= 0")
        return self


class ZoomConfig(_Section):
    peak_scale: tuple[float, float] = Field((1.6, 2.5), description="Peak crop scale range (> 1 zooms in).")
    ramp_frames: tuple[int, int] = Field((8, 16), description="Ramp-in / ramp-out length range, frames.")
    hold_frames: tuple[int, int] = Field((4, 16), description="Frames held at the peak scale.")

    @model_validator(mode="after")
    def _ranges(self) -> "ZoomConfig":
        if min(self.peak_scale) <= 1.0 or min(self.ramp_frames) < 0 or min(self.hold_frames) < 1:
            raise ValueError("zoom needs peak_scale > 1, ramp_frames >= 0 and hold_frames >= 1")
        return self


class CameraLoopConfig(_Section):
    max_pan_fraction: float = Field(0.6, gt=0, le=1, description="Virtual pan reach, as a fraction of frame width.")
    crop_scale: float = Field(1.5, ge=1.0, description="Zoom-in that creates margin for a crop-window pan.")
    away_frames: tuple[int, int] = Field((10, 24), description="Virtual loop length range: away and back, frames.")

    @model_validator(mode="after")
    def _ranges(self) -> "CameraLoopConfig":
        if min(self.away_frames) < 3:
            raise ValueError("camera_loop needs away_frames >= 3 (out, hold, back)")
        return self


class ExitEntryConfig(_Section):
    crop_scale: float = Field(2.0, ge=1.0, description="Crop zoom-in; the crop pans until the subject has left.")
    min_hidden_frames: int = Field(6, ge=1, description="Shortest accepted out-of-view interval, frames.")


class AugmentConfig(_Section):
    mixture: dict[Literal["none", "camera_loop", "light_toggle", "occluder", "zoom", "exit_entry"], float] = {
        "none": 1.0, "camera_loop": 1.0, "light_toggle": 1.0, "occluder": 1.0, "zoom": 1.0, "exit_entry": 1.0}
    light_toggle: LightToggleConfig = LightToggleConfig()
    occluder: OccluderConfig = OccluderConfig()
    zoom: ZoomConfig = ZoomConfig()
    camera_loop: CameraLoopConfig = CameraLoopConfig()
    exit_entry: ExitEntryConfig = ExitEntryConfig()

    @model_validator(mode="after")
    def _mixture_positive(self) -> "AugmentConfig":
        if not self.mixture or sum(self.mixture.values()) <= 0 or min(self.mixture.values()) < 0:
            raise ValueError("augment.mixture needs non-negative weights with a positive sum")
        return self


class EncodeConfig(_Section):
    codec: Literal["libx264"] = "libx264"
    crf: int = Field(23, ge=0, le=51)
    preset: str = "veryfast"
    threads: int = Field(0, ge=0, description="0 = let x264 decide.")


class PackConfig(_Section):
    max_shard_bytes: int = Field(1 << 30, gt=0)
    max_shard_samples: int = Field(1000, gt=0)
    depth_height: int = 120
    depth_width: int = 208


class PexelsConfig(_Section):
    api_url: str = Field("https://api.pexels.com/videos/", description="Overridden by env PEXELS_API_URL.")
    api_key_env: str = "PEXELS_API_KEY"
    secret_block: str = Field("", description="Prefect Secret block holding the key, if not in the environment.")
    permission_confirmed: bool = Field(False, description="Operator holds Pexels' permission for dataset use.")
    event_types: list[str] = Field(default_factory=list, description="Restrict to these taxonomy ids (empty = all).")
    per_type_quota: int = Field(4, ge=1, description="Videos to download per event type (scaled by importance).")
    per_page: int = Field(80, ge=1, le=80)
    max_pages_per_query: int = Field(2, ge=1)
    max_requests: int = Field(50, ge=0, description="Cap on API requests for one run.")
    hourly_limit: int = 200
    monthly_limit: int = 20000
    min_width: int = 832
    min_fps: float = Field(16.0, ge=0, description="Skip video files whose known fps is lower (null fps passes).")
    min_duration_s: float = Field(81 / 16, gt=0)
    max_download_bytes: int = Field(200 << 20, gt=0)
    download_timeout_s: float = Field(300.0, gt=0)
    request_timeout_s: float = Field(30.0, gt=0)
    cache_ttl_s: float = Field(24 * 3600.0, ge=0)
    retries: int = Field(4, ge=0)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    store_dir: str = Field("", description="Content-addressed download store and state (default OUT/pexels).")
    locale: str = "en-US"


class SyntheticConfig(_Section):
    seed: int = 0
    families: list[Literal["fill", "translate", "rotate", "grow", "light"]] = [
        "fill", "translate", "rotate", "grow", "light"]
    trajectories: list[Literal["static", "pan", "pan_return"]] = ["static", "pan", "pan_return"]


class RayConfig(_Section):
    address: str = Field("", description="Existing Ray cluster ('auto' or ray://...). Empty = run locally.")
    enabled: bool = False
    num_cpus: int = Field(0, ge=0, description="For a local Ray: 0 = all cores.")
    max_in_flight: int = Field(4, ge=1, description="Bounded queue: clips in flight at once.")


class Config(_Section):
    """Everything a run needs. Defaults = configs/offline.yaml: runs anywhere, on CPU, with no weights."""

    seed: int = 0
    normalise: NormaliseConfig = NormaliseConfig()
    prefilter: PrefilterConfig = PrefilterConfig()
    vlm: VLMConfig = VLMConfig()
    geometry: GeometryConfig = GeometryConfig()
    augment: AugmentConfig = AugmentConfig()
    encode: EncodeConfig = EncodeConfig()
    pack: PackConfig = PackConfig()
    pexels: PexelsConfig = PexelsConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    ray: RayConfig = RayConfig()

    def section_hash(self, *sections: str) -> str:
        """Stable hash of the named sections (all when none): the cache key of work that depends on them."""
        data = self.model_dump(mode="json")
        picked = {name: data[name] for name in (sections or tuple(sorted(data)))}
        blob = json.dumps(picked, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def config_hash(self) -> str:
        return self.section_hash()


REPLACED_WHOLE = ("mixture",)  # a weight map in a file means exactly those weights: a kind left out is not drawn


def deep_merge(base: dict[str, Any], override: dict[str, Any], replace: tuple[str, ...] = REPLACED_WHOLE
               ) -> dict[str, Any]:
    """``override`` over ``base``, recursively; mappings under a key in ``replace`` are taken as a whole."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in replace:
            out[key] = deep_merge(out[key], value, replace)
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file's keys, then explicit overrides. Unknown keys are an error."""
    data = Config().model_dump(mode="python")
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config file must be a YAML mapping, got {type(loaded).__name__}")
        data = deep_merge(data, loaded)
    if overrides:
        data = deep_merge(data, overrides)
    return Config.model_validate(data)
