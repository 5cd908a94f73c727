"""Stage: gate windows on the scores their dataset ships (OpenVid-1M's aesthetic, motion, temporal consistency and
camera-motion label; the caption a source ships is picked up by ``tasks.captions``).

With ``prefilter.dataset_scores`` gates configured, a window
whose dataset scores fail them is rejected here — before motion analysis, the VLM and geometry spend anything
on it — with reason ``dataset_score`` and the failing gate in the message. Gates are off by default; a source
without a given score passes that gate.
"""
from __future__ import annotations

from engine.stage import ProcessingStage, Resources
from schemas.config import Config, DatasetScoreConfig
from tasks.records import Window
from tasks.clip import Clip, Reject, per_window

GATES = (("min_motion", "motion"), ("min_aesthetic", "aesthetic"), ("min_temporal_consistency", "temporal_consistency"))


def dataset_score_failure(scores: dict[str, float], labels: dict[str, str], cfg: DatasetScoreConfig) -> str | None:
    """Why the dataset's scores turn the clip down, or None when they pass every configured gate."""
    for gate, name in GATES:
        threshold = getattr(cfg, gate)
        if threshold is not None and name in scores and float(scores[name]) < threshold:
            return f"dataset {name} score {float(scores[name]):g} < {gate} {threshold:g}"
    motion = labels.get("camera_motion")
    if motion is not None and motion in cfg.skip_camera_motion:
        return f"dataset camera motion '{motion}' is in skip_camera_motion"
    return None


@per_window("source-facts")
def _apply(window: Window, cfg: DatasetScoreConfig) -> Window:
    provenance = window.item.provenance
    why = dataset_score_failure(provenance.get("dataset_scores") or {}, provenance.get("dataset_labels") or {}, cfg)
    if why:
        raise Reject("dataset_score", why)
    return window


def apply_source_facts(clip: Clip, config: Config) -> Clip:
    return _apply(clip, config.prefilter.dataset_scores)


class ApplySourceFacts(ProcessingStage[Clip, Clip]):
    """Clip -> Clip without the windows whose dataset scores fail a configured gate."""

    name, input_type, output_type, resources = "source-facts", Clip, Clip, Resources(cpus=1.0)

    def process(self, clip: Clip) -> Clip:
        return apply_source_facts(clip, self.config)
