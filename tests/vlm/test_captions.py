"""Captions: the VLM's when it ran, ground truth for synthetic clips, else no txt member and meta says why."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from schemas.config import load_config
from schemas.validation import check_sample
from schemas.vlm import VLMJudgement, VLMVerdict
from tasks.captions import choose_caption
from tasks.records import GroundTruth, SourceItem, Window
from engine.run import open_run
from tasks.samples import build_samples, write_samples
from tasks.clip import Clip
from tasks.vlm.judge import apply_judgement
from training.data import decode_row

CAPTION = "The water level in a clear glass rises as it is filled."


def _window(index: int, item: SourceItem) -> Window:
    frames = np.zeros((81, 480, 832, 3), np.uint8)
    frames[:, 200:280, 300:400] = np.linspace(40, 220, 81, dtype=np.uint8)[:, None, None, None]
    return Window(item=item, index=index, start_frame=81 * index, frames=frames,
                  span_s=(81 * index / 16, 81 * (index + 1) / 16), tags=["container_filling"])


def _accepted(window: Window) -> None:
    verdict = VLMVerdict(scene_cut=False, event_type="container_filling", spatial_occupancy=0.4,
                         temporal_occupancy=0.9, confidence=0.9, caption=CAPTION)
    apply_judgement(window, VLMJudgement(backend="openai", model="m", prompt_version="judge-v2", verdict=verdict,
                                         decision="accepted", attempts=1))


def _staged(run_samples: Path, key: str) -> dict[str, object]:
    raw: dict[str, object] = {"__key__": key}
    for path in (run_samples / key).iterdir():
        raw[path.name] = path.read_bytes()
    return raw


@pytest.mark.timeout(120)
def test_without_the_vlm_there_is_no_txt_and_meta_says_why(tmp_path: Path) -> None:
    config = load_config(overrides={"augment": {"mixture": {"none": 1.0}}, "encode": {"preset": "ultrafast"}})
    assert not config.vlm.enabled
    item = SourceItem("local-0123456789ab", "local", "file:///videos/glass.mp4")
    clip = Clip(item, windows=[_window(0, item), _window(1, item)])
    _accepted(clip.windows[1])  # as if the VLM had judged this one
    run = open_run(tmp_path / "out", config)
    try:
        result = write_samples(build_samples(clip, config), run)
        plain, judged = (_staged(run.samples, row.key) for row in result.rows)
    finally:
        run.release()
    meta = json.loads(plain["meta.json"])
    assert "txt" not in plain and meta["caption"] == "" and meta["caption_source"] == "none"
    assert meta["caption_note"].startswith("vlm_off")
    assert check_sample(plain) == []  # validate accepts a sample without txt
    assert decode_row(plain, 48, 80)["caption"] == ""  # and so does the training reader
    assert result.rows[0].caption is None

    meta = json.loads(judged["meta.json"])
    assert judged["txt"] == CAPTION.encode() and meta["caption_source"] == "vlm" and meta["caption_note"] is None
    assert check_sample(judged) == []
    assert decode_row(judged, 48, 80)["caption"] == CAPTION
    assert "txt present but meta.caption_source is none" in check_sample({**plain, "txt": b"made up"})


def test_caption_sources_truth_dataset_and_vlm_first() -> None:
    item = SourceItem("synthetic-0-00000", "synthetic", "synthetic://0")
    window = Window(item, 0, 0, np.zeros((2, 8, 8, 3), np.uint8), (0.0, 0.1), tags=["container_filling"],
                    truth=GroundTruth(np.zeros((2, 4, 4), np.float32), np.zeros((2, 3, 3), np.float32),
                                      caption="Truth: the level rises."))
    assert (choose_caption(window).source, choose_caption(window).text) == ("truth", "Truth: the level rises.")
    _accepted(window)
    assert (choose_caption(window).source, choose_caption(window).text) == ("vlm", CAPTION)
    shipped = Window(SourceItem("openvid-1", "openvid", "u", provenance={"caption": "A dataset caption."}), 0, 0,
                     np.zeros((2, 8, 8, 3), np.uint8), (0.0, 0.1))
    assert (choose_caption(shipped).source, choose_caption(shipped).text) == ("dataset", "A dataset caption.")
    shipped.vlm = {"decision": "rejected", "verdict": None}
    assert choose_caption(shipped).source == "dataset"


def test_a_window_caption_is_chosen_once_and_kept_on_it() -> None:
    """The sample's meta, its manifest row and the row's caption source all read the one choice kept on the window
    (the write stage chooses it, after the judge), never a second choice that could disagree."""
    from tasks.captions import caption_of

    item = SourceItem("synthetic-0-00000", "synthetic", "synthetic://0")
    window = Window(item, 0, 0, np.zeros((2, 8, 8, 3), np.uint8), (0.0, 0.1),
                    truth=GroundTruth(np.zeros((2, 4, 4), np.float32), np.zeros((2, 3, 3), np.float32),
                                      caption="Truth: the level rises."))
    choice = caption_of(window)
    assert window.caption_choice is choice and (choice.source, choice.text) == ("truth", "Truth: the level rises.")
    _accepted(window)  # too late to change what the sample already says
    assert caption_of(window) is choice and choose_caption(window).source == "vlm"
