"""The augmentation entry points: pick a family for a window, check it applies, and apply it.

Fallback order when the drawn family does not apply (``FALLBACKS``): view-moving families first, then the
pixel-level ones that apply to every window: exit_entry -> camera_loop -> zoom -> occluder -> light_toggle.
Families with mixture weight 0 are skipped while any positive-weight fallback remains.

A light toggle applies only where a light can go off: an indoor or night scene, judged by a measured cue
(``tasks.augment.scene_light``); a daylit outdoor view falls back to the next family. The cue goes in every
interrupted sample's meta (``augment.scene_light``).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.config_augment import AugmentConfig
from schemas.graph import FrameGraph, InterruptionKind
from tasks.augment.camera_loop import apply_camera_loop, check_camera_loop, native_loop
from tasks.augment.common import (
    FamilyResult, NotApplicable, affine3, event_state, geometry_of, rng_for, warp_affine_frames)
from tasks.augment.describe import describe
from tasks.augment.exit_entry import apply_exit_entry, check_exit_entry
from tasks.augment.light import apply_light
from tasks.augment.occluder import apply_occluder
from tasks.augment.scene_light import LightCue, light_cue
from tasks.augment.zoom import apply_zoom
from tasks.graph import GraphError, build_graph
from tasks.records import Window

KINDS = ("none", "camera_loop", "light_toggle", "occluder", "zoom", "exit_entry")
GOLDEN = 0.6180339887
FALLBACKS: dict[str, tuple[str, ...]] = {
    "exit_entry": ("camera_loop", "zoom", "occluder", "light_toggle"),
    "camera_loop": ("zoom", "occluder", "light_toggle"),
    "zoom": ("occluder", "light_toggle"),
    "occluder": ("light_toggle",),
    "light_toggle": ("occluder",),
    "none": (),
}


@dataclass
class Augmented:
    """One window's interruption: the graph, the degraded clip and the degraded view's cameras."""

    kind: InterruptionKind
    graph: FrameGraph
    degraded: np.ndarray | None  # (81,H,W,3) uint8 RGB; None exactly when kind is none
    degraded_camera: np.ndarray | None  # (81,4,4) float32 c2w, clean frame 0 = identity convention kept
    degraded_intrinsics: np.ndarray | None  # (81,3,3) float32, pixels of the degraded frame
    params: dict[str, Any] = field(default_factory=dict)  # JSON-able: meta.json "augment"
    fallback_from: str | None = None
    # Kinds that move the view through a crop render the clean clip at the same crop: these replace the window's
    # frames and intrinsics in the sample (None: the clean clip is the window's own). Depth goes through the affines.
    clean_frames: np.ndarray | None = None
    clean_intrinsics: np.ndarray | None = None
    clean_affines: np.ndarray | None = None  # (81,2,3) source pixel -> clean pixel
    description: str = ""  # degraded.txt: what the interruption does, in words


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") / 2.0 ** 64


def kind_from_u(u: float, mixture: dict[str, float]) -> InterruptionKind:
    """Inverse CDF over the mixture weights in ``KINDS`` order (missing kinds weigh 0)."""
    weights = np.array([max(0.0, float(mixture.get(k, 0.0))) for k in KINDS])
    cdf = np.cumsum(weights) / weights.sum()
    for kind, weight, edge in zip(KINDS, weights, cdf):
        if weight > 0 and u < edge:
            return InterruptionKind(kind)
    return InterruptionKind(KINDS[int(np.flatnonzero(weights)[-1])])  # u rounding past the last edge


def choose_kind(window: Window, config: AugmentConfig, seed: int, ordinal: int | None) -> InterruptionKind:
    """Draw a family from ``config.mixture``. With an ordinal, a golden-ratio sequence ``frac(ordinal * 0.618... +
    offset(seed))`` so even small runs hold every kind in proportion; without, a hash of (window_id, seed)."""
    if ordinal is not None:
        u = (ordinal * GOLDEN + _unit_hash(f"offset|{seed}")) % 1.0
    else:
        u = _unit_hash(f"{window.window_id}|{seed}")
    return kind_from_u(u, dict(config.mixture))


def applicable(kind: InterruptionKind | str, window: Window, config: AugmentConfig,
               cue: LightCue | None = None) -> str | None:
    """None when ``kind`` applies to ``window``, else why not. A structural check: ``augment`` may still fall back
    when a family's drawn plan fails (e.g. no crop path hides the subject), and records it the same way.
    ``cue``: the window's light cue when already measured."""
    kind = InterruptionKind(kind)
    if len(window.frames) != 81:
        return f"a window needs 81 frames, got {len(window.frames)}"
    if kind is InterruptionKind.light_toggle and config.light_toggle.only_where_light_can_go_off:
        cue = cue or light_cue(window.frames)
        if not cue.light_can_go_off:
            return (f"a daylit outdoor scene (sky {cue.sky:.2f}, vegetation {cue.vegetation:.2f}, water "
                    f"{cue.water:.2f} of the frame, brightness {cue.brightness:.2f}): no light there to switch off")
    if kind is InterruptionKind.exit_entry:
        return check_exit_entry(window, config.exit_entry)
    if kind is InterruptionKind.camera_loop:
        return check_camera_loop(window, config.camera_loop)
    return None


def _appliers(config: AugmentConfig) -> dict[str, Callable[[Window, np.random.Generator], FamilyResult]]:
    hide = config.hidden_max_visibility
    return {
        "light_toggle": lambda w, r: apply_light(w, config.light_toggle, r, hide),
        "occluder": lambda w, r: apply_occluder(w, config.occluder, r, hide),
        "zoom": lambda w, r: apply_zoom(w, config.zoom, r, hide),
        "camera_loop": lambda w, r: apply_camera_loop(w, config.camera_loop, r, hide),
        "exit_entry": lambda w, r: apply_exit_entry(w, config.exit_entry, r, hide),
    }


def _candidates(kind: str, config: AugmentConfig) -> list[str]:
    rest = FALLBACKS[kind]
    weighted = [k for k in rest if config.mixture.get(k, 0.0) > 0]  # type: ignore[call-overload]
    return [kind, *(weighted or rest)]


def augment(window: Window, kind: InterruptionKind | str, config: AugmentConfig, seed: int) -> Augmented:
    """Apply ``kind`` (or its first applicable fallback) to ``window``; deterministic in (window_id, seed).

    A window whose own camera already leaves the event and returns (a native loop that hides it for a whole chunk)
    is a camera loop whatever was drawn (``params.drawn`` keeps the draw): another interruption on top would leave
    no clean clip. ``none`` stays a clean control."""
    kind = InterruptionKind(kind)
    if kind is InterruptionKind.none:
        # the undegraded frame shows every point of the region (its points lie in the frame by construction)
        vis = np.ones(len(window.frames))
        graph = build_graph(InterruptionKind.none, per_frame={**event_state(window), "event_visibility": vis.tolist()})
        return Augmented(kind, graph, None, None, None, {"kind": "none"})
    if kind is not InterruptionKind.camera_loop:  # a clip that already loops away and back is a camera loop
        try:
            native = native_loop(window, config.camera_loop, config.hidden_max_visibility)
        except (NotApplicable, GraphError):
            native = None
        if native is not None:
            params = {"kind": "camera_loop", **native.params, "drawn": kind.value,
                      "scene_light": light_cue(window.frames).record()}
            out = Augmented(InterruptionKind.camera_loop, native.graph, native.degraded, native.camera,
                            native.intrinsics, params)
            out.description = describe("camera_loop", out.graph, params)
            return out
    appliers = _appliers(config)
    reasons: dict[str, str] = {}
    cue = light_cue(window.frames)
    for name in _candidates(kind.value, config):
        reason = applicable(name, window, config, cue)
        if reason is not None:
            reasons[name] = reason
            continue
        try:
            result = appliers[name](window, rng_for(window.window_id, seed, name))
        except (NotApplicable, GraphError) as err:
            reasons[name] = str(err)
            continue
        params = {"kind": name, **result.params, "scene_light": cue.record()}
        if name != kind.value:
            params["fallback"] = {"from": kind.value, "reasons": reasons}
        clean_frames = clean_k = None
        if result.clean_affines is not None:
            clean_frames = (result.clean if result.clean is not None
                            else warp_affine_frames(window.frames, result.clean_affines))
            _, K = geometry_of(window)
            clean_k = None if K is None else (affine3(result.clean_affines) @ K).astype(np.float32)
        out = Augmented(InterruptionKind(name), result.graph, result.degraded, result.camera, result.intrinsics,
                        params, fallback_from=None if name == kind.value else kind.value, clean_frames=clean_frames,
                        clean_intrinsics=clean_k, clean_affines=result.clean_affines)
        out.description = describe(out.kind.value, out.graph, out.params)
        return out
    raise NotApplicable(f"no interruption family applies to {window.window_id}: {reasons}")
