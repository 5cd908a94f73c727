"""Where a sample's caption comes from, and why there is none: never a made-up caption.

- ``vlm``: the VLM judged the window and its accepted verdict carries a caption (it wins over every other);
- ``truth``: the synthetic source's ground truth (the generator knows the object, state and direction exactly);
- ``dataset``: a caption the source's own metadata ships (``provenance["caption"]``);
- ``none``: no ``txt`` member, and ``meta.caption_note`` says why (e.g. the VLM was off).
"""
from __future__ import annotations

from tasks.records import CaptionChoice, CaptionSource, Window

__all__ = ["CaptionChoice", "CaptionSource", "caption_of", "choose_caption"]


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


def caption_of(window: Window) -> CaptionChoice:
    """The window's caption, chosen once and kept on it (its meta, manifest row and facts all read this one)."""
    if window.caption_choice is None:
        window.caption_choice = choose_caption(window)
    return window.caption_choice
