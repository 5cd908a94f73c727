"""The ``augment`` section of the run configuration: the interruptions (Sec. 3 of the paper), their mixture and
their parameters. Part of ``schemas.config.Config``."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.config_section import Section as _Section

_HIDDEN_CHUNKS = Field((1, 2), description="Whole latent chunks (12 frames) in which the event is hidden.")
_TRANSITION = Field((4, 10), description="Transition (fade, slide, ramp) length range, frames; at most 12.")


def _check_ranges(name: str, hidden: tuple[int, int], transition: tuple[int, int]) -> None:
    if min(hidden) < 1 or max(hidden) > 3 or min(transition) < 1 or max(transition) > 12:
        raise ValueError(f"{name} needs 1 <= hidden_chunks <= 3 and 1 <= transition frames <= 12")


class LightToggleConfig(_Section):
    fade_frames: tuple[int, int] = _TRANSITION
    hidden_chunks: tuple[int, int] = _HIDDEN_CHUNKS
    min_level: tuple[float, float] = Field((0.0, 0.03), description="Linear-light level while dark (0 black); "
                                           "capped at augment.hidden_max_visibility.")
    local_probability: float = Field(0.35, ge=0, le=1, description="Chance that only a lamp's region (soft-edged, "
                                     "around the dynamic region) goes dark instead of the whole frame.")
    colour_shift_probability: float = Field(0.5, ge=0, le=1, description="Chance of a cool colour cast while dim.")
    black_level: tuple[float, float] = Field((0.002, 0.008), description="Linear black level lifting the darks.")
    noise: tuple[float, float] = Field((0.6, 1.4), description="Sensor-noise strength (shot + read, x camera gain).")
    only_where_light_can_go_off: bool = Field(True, description="Switch lights off only in indoor or night scenes "
                                              "(a measured cue: sky, vegetation, open water, brightness); a daylit "
                                              "outdoor window falls back to the next family. false: anywhere.")

    @model_validator(mode="after")
    def _ranges(self) -> "LightToggleConfig":
        _check_ranges("light_toggle", self.hidden_chunks, self.fade_frames)
        if not 0 <= min(self.min_level) <= max(self.min_level) < 1 or min(self.black_level) < 0 or min(self.noise) < 0:
            raise ValueError("light_toggle needs 0 <= min_level < 1, black_level >= 0 and noise >= 0")
        return self


class OccluderConfig(_Section):
    shapes: list[Literal["rect", "ellipse", "person"]] = ["rect", "ellipse", "person"]
    textured: bool = Field(True, description="Procedural texture and shading (false: flat shaded colour).")
    cover: Literal["dynamic_region", "full_frame", "either"] = "either"
    sides: list[Literal["left", "right", "top", "bottom"]] = ["left", "right", "top", "bottom"]
    paths: list[Literal["straight", "curved"]] = ["straight", "curved"]
    slide_frames: tuple[int, int] = Field((5, 12), description="Frames to slide in (and out), at most 12.")
    hidden_chunks: tuple[int, int] = _HIDDEN_CHUNKS
    scale_change: tuple[float, float] = Field((0.85, 1.25), description="Scale at exit over scale at entry.")
    edge_softness_px: tuple[float, float] = Field((1.5, 5.0), description="Soft-edge (blur) radius range, px.")
    motion_blur: bool = True

    @model_validator(mode="after")
    def _ranges(self) -> "OccluderConfig":
        _check_ranges("occluder", self.hidden_chunks, self.slide_frames)
        if not self.shapes or not self.sides or not self.paths or min(self.scale_change) <= 0:
            raise ValueError("occluder needs a shape, a side, a path and scale_change > 0")
        return self


class ZoomConfig(_Section):
    peak_scale: tuple[float, float] = Field((1.6, 2.5), description="Peak crop scale range (> 1 zooms in); raised "
                                            "up to max_scale when the view needs it to leave the dynamic region.")
    max_scale: float = Field(3.0, gt=1.0, description="Largest crop scale a zoom may use to hide the region.")
    ramp_frames: tuple[int, int] = _TRANSITION
    hidden_chunks: tuple[int, int] = _HIDDEN_CHUNKS

    @model_validator(mode="after")
    def _ranges(self) -> "ZoomConfig":
        _check_ranges("zoom", self.hidden_chunks, self.ramp_frames)
        if min(self.peak_scale) <= 1.0 or self.max_scale < max(self.peak_scale):
            raise ValueError("zoom needs peak_scale > 1 and max_scale >= peak_scale")
        return self


class CameraLoopConfig(_Section):
    max_pan_fraction: float = Field(0.8, gt=0, le=1, description="Virtual pan reach, as a fraction of frame width.")
    crop_scale: float = Field(2.2, ge=1.0, description="Largest zoom-in a virtual loop may use for margin to turn "
                              "into (the clean clip is rendered at the same crop); the smallest that works is used.")
    ramp_frames: tuple[int, int] = _TRANSITION
    hidden_chunks: tuple[int, int] = _HIDDEN_CHUNKS
    return_tolerance_deg: float = Field(1.0, gt=0, description="A loop whose nearest return to the anchor view is "
                                        "farther than this is not a loop.")
    native_min_deg: float = Field(5.0, gt=0, description="A native trajectory must turn at least this far.")

    @model_validator(mode="after")
    def _ranges(self) -> "CameraLoopConfig":
        _check_ranges("camera_loop", self.hidden_chunks, self.ramp_frames)
        return self


class ExitEntryConfig(_Section):
    crop_scale: float = Field(2.0, ge=1.0, description="Crop zoom-in of both clips; the degraded crop pans until "
                              "the tracked subject has left.")
    ramp_frames: tuple[int, int] = _TRANSITION
    hidden_chunks: tuple[int, int] = _HIDDEN_CHUNKS
    tracker: Literal["template", "flow", "mil"] = Field(
        "template", description="Subject tracker for sources without truth boxes: an adaptive NCC template "
        "(deterministic), Lucas-Kanade flow of the subject's corners, or OpenCV's MIL (not reproducible: OpenCV seeds "
        "it from the clock).")

    @model_validator(mode="after")
    def _ranges(self) -> "ExitEntryConfig":
        _check_ranges("exit_entry", self.hidden_chunks, self.ramp_frames)
        return self


class AugmentConfig(_Section):
    mixture: dict[Literal["none", "camera_loop", "light_toggle", "occluder", "zoom", "exit_entry"], float] = {
        "none": 1.0, "camera_loop": 1.0, "light_toggle": 1.0, "occluder": 1.0, "zoom": 1.0, "exit_entry": 1.0}
    light_toggle: LightToggleConfig = LightToggleConfig()
    occluder: OccluderConfig = OccluderConfig()
    zoom: ZoomConfig = ZoomConfig()
    camera_loop: CameraLoopConfig = CameraLoopConfig()
    exit_entry: ExitEntryConfig = ExitEntryConfig()
    hidden_max_visibility: float = Field(0.05, ge=0, lt=1, description="Every interrupted sample hides the event "
                                         "for at least one whole latent chunk: visibility at most this.")

    @model_validator(mode="after")
    def _mixture_positive(self) -> "AugmentConfig":
        if not self.mixture or sum(self.mixture.values()) <= 0 or min(self.mixture.values()) < 0:
            raise ValueError("augment.mixture needs non-negative weights with a positive sum")
        return self
