"""KV-importance heatmaps (ReMind Fig. 5): attention mass from each query chunk to each history chunk.

A cell (i, j) is the mean over chunk i's query tokens (and heads) of the softmax mass they put on chunk j's keys,
maximised over the chosen layers. Rows sum to 1 per layer; the upper triangle is empty under chunk-causal attention.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from training.model.attention import AttentionRecorder  # noqa: E402
from training.model.kv_cache import KVCache  # noqa: E402
from training.model.wan_causal import CausalContext, remind_forward  # noqa: E402


def resolve_layers(layers: list[int], num_layers: int) -> set[int]:
    return {layer % num_layers for layer in layers}


@torch.no_grad()
def kv_importance(model: torch.nn.Module, x0: torch.Tensor, cameras: torch.Tensor, text: torch.Tensor,
                  layers: list[int], sigma: float = 0.5, chunk_size: int = 3, query_stride: int = 1,
                  seed: int = 0) -> np.ndarray:
    """(chunks, chunks) attention mass, max over ``layers``, along the streaming inference path.

    Chunk by chunk: the chunk at noise ``sigma`` queries the KV cache of the clean earlier chunks (mass recorded),
    then the clean chunk (timestep 0) is written to the cache. ``x0`` is (1, C, F, h, w), ``cameras`` (1, F, 14).
    """
    inner = getattr(model, "module", model)
    num_chunks = x0.shape[2] // chunk_size
    recorder = AttentionRecorder(resolve_layers(layers, len(inner.blocks)), num_chunks, query_stride)
    cache = KVCache(len(inner.blocks))
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(x0)
    tokens = (x0.shape[3] // inner.config.patch_size[1]) * (x0.shape[4] // inner.config.patch_size[2])
    for chunk in range(num_chunks):
        part = slice(chunk * chunk_size, (chunk + 1) * chunk_size)
        positions = torch.arange(part.start, part.stop)
        slots = torch.full((chunk_size,), chunk)
        clean = x0[:, :, part]
        noisy = (1 - sigma) * clean + sigma * noise[:, :, part]
        steps = torch.full((1, chunk_size), sigma * 1000.0, device=x0.device)
        remind_forward(inner, noisy, steps, text,
                       CausalContext(positions, slots, cameras[:, part], cache=cache, recorder=recorder))
        remind_forward(inner, clean, torch.zeros_like(steps), text,
                       CausalContext(positions, slots, cameras[:, part], cache=cache, write_cache=True))
        cache.commit(slots.repeat_interleave(tokens), slots.tolist(), positions.tolist())
    return torch.stack(list(recorder.mass.values())).amax(dim=0).numpy()


def save_heatmap(mass: np.ndarray, path: Path, title: str, labels: list[str] | None = None,
                 unavailable: np.ndarray | None = None) -> Path:
    """Write the PNG (lower triangle coloured, future chunks blank) and the matrix as JSON beside it.

    ``unavailable`` (rows,) bool marks query chunks with no attention of their own (a V2V prefix): hatched cells.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = np.triu(np.ones_like(mass, dtype=bool), k=1)
    if unavailable is not None:
        hidden |= np.asarray(unavailable, bool)[:, None]
    shown = np.ma.masked_where(hidden, mass)
    labels = labels or [str(i) for i in range(mass.shape[0])]
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=120)
    image = ax.imshow(shown, cmap="viridis", vmin=0.0, vmax=max(float(mass.max()), 1e-6))
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("history chunk (key)")
    ax.set_ylabel("query chunk")
    ax.set_title(title, fontsize=8)
    for row in np.flatnonzero(unavailable) if unavailable is not None else []:
        ax.add_patch(Rectangle((-0.5, row - 0.5), row + 1, 1, fill=False, hatch="//", edgecolor="0.6", lw=0))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention mass")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    rows = np.zeros(len(mass), bool) if unavailable is None else np.asarray(unavailable, bool)
    path.with_suffix(".json").write_text(json.dumps({"labels": labels, "mass": mass.round(6).tolist(),
                                                     "unavailable_rows": np.flatnonzero(rows).tolist()}))
    return path
