"""Encode a clip that differs from an already encoded one only in some GOPs: re-encode those, copy the rest.

A degraded clip equals its clean clip outside the interruption, and both are encoded with an IDR frame at every
latent chunk's first frame (closed GOPs: no picture references across one). So the degraded MP4 is the clean MP4's
packets for the GOPs where the two clips' frames are equal, and a fresh encode (same encoder settings) of the GOPs
where they differ. Outside the interval the two clips then decode to the same pixels, and the encoder does only the
interval's work (about half the frames of a typical interruption).

The splice is used only when it is safe: the reference must have been encoded with the same x264 settings (its
in-band settings string and its H.264 parameter sets equal the new segment's) and have an IDR frame at every GOP
start; otherwise the whole clip is encoded as before.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import av
import numpy as np

from tasks.video_io import encode_h264

log = logging.getLogger(__name__)

_X264_SETTINGS = b"x264 - core"


def gop_bounds(num_frames: int, keyframes: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) of each GOP when ``keyframes`` (and frame 0) start one."""
    starts = sorted({0, *(k for k in keyframes if 0 < k < num_frames)})
    return list(zip(starts, [*starts[1:], num_frames]))


def changed_runs(frames: np.ndarray, reference: np.ndarray, keyframes: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs [start, end) of consecutive GOPs in which ``frames`` differ from ``reference`` anywhere."""
    runs: list[tuple[int, int]] = []
    for start, end in gop_bounds(len(frames), keyframes):
        if np.array_equal(frames[start:end], reference[start:end]):
            continue
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def encode_over(frames: np.ndarray, reference: np.ndarray, reference_mp4: bytes, fps: int, crf: int, preset: str,
                threads: int, keyframes: Sequence[int]) -> bytes:
    """An H.264 MP4 of ``frames``, exactly as many frames at ``fps``: the GOPs equal to ``reference`` (which
    ``reference_mp4`` encodes with these settings and ``keyframes``) are its packets, the others a fresh encode."""
    def whole() -> bytes:
        return encode_h264(frames, fps, crf, preset, threads, keyframes)

    if frames.shape != reference.shape or not keyframes:
        return whole()
    runs = changed_runs(frames, reference, keyframes)
    if not runs:
        return reference_mp4
    if runs == [(0, len(frames))]:
        return whole()
    segments = []
    for start, end in runs:
        local_keys = [k - start for k in keyframes if start < k < end]
        segments.append((start, end, encode_h264(frames[start:end], fps, crf, preset, threads, local_keys)))
    spliced = _splice(reference_mp4, segments, len(frames), fps, {k for k in keyframes if 0 < k < len(frames)})
    if spliced is None:
        return whole()
    return spliced


def _packets(data: bytes) -> tuple[av.container.InputContainer, av.video.stream.VideoStream, list[av.Packet]]:
    container = av.open(io.BytesIO(data))
    stream = container.streams.video[0]
    return container, stream, [p for p in container.demux(stream) if p.size]


def _settings(packets: list[av.Packet]) -> bytes | None:
    """x264's in-band settings string (an SEI in the first access unit): equal strings, equal encoder settings."""
    first = bytes(packets[0]) if packets else b""
    at = first.find(_X264_SETTINGS)
    return None if at < 0 else first[at:first.find(b"\x00", at)]


def _splice(reference_mp4: bytes, segments: list[tuple[int, int, bytes]], num_frames: int, fps: int,
            keyframes: set[int]) -> bytes | None:
    """The reference's packets with each segment's in place of its frames, or None when they cannot be joined."""
    ref_container, ref_stream, ref_packets = _packets(reference_mp4)
    opened = [ref_container]
    try:
        tick = 1 / (ref_stream.time_base * fps)
        if tick.denominator != 1 or len(ref_packets) != num_frames:
            return None
        tick = int(tick)
        key_frames = {int(p.pts) // tick for p in ref_packets if p.is_keyframe}
        if not keyframes <= key_frames:
            return _refuse("the reference has no IDR frame at every GOP start")
        settings = _settings(ref_packets)
        replaced: list[tuple[int, int, list[av.Packet]]] = []
        for start, end, data in segments:
            container, stream, packets = _packets(data)
            opened.append(container)
            if stream.time_base != ref_stream.time_base or len(packets) != end - start:
                return _refuse("the segment's time base or frame count is not the reference's")
            if stream.codec_context.extradata != ref_stream.codec_context.extradata or _settings(packets) != settings:
                return _refuse("encoder settings differ from the reference's")
            for packet in packets:
                packet.pts += start * tick
                packet.dts += start * tick
            replaced.append((start * tick, end * tick, packets))
        order: list[av.Packet] = []
        for packet in ref_packets:  # decode order; closed GOPs keep each GOP's packets together
            span = next((r for r in replaced if r[0] <= packet.pts < r[1]), None)
            if span is None:
                order.append(packet)
            elif span[2]:
                order.extend(span[2])
                span[2].clear()  # in at the GOP's first packet, once
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format="mp4") as out:
            stream_out = out.add_stream_from_template(ref_stream)
            for packet in order:
                packet.stream = stream_out
                out.mux(packet)
        return buffer.getvalue()
    finally:
        for container in opened:
            container.close()


def _refuse(why: str) -> None:
    log.debug("encoding the whole clip: %s", why)
    return None
