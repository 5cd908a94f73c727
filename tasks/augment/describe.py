"""degraded.txt: what the interruption does, in words generated from its parameters and the graph's frames (the
instruction a STEVO-style image-to-video evaluation gives beside the event caption)."""
from __future__ import annotations

from typing import Any

from schemas.constants import FPS
from schemas.graph import FrameGraph


def _s(frame: int | float) -> str:
    return f"{frame / FPS:.1f} s"


def _dur(frames: int | float) -> str:
    return f"{frames / FPS:.1f} s"


def describe(kind: str, graph: FrameGraph, params: dict[str, Any]) -> str:
    ev = graph.event_frames
    hid = f" The event is out of sight from {_s(ev['hidden_start'])} to {_s(ev['hidden_end'] + 1)}." \
        if "hidden_start" in ev else ""
    if kind == "light_toggle":
        local = params.get("mode") == "local"
        what, s_ = ("The lamp over the scene's moving part", "s") if local else ("The lights", "")
        cast = ", the last light turning bluish," if params.get("colour_shift", [1, 1, 1])[0] < 1 else ","
        text = (f"{what} go{'es' if local else ''} out at {_s(ev['fade_out_start'])}{cast} stay{s_} off for "
                f"{_dur(ev['dark_end'] - ev['dark_start'] + 1)} and come{s_} back on at {_s(ev['fade_in_end'] + 1)}.")
    elif kind == "occluder":
        what = {"person": "a person", "rect": "a large board", "ellipse": "a round object"}.get(params.get("shape"),
                                                                                                 "an object")
        cover = "the whole view" if params.get("cover") == "full_frame" else "the moving subject"
        text = (f"At {_s(ev['enter'])} {what} enters from the {params.get('side')} along a "
                f"{params.get('path', 'straight')} path, passes in front of the camera and blocks {cover} from "
                f"{_s(params.get('arrive_frame', ev['enter']))} to {_s(params.get('leave_frame', ev['exit']))}, then "
                f"leaves to the {params.get('exit_side')} by {_s(ev['exit'] + 1)}.")
    elif kind == "zoom":
        text = (f"At {_s(ev['zoom_start'])} the camera zooms in {params.get('peak_scale', 0):.1f}x towards the "
                f"{params.get('direction', 'side')} of the frame, away from the event, holds until "
                f"{_s(ev['peak_end'] + 1)} and zooms back out by {_s(ev['recovered'])}.")
    elif kind == "camera_loop":
        if params.get("mode") == "native":
            text = (f"The camera turns away at {_s(ev['away_start'])}, is farthest ({params.get('peak_deg', 0):.0f} "
                    f"degrees) at {_s(ev['farthest'])} and returns to the starting view at {_s(ev['return'])}.")
        else:
            text = (f"At {_s(ev['away_start'])} the camera turns {params.get('direction', 'away')} by "
                    f"{abs(params.get('yaw_away_deg', params.get('angle_deg', 0))):.0f} degrees, away from the event, "
                    f"and turns back to the starting view at {_s(ev['return'])}.")
    elif kind == "exit_entry":
        text = (f"At {_s(ev['pan_start'])} the camera pans {params.get('direction', 'away')} off the subject, which "
                f"leaves the frame at {_s(ev['exit_frame'])} and comes back into view at {_s(ev['entry_frame'])}.")
    else:
        return ""
    return text + hid
