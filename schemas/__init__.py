"""The single source of truth for the sample, graph, manifest and config formats. Imports nothing of ours."""
from schemas.constants import (CHUNK_SIZE, DEPTH_HEIGHT, DEPTH_WIDTH, FPS, HEIGHT, LATENT_FRAMES, NUM_CHUNKS,
                               NUM_FRAMES, WIDTH)
from schemas.graph import Edge, EdgeKind, FrameGraph, Interruption, InterruptionKind, Node, NodeRole, TemporalGap
from schemas.manifest import ManifestRow
from schemas.sample import ENTRIES, Attribution, GeometryMeta, SampleMeta, SourceInfo
from schemas.version import SCHEMA_VERSION

__all__ = [
    "CHUNK_SIZE", "DEPTH_HEIGHT", "DEPTH_WIDTH", "FPS", "HEIGHT", "LATENT_FRAMES", "NUM_CHUNKS", "NUM_FRAMES",
    "WIDTH", "Edge", "EdgeKind", "FrameGraph", "Interruption", "InterruptionKind", "Node", "NodeRole",
    "TemporalGap", "ManifestRow", "ENTRIES", "Attribution", "GeometryMeta", "SampleMeta", "SourceInfo",
    "SCHEMA_VERSION",
]
