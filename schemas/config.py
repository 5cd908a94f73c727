"""The run configuration: one pydantic model, defaults that run anywhere offline on CPU.

A YAML file sets only the keys it overrides (deep merge over the defaults). ``configs/offline.yaml`` is the
default profile and must equal ``Config()``; ``configs/gpu.yaml`` selects the real checkpoints.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from schemas.config_augment import AugmentConfig
from schemas.config_section import RootConfig, Section as _Section


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
    detector: Literal["transnetv2", "adaptive", "content", "none"] = Field(
        "transnetv2", description="transnetv2: the learned detector with its packaged weights (cuts, dissolves, "
                                  "fades); adaptive/content: PySceneDetect (hard cuts only); none.")
    transnet_threshold: float = Field(0.5, gt=0, lt=1, description="TransNetV2 per-frame transition probability "
                                      "above which a frame is a transition (calibrated on tests/data/real).")
    transnet_device: Literal["cpu", "cuda"] = "cpu"
    transnet_precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16: TransNetV2 under torch autocast, about 1.9x faster on a CPU with native "
                               "bf16 (AVX512-BF16, AMX) and on CUDA; on the labelled real footage its probabilities "
                               "stay within 0.006 of float32, with the same transitions. Where the CPU has no native "
                               "bf16 it is an error, not a fallback (emulated bf16 is slower than float32).")
    transnet_threads: int = Field(1, ge=0, description="torch intra-op threads on CPU (torch.set_num_threads, "
                                  "for the whole process) once TransNetV2 loads. 1: its forward passes are small and "
                                  "the other stages' threads share the cores, so more threads mostly wait; 0: torch's "
                                  "default (all cores).")
    fallback: Literal["adaptive", "content", "error"] = Field(
        "error", description="When TransNetV2 cannot load: error (the default: a run is never silently another), "
                             "or the PySceneDetect detector named here (windows record scene_cut_fallback = 1 and "
                             "the report says it happened).")
    same_scene_ncc: float = Field(0.5, ge=0, le=1, description="A detected transition whose frames before and "
                                  "after correlate at least this well once the light is normalised out is a lighting "
                                  "change, not a cut (1 turns the check off).")
    threshold: float = Field(3.0, gt=0, description="AdaptiveDetector adaptive_threshold / ContentDetector threshold.")
    min_scene_frames: int = Field(8, ge=1)
    analysis_height: int = Field(144, ge=32, description="Cuts are detected on frames downscaled to this height.")
    policy: Literal["reject", "split"] = Field(
        "reject", description="reject: windows containing a cut are rejected; split: windows are placed inside shots.")


class MotionConfig(_Section):
    enabled: bool = Field(True, description="false: the motion stage is left out of the pipeline (no window is "
                          "turned down for its dynamics; windows carry no dynamic region, so interruptions locate "
                          "the event from ground truth or fall back). For benchmarks that time the encode alone.")
    analysis_height: int = Field(120, ge=16, description="Motion is measured on frames downscaled to this height.")
    frame_step: int = Field(4, ge=1, description="Compare frames this far apart: slow changes (growth, filling) "
                                                 "show up, and it is that many times cheaper.")
    pixel_threshold: float = Field(1.0, gt=0, description="Residual flow (px at analysis scale) that counts as moving.")
    discount_camera_motion: bool = True
    min_spatial_occupancy: float = Field(0.03, ge=0, le=1, description="Fraction of the frame in the dynamic region.")
    max_spatial_occupancy: float = Field(0.95, ge=0, le=1, description="Above this the whole frame moves (pure camera).")
    min_temporal_occupancy: float = Field(0.5, ge=0, le=1, description="Fraction of frames with enough motion.")
    frame_active_fraction: float = Field(0.003, ge=0, le=1, description="A frame is active above this moving fraction.")
    light_log_change: float = Field(0.15, gt=0, description="A lasting illumination change (|log brightness ratio|, "
                                    "flicker filtered out) above this counts as light dynamics (0.15 = about 16%).")
    min_light_spatial_occupancy: float = Field(0.05, ge=0, le=1, description="Light passes a window on its own when "
                                               "this much of the frame is relit ...")
    min_light_temporal_occupancy: float = Field(0.5, ge=0, le=1, description="... and this much of the window is lit "
                                                "differently from its start or its end.")
    weather_min_hits: float = Field(0.1, gt=0, le=1, description="A pixel is in the weather region when scattered "
                                    "changes hit it in this fraction of compared frame pairs.")
    min_weather_spatial_occupancy: float = Field(0.1, ge=0, le=1, description="Weather (rain, snow) passes a window "
                                                 "on its own above this spatial ...")
    min_weather_temporal_occupancy: float = Field(0.5, ge=0, le=1, description="... and this temporal occupancy.")
    min_texture_spatial_occupancy: float = Field(0.03, ge=0, le=1, description="Temporal texture (foliage in wind, "
                                                 "ripples: textured pixels flickering both ways beyond the noise floor) "
                                                 "passes a window on its own above this spatial ...")
    min_texture_temporal_occupancy: float = Field(0.3, ge=0, le=1, description="... and this temporal occupancy "
                                                  "(lower than motion's: low-rate sources repeat frames).")
    min_dynamic_extent: float = Field(0.048, ge=0, le=1, description="Near-static scenes: geometric motion passes "
                                      "only when this much of the frame moves at a time (on average) or ends changed "
                                      "by the window's end (camera discounted); set from measured distributions "
                                      "(python -m benchmarks.static_scenes).")


class DatasetScoreConfig(_Section):
    """Turn windows down by the scores their dataset ships (OpenVid-1M's): every gate is off by default.
    A source without a score passes that gate."""

    min_motion: float | None = Field(None, description="Reject below this dataset motion score (e.g. 'static').")
    min_aesthetic: float | None = None
    min_temporal_consistency: float | None = None
    skip_camera_motion: list[str] = Field(default_factory=list, description="Reject these camera-motion labels.")


class PrefilterConfig(_Section):
    scene_cut: SceneCutConfig = SceneCutConfig()
    motion: MotionConfig = MotionConfig()
    dataset_scores: DatasetScoreConfig = DatasetScoreConfig()


class VLMConfig(_Section):
    enabled: bool = Field(False, description="Left out, it follows the other keys: a model, a base_url or backend "
                          "openai turn judging on. false together with those keys is an error (never unjudged by "
                          "accident). Off in the offline profile: random weights cannot judge.")
    backend: Literal["transformers", "openai"] = "transformers"
    model: str = Field("", description="Hub id or local path (transformers) or served model name (openai).")
    base_url: str = Field("", description="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the server's key, if any.")
    prompt_version: str = "judge-v2"
    num_frames: int = Field(8, ge=2, multiple_of=2, description="Frames per window the VLM sees, as one video "
                            "(even: Qwen3-VL merges frame pairs).")
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 256 * 28 * 28
    batch_size: int = Field(4, ge=1)
    batch_wait_s: float = Field(0.05, ge=0, description="A batch waits this long for windows of other clips "
                                "judged at the same time (threads or Ray tasks sharing the backend) before it runs.")
    max_new_tokens: int = Field(256, ge=16)
    concurrency: int = Field(4, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    retry_backoff_s: float = Field(1.0, ge=0, description="openai: first backoff; doubles per retry, plus jitter.")
    retry_backoff_max_s: float = Field(30.0, ge=0)
    json_mode: bool = Field(True, description="openai: request the verdict's JSON schema (response_format "
                            "json_schema: vLLM structured outputs); a server that refuses it is asked without.")
    dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    min_confidence: float = Field(0.5, ge=0, le=1)
    type_confidence: float = Field(0.7, ge=0, le=1, description="The VLM's event type replaces the retrieval "
                                   "query's as the sample's primary tag at or above this confidence.")
    min_spatial_occupancy: float = Field(0.1, ge=0, le=1)
    min_temporal_occupancy: float = Field(0.6, ge=0, le=1)
    num_gpus_per_worker: float = Field(0.0, ge=0)
    num_cpus_per_worker: float = Field(1.0, ge=0, description="Ray actor CPU reservation.")
    num_workers: int = Field(1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _judging_implied(cls, data: Any) -> Any:
        """``enabled`` left out (or null): on exactly when a VLM is configured."""
        if isinstance(data, dict) and data.get("enabled") is None:
            data = {**data, "enabled": bool(data.get("model") or data.get("base_url")
                                            or data.get("backend") == "openai")}
        return data

    @model_validator(mode="after")
    def _judging_consistent(self) -> "VLMConfig":
        server = [f"{k}: {getattr(self, k)!r}" for k in ("model", "base_url") if getattr(self, k)]
        server += ["backend: 'openai'"] if self.backend == "openai" else []
        if not self.enabled and server:
            raise ValueError(f"vlm.enabled is false but {', '.join(server)} configure a VLM: the run would go "
                             "unjudged. Drop 'enabled: false' to judge, or drop those keys to run without the VLM")
        if self.enabled and not self.model:
            raise ValueError("vlm is enabled but vlm.model is empty: set a hub id or local path (transformers) or "
                             "the served model name (openai), or set vlm.enabled: false")
        if self.enabled and self.backend == "openai" and not self.base_url:
            raise ValueError("vlm.backend is openai but vlm.base_url is empty: set the server, e.g. "
                             "http://127.0.0.1:8000/v1")
        return self


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


class DL3DVSourceConfig(_Section):
    capture_fps: float | None = Field(None, gt=0, description="Capture rate of scenes that record none "
                                      "(transforms.json 'fps'); a scene with neither fails with a reason.")
    cameras: Literal["auto", "nerfstudio", "colmap"] = Field(
        "auto", description="auto: transforms.json when present, else the COLMAP model.")
    license: str = "CC BY-NC 4.0"
    attribution: str = "DL3DV-10K (Ling et al., CVPR 2024)"


class OpenVidSourceConfig(_Section):
    video_dir: str = Field("", description="Folder of the CSV's videos; empty: the CSV's folder, then its "
                           "'video' and 'videos' sub-folders.")
    license: str = "CC BY 4.0"
    attribution: str = "OpenVid-1M (Nan et al., ICLR 2025)"


class ManifestSourceConfig(_Section):
    default_license: str = Field("unknown", description="License of rows that name none.")


class SourcesConfig(_Section):
    """Per-source options of dl3dv:, openvid: and manifest: (licenses here are defaults a row or scene can't
    override except in a manifest; check them against the copy you hold)."""

    dl3dv: DL3DVSourceConfig = DL3DVSourceConfig()
    openvid: OpenVidSourceConfig = OpenVidSourceConfig()
    manifest: ManifestSourceConfig = ManifestSourceConfig()


class RayConfig(_Section):
    address: str = Field("", description="Existing Ray cluster ('auto' or ray://...). Empty = run locally.")
    enabled: bool = False
    num_cpus: int = Field(0, ge=0, description="For a local Ray: 0 = all cores.")
    max_in_flight: int = Field(2, ge=1, description="Batches queued per actor of an actor-pool stage (>= 2: the "
                               "next batch arrives while one runs). Records in flight overall are bounded by Ray "
                               "Data's streaming executor (object store budget, downstream backpressure).")
    workers: dict[str, int] = Field(default_factory=dict, description="Per stage name: actors of an actor-pool "
                                    "stage, or tasks at once of a task stage; left out: the stage's own default "
                                    "(actors) or as many as the cluster's CPUs allow (tasks).")
    runtime_env_pip: bool = Field(False, description="Have Ray install the pinned dependencies on the nodes (a pip "
                                  "runtime_env); off: the nodes have them installed. The code always travels.")
    min_free_disk_gib: float = Field(1.0, gt=0, description="For a local Ray: it refuses to create or spill "
                                     "objects when the disk under its session folder has less than this free "
                                     "(Ray's own rule, 95% of the disk's size, refuses with many GiB free on a "
                                     "large shared disk).")
    shared_storage: bool = Field(False, description="On a Ray cluster (ray.address set): local source paths are on "
                                 "storage every node mounts at the same path (NFS, a shared volume). Off: a local "
                                 "source path is refused; sources come from object storage (s3://...).")


class ExecutorConfig(_Section):
    """The local streaming backend (engine/local.py); the Ray backend takes its sizes from ``ray``."""

    max_in_flight: int = Field(2, ge=1, description="Inputs inside the pipeline at once: bounds memory (a clip's "
                               "decoded frames are ~100 MB per window). 2 keeps both cores of a 2-core machine "
                               "busy (3 was no faster, 190 MB more); raise it with the cores and workers.")
    workers: dict[str, int] = Field(default_factory=dict, description="Worker threads per stage name, e.g. "
                                    "{write-samples: 2}; a stage left out gets its own default (1 for most).")
    batch_wait_s: float = Field(0.05, ge=0, description="How long a batching stage waits to fill a batch.")


class Config(RootConfig):
    """Everything a run needs. Defaults = configs/offline.yaml: runs anywhere, on CPU, with no weights."""

    REPLACED_WHOLE = ("mixture",)  # a weight map in a file means exactly those weights: a kind left out is not drawn

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
    sources: SourcesConfig = SourcesConfig()
    ray: RayConfig = RayConfig()
    executor: ExecutorConfig = ExecutorConfig()


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file's keys, then explicit overrides (schemas/config_section.py). Unknown keys are an
    error."""
    return Config.load(path, overrides=overrides)
