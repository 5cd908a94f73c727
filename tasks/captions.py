"""Where a sample's caption comes from, and why there is none: never a made-up caption.

- ``vlm``: the VLM judged the window and its accepted verdict carries a caption (it wins over every other);
- ``truth``: the synthetic source's ground truth (the generator knows the object, state and direction exactly);
- ``dataset``: a caption the source's own metadata ships (``provenance["caption"]``);
- ``none``: no ``txt`` member, and ``meta.caption_note`` says why (e.g. the VLM was off).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tasks.records import Window

CaptionSource = Literal["vlm", "dataset", "truth", "none"]


@dataclass(frozen=True)
class CaptionChoice:
    text: str  # "" when source is none
    source: CaptionSource
    note: str | None = None  # why there is no caption (source none)


def _vlm_caption(window: Window) -> str:
    vlm = window.vlm or {}
    verdict = vlm.get("verdict") or {}
    return str(verdict.get("caption") or "").strip() if vlm.get("decision") == "accepted" else ""


def choose_caption(window: Window) -> CaptionChoice:
    """The caption the sample carries and its source; a caption nobody can vouch for is dropped, not shipped."""
    vlm = _vlm_caption(window)
    if vlm:
        return CaptionChoice(vlm, "vlm")
    truth = (window.truth.caption or "").strip() if window.truth is not None else ""
    if truth:
        return CaptionChoice(truth, "truth")
    dataset = str(window.item.provenance.get("caption") or "").strip()
    if dataset:
        return CaptionChoice(dataset, "dataset")
    if window.vlm is None:
        note = "vlm_off: the VLM judge did not run (vlm.enabled is false) and the source ships no caption"
    else:
        note = "vlm_no_caption: the VLM's accepted verdict has an empty caption and the source ships none"
    return CaptionChoice("", "none", note)
