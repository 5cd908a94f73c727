"""A tiny random-weight Depth Anything 3 built offline from the package's own classes, for tests and benchmarks.

DA3's ``DepthAnything3(model_name)`` builds its network from a YAML architecture found by name in
``depth_anything_3.registry.MODEL_REGISTRY``; ``from_pretrained(dir)`` re-creates it from ``config.json``
(``{"model_name": ...}``) and loads ``model.safetensors``. A checkpoint directory may therefore carry its own
architecture file (``ARCH_FILE``): ``register_local_arch`` adds it to the registry before loading, so the
production loader (``from_pretrained``) loads the tiny model unchanged. The backbone is the package's
``DinoVisionTransformer`` at a tiny width and depth (the package's ``DinoV2`` wrapper only offers ViT-S..G);
head, camera encoder and decoder are the package's ``DualDPT``, ``CameraEnc`` and ``CameraDec``.
Random weights: outputs have the right shapes and conventions and meaningless values.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch.nn as nn
from depth_anything_3.model.dinov2.dinov2 import DinoV2
from depth_anything_3.model.dinov2.vision_transformer import DinoVisionTransformer

ARCH_FILE = "remind_da3_arch.yaml"
TINY_MODEL_NAME = "remind-da3-tiny"
_EMBED = 32

TINY_ARCH_YAML = f"""\
__object__:
  path: depth_anything_3.model.da3
  name: DepthAnything3Net
  args: as_params
net:
  __object__:
    path: tasks.geometry.da3_tiny
    name: TinyDinoV2
    args: as_params
  embed_dim: {_EMBED}
  depth: 4
  num_heads: 2
  out_layers: [0, 1, 2, 3]
  alt_start: 2
  qknorm_start: 2
  rope_start: 2
  cat_token: true
head:
  __object__:
    path: depth_anything_3.model.dualdpt
    name: DualDPT
    args: as_params
  dim_in: {2 * _EMBED}
  output_dim: 2
  features: 16
  out_channels: [8, 16, 32, 32]
cam_enc:
  __object__:
    path: depth_anything_3.model.cam_enc
    name: CameraEnc
    args: as_params
  dim_out: {_EMBED}
  trunk_depth: 1
  num_heads: 2
cam_dec:
  __object__:
    path: depth_anything_3.model.cam_dec
    name: CameraDec
    args: as_params
  dim_in: {2 * _EMBED}
"""


class TinyDinoV2(DinoV2):
    """``DinoV2`` with a configurable (tiny) ``DinoVisionTransformer``; same forward as the package's wrapper."""

    def __init__(self, embed_dim: int = _EMBED, depth: int = 4, num_heads: int = 2,
                 out_layers: list[int] | None = None, alt_start: int = 2, qknorm_start: int = 2,
                 rope_start: int = 2, cat_token: bool = True, img_size: int = 112) -> None:
        nn.Module.__init__(self)  # DinoV2.__init__ only knows the ViT-S..G presets
        self.name = "tiny"
        self.out_layers = list(out_layers if out_layers is not None else range(depth))
        self.alt_start, self.qknorm_start, self.rope_start = alt_start, qknorm_start, rope_start
        self.cat_token = cat_token
        self.pretrained = DinoVisionTransformer(
            img_size=img_size, patch_size=14, embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=2,
            ffn_layer="mlp", alt_start=alt_start, qknorm_start=qknorm_start, rope_start=rope_start,
            cat_token=cat_token)


def register_local_arch(checkpoint_dir: str | Path) -> str | None:
    """If ``checkpoint_dir`` carries ``ARCH_FILE``, register it under the checkpoint's model name; returns it."""
    directory = Path(checkpoint_dir)
    arch = directory / ARCH_FILE
    if not (directory.is_dir() and arch.is_file()):
        return None
    from depth_anything_3.registry import MODEL_REGISTRY

    name = json.loads((directory / "config.json").read_text())["model_name"]
    MODEL_REGISTRY[name] = str(arch.resolve())
    return name


def build_tiny_da3(directory: str | Path, seed: int = 0) -> Path:
    """Build a tiny random-weight DA3 (about 0.2 M parameters) and ``save_pretrained`` it to ``directory``."""
    import torch
    from depth_anything_3.api import DepthAnything3
    from depth_anything_3.registry import MODEL_REGISTRY

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / ARCH_FILE).write_text(TINY_ARCH_YAML)
    MODEL_REGISTRY[TINY_MODEL_NAME] = str((out / ARCH_FILE).resolve())
    torch.manual_seed(seed)
    model = DepthAnything3(model_name=TINY_MODEL_NAME)
    model.save_pretrained(out)
    return out
