"""The streaming KV cache for chunk-by-chunk inference (ReMind Sec. 3.3).

Keys are stored AFTER RoPE and the PM-RoPE phase, values after the camera residual, so a cached chunk keeps the
temporal position and camera phase it was written with, however far (and non-contiguously) later chunks are placed.
Each cached token also keeps its attention slot (chunk order) for masking, and each chunk its RoPE positions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class KVCache:
    """Per-layer keys/values in the attention layout (B, S, heads, head_dim)."""

    num_layers: int
    keys: list[torch.Tensor | None] = field(default_factory=list)
    values: list[torch.Tensor | None] = field(default_factory=list)
    slots: torch.Tensor | None = None  # (S,) attention slot of every cached token
    positions: dict[int, list[int]] = field(default_factory=dict)  # slot -> temporal RoPE positions of its frames

    def __post_init__(self) -> None:
        self.keys = [None] * self.num_layers
        self.values = [None] * self.num_layers

    def __len__(self) -> int:
        return 0 if self.slots is None else int(self.slots.numel())

    def cached_slots(self, device: torch.device) -> torch.Tensor:
        return torch.empty(0, dtype=torch.long, device=device) if self.slots is None else self.slots.to(device)

    def read(self, layer: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.keys[layer], self.values[layer]

    def write(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Append one layer's keys/values of the current call (token slots are committed by ``commit``)."""
        old_k, old_v = self.keys[layer], self.values[layer]
        self.keys[layer] = key.detach() if old_k is None else torch.cat([old_k, key.detach()], dim=1)
        self.values[layer] = value.detach() if old_v is None else torch.cat([old_v, value.detach()], dim=1)

    def commit(self, token_slots: torch.Tensor, frame_slots: list[int], frame_positions: list[int]) -> None:
        """Record the slots of the tokens just written by every layer, and the positions of their frames."""
        token_slots = token_slots.detach().cpu()
        self.slots = token_slots if self.slots is None else torch.cat([self.slots, token_slots])
        for slot, position in zip(frame_slots, frame_positions):
            self.positions.setdefault(slot, []).append(position)

    def evict(self, slots: set[int]) -> None:
        """Drop whole chunks (e.g. a degraded node) from every layer; the rest keep their positions."""
        if self.slots is None:
            return
        keep = torch.tensor([int(s) not in slots for s in self.slots], dtype=torch.bool)
        for layer in range(self.num_layers):
            if self.keys[layer] is not None:
                index = keep.to(self.keys[layer].device)
                self.keys[layer] = self.keys[layer][:, index]
                self.values[layer] = self.values[layer][:, index]
        self.slots = self.slots[keep]
        for slot in slots:
            self.positions.pop(slot, None)
