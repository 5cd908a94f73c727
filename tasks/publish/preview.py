"""A contact sheet of one sample: clean and degraded frames per chunk, node roles, memory edges, per-frame curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: previews render headless, in worker processes too

import cv2  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from schemas.graph import EdgeKind, FrameGraph, NodeRole  # noqa: E402

ROLE_COLOURS = {NodeRole.anchor: "#2ca02c", NodeRole.context: "#7f7f7f", NodeRole.degraded: "#d62728",
                NodeRole.recovery: "#1f77b4"}
MEMORY_COLOUR = "#9467bd"
THUMB_W = 208  # thumbnails: a quarter of the 832 px width
GAP, BORDER, TOP = 14, 4, 96  # mosaic pixels: between cells, role-coloured frame, room for labels and arcs


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], np.uint8)


def _mosaic(clean: np.ndarray, degraded: np.ndarray | None, graph: FrameGraph, mids: list[int]) -> np.ndarray:
    """One image: a row of clean and a row of degraded thumbnails, each framed in its node's role colour."""
    h, w = clean.shape[1:3]
    th = max(1, round(h * THUMB_W / w))
    cell_w, cell_h = THUMB_W + 2 * BORDER, th + 2 * BORDER
    out = np.full((TOP + 2 * cell_h + GAP + 18, len(mids) * (cell_w + GAP) - GAP, 3), 255, np.uint8)
    for col, (node, mid) in enumerate(zip(graph.nodes, mids)):
        x = col * (cell_w + GAP)
        for row, clip in enumerate((clean, degraded)):
            y = TOP + row * (cell_h + GAP + 18)
            out[y:y + cell_h, x:x + cell_w] = _rgb(ROLE_COLOURS[node.role])
            inner = np.full((th, THUMB_W, 3), 235, np.uint8) if clip is None else cv2.resize(
                np.ascontiguousarray(clip[mid]), (THUMB_W, th), interpolation=cv2.INTER_AREA)
            out[y + BORDER:y + BORDER + th, x + BORDER:x + BORDER + THUMB_W] = inner
    return out


def _sheet(ax: plt.Axes, clean: np.ndarray, degraded: np.ndarray | None, graph: FrameGraph) -> None:
    mids = [(n.frames[0] + n.frames[1]) // 2 for n in graph.nodes]
    mosaic = _mosaic(clean, degraded, graph, mids)
    ax.imshow(mosaic, interpolation="bilinear")
    ax.axis("off")
    ax.set_anchor("N")
    cell_w = THUMB_W + 2 * BORDER
    cell_h = mosaic.shape[0] - TOP - GAP - 18
    cell_h //= 2
    centres = [col * (cell_w + GAP) + cell_w / 2 for col in range(len(graph.nodes))]
    for node, mid, cx in zip(graph.nodes, mids, centres):
        colour = ROLE_COLOURS[node.role]
        ax.text(cx, TOP - 4, f"chunk {node.chunk}: {node.role.value}\nframes {node.frames[0]}-{node.frames[1]}, "
                f"shown {mid}", ha="center", va="bottom", fontsize=8, color=colour, fontweight="bold")
        ax.text(cx, TOP + cell_h + GAP + 16, f"degraded frame {mid}", ha="center", va="bottom", fontsize=7,
                color=colour)
        if degraded is None:
            ax.text(cx, TOP + cell_h + GAP + 18 + cell_h / 2, "clean control:\nno degraded clip", ha="center",
                    va="center", fontsize=8, color="#555")
    ax.text(-8, TOP + cell_h / 2, "clean", rotation=90, ha="right", va="center", fontsize=9)
    ax.text(-8, TOP + 1.5 * cell_h + GAP + 18, "degraded", rotation=90, ha="right", va="center", fontsize=9)
    for edge in (e for e in graph.edges if e.kind is EdgeKind.memory):  # arcs above the labels: recovery -> anchor
        ax.add_patch(FancyArrowPatch(
            (centres[edge.src] - 6, TOP - 40), (centres[edge.dst] + 6, TOP - 40), arrowstyle="-|>",
            mutation_scale=12, color=MEMORY_COLOUR, lw=1.5, shrinkA=0, shrinkB=0,
            connectionstyle=f"arc3,rad={_arc_rad(abs(centres[edge.src] - centres[edge.dst]))}"))


def _arc_rad(distance: float) -> float:
    """arc3 curvature whose apex height grows gently with the span, so arcs from one node nest, not overlap."""
    return 2.0 * (12.0 + 0.035 * distance) / max(distance, 1.0)


def _curves(ax: plt.Axes, graph: FrameGraph) -> None:
    """Per-frame fields: [0,1] fields on the left axis, others (scales, degrees) on the right; event_visibility in
    bold black with its threshold dotted and the hidden interval hatched."""
    frames = np.arange(graph.num_frames)
    itr = graph.interruption
    if itr.start_frame is not None and itr.end_frame is not None:
        ax.axvspan(itr.start_frame - 0.5, itr.end_frame + 0.5, color=ROLE_COLOURS[NodeRole.degraded], alpha=0.12,
                   label=f"interruption {itr.start_frame}-{itr.end_frame}")
    hidden = graph.event_frames.get("hidden_start"), graph.event_frames.get("hidden_end")
    if None not in hidden:
        ax.axvspan(hidden[0] - 0.5, hidden[1] + 0.5, facecolor="#444444", alpha=0.22, hatch="//", edgecolor="#666",
                   label=f"hidden {hidden[0]}-{hidden[1]} (visibility <= {graph.hidden_max_visibility})")
    if graph.hidden_max_visibility is not None:
        ax.axhline(graph.hidden_max_visibility, color="black", lw=0.8, ls=":", zorder=1)
    for node in graph.nodes[1:]:
        ax.axvline(node.frames[0] - 0.5, color="#cccccc", lw=0.8, zorder=0)
    right = None
    right_colours = iter(["#8c564b", "#e377c2", "#bcbd22", "#17becf"])
    for name, values in graph.per_frame.items():
        if name.startswith("subject_") and name != "subject_visible":
            continue  # box coordinates: listed in params, not worth a curve
        y = np.array([np.nan if v is None else v for v in values], float)
        finite = y[np.isfinite(y)]
        style = {"ls": "--", "lw": 1.0} if name == "event_state" else {"lw": 1.6}
        if name == "event_visibility":
            style = {"lw": 2.6, "color": "black", "zorder": 5}
        if finite.size and (finite.min() < -1e-6 or finite.max() > 1 + 1e-6):
            right = right or ax.twinx()
            right.plot(frames, y, label=f"{name} (right axis)", color=next(right_colours, "#8c564b"), **style)
            lo, hi = min(0.0, float(finite.min())), float(finite.max())
            right.set_ylim(lo - 0.05 * (hi - lo), hi + 0.3 * (hi - lo))
            right.tick_params(labelsize=7)
        else:
            ax.plot(frames, y, label=name, drawstyle="steps-mid" if name == "subject_visible" else "default", **style)
    for i, f in enumerate(graph.anchor_frames):
        ax.axvline(f, color=ROLE_COLOURS[NodeRole.anchor], lw=1.5, ls=":", label=None if i else "anchor frame")
    for i, f in enumerate(graph.recovery_frames):
        ax.axvline(f, color=ROLE_COLOURS[NodeRole.recovery], lw=1.5, ls=":", label=None if i else "recovery frame")
    for i, (name, f) in enumerate(sorted(graph.event_frames.items(), key=lambda kv: kv[1])):
        ax.annotate(f"{name}={f}", (f, 1.0), xycoords=("data", "axes fraction"), xytext=(0, -9 - 8 * (i % 2)),
                    textcoords="offset points", fontsize=7, ha="center", color="#333")
    ax.set_xlim(-0.5, graph.num_frames - 0.5)
    ax.set_ylim(-0.05, 1.3)
    ax.set_xlabel("frame (grey lines: chunk starts)", fontsize=7, labelpad=1)
    ax.tick_params(labelsize=7)
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        h2, l2 = right.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=len(handles),
                  frameon=False, borderaxespad=0.0)


def render_preview(clean: np.ndarray, degraded: np.ndarray | None, graph: FrameGraph, title: str,
                   out_png: Path) -> Path:
    """Write a contact sheet PNG: a column per chunk (its middle frame) with rows clean / degraded framed in the
    node's role colour, memory edges as arcs, and the per-frame curves with the interruption shaded."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(15, 7.5), dpi=80)
    _sheet(fig.add_axes((0.03, 0.45, 0.95, 0.44)), clean, degraded, graph)  # room for a 4-line title
    memory = [e for e in graph.edges if e.kind is EdgeKind.memory]
    gaps = {(g.src, g.dst): g.seconds for g in graph.temporal_gaps}
    edge_text = ", ".join(f"{e.src}->{e.dst} ({gaps.get((e.src, e.dst), 0):.2f} s)" for e in memory) or "none"
    itr = graph.interruption
    span = "" if itr.start_frame is None else f"   interruption frames {itr.start_frame}-{itr.end_frame}"
    fig.suptitle(f"{title}\n{itr.kind.value}{span}   memory edges (purple arcs): {edge_text}", fontsize=10, y=0.99)
    fig.text(0.36, 0.012, "node roles:", fontsize=8, ha="left", color="#333")
    for i, role in enumerate(ROLE_COLOURS):
        fig.text(0.43 + 0.06 * i, 0.012, "\u25a0 " + role.value, color=ROLE_COLOURS[role], fontsize=8, ha="left")
    _curves(fig.add_axes((0.05, 0.115, 0.9, 0.3)), graph)
    fig.savefig(out_png, dpi=80, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return out_png
