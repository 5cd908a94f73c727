"""Text conditioning (Wan): UMT5 encoder embeddings of a sample's prompt, cached per prompt beside the latents.

``TextEncoder`` loads transformers' ``UMT5EncoderModel`` and its tokenizer with ``from_pretrained`` (Wan's
``text_encoder/`` and ``tokenizer/`` subfolders). As in Wan, prompts are tokenised to ``max_length`` (512) tokens and
the embeddings past the prompt's own length are zero. The tiny CPU setting writes a random-init UMT5 bundle (and a
small BPE tokenizer trained offline on a fixed alphabet) once, then loads it through the same ``from_pretrained``.

The cache ``<shards>/../text-<tag>/<sha256(prompt)[:32]>.npy`` holds the unpadded (tokens, dim) float32 embedding of
one prompt; ``encode_texts`` encodes only prompts without a file, so a second run calls no encoder. The tag hashes
the encoder config and dimension: another encoder never reads stale embeddings.
"""
from __future__ import annotations

import hashlib
import os
import string
from pathlib import Path
from typing import Any

import numpy as np

from schemas.config_section import stable_hash
from training.config import TextConfig, TrainConfig

PROMPT_SOURCES = ("caption", "instruction", "both")


def prompt_for(caption: str | None, instruction: str | None, source: str) -> str | None:
    """The prompt a sample is conditioned on under ``source``; None when the sample has no such text."""
    caption, instruction = (caption or "").strip(), (instruction or "").strip()
    if source == "caption":
        return caption or None
    if source == "instruction":
        return instruction or None
    if source == "both":
        return " ".join(t for t in (caption, instruction) if t) or None
    raise ValueError(f"unknown text.source {source!r}")


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:32]


def text_tag(cfg: TextConfig, dim: int) -> str:
    return stable_hash({"text": cfg.model_dump(mode="json", exclude={"source", "cfg_dropout", "encode_gpus"}),
                        "dim": dim}, chars=12, compact=False)


def text_dir_for(shards: Path, cfg: TrainConfig) -> Path:
    return Path(shards).resolve().parent / f"text-{text_tag(cfg.text, cfg.model.tiny.text_dim)}"


def write_tiny_bundle(path: Path, cfg: TextConfig, d_model: int) -> Path:
    """A random-init UMT5 encoder (fixed seed) and a byte-alphabet BPE tokenizer, in Wan's folder layout."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    tiny = cfg.tiny
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    specials = ["<pad>", "</s>", "<unk>"]
    trainer = trainers.BpeTrainer(vocab_size=tiny.vocab_size, special_tokens=specials,
                                  initial_alphabet=list(string.printable.strip() + "\u2581"), show_progress=False)
    corpus = ["a ball rolls behind the box and comes back", "water fills the glass while the light is off",
              "the camera looks away and returns to the scene", "ice melts on the table", string.printable]
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[
        ("</s>", tokenizer.token_to_id("</s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>")
    fast.save_pretrained(str(path / cfg.tokenizer_subfolder))
    config = UMT5Config(vocab_size=tokenizer.get_vocab_size(), d_model=d_model, d_kv=tiny.d_kv, d_ff=tiny.d_ff,
                        num_layers=tiny.num_layers, num_heads=tiny.num_heads, feed_forward_proj="gated-gelu",
                        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.seed)
        UMT5EncoderModel(config).save_pretrained(str(path / cfg.text_encoder_subfolder))
    return path


def bundle_path(cfg: TextConfig, d_model: int, cache_root: Path) -> Path:
    """``cfg.pretrained``, or the tiny bundle under ``cache_root`` (written on first use, atomically)."""
    if cfg.pretrained:
        return Path(cfg.pretrained)
    path = cache_root / f"umt5-tiny-{text_tag(cfg, d_model)}"
    if not path.exists():
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        write_tiny_bundle(tmp, cfg, d_model)
        try:
            tmp.rename(path)
        except OSError:  # another process wrote it first
            pass
    return path


class TextEncoder:
    """Prompts -> unpadded (tokens, dim) float32 embeddings with UMT5 (Wan's prompt encoding)."""

    def __init__(self, cfg: TextConfig, bundle: Path, device: Any = "cpu", dtype: Any = None) -> None:
        import torch
        from transformers import AutoTokenizer, UMT5EncoderModel

        self.cfg, self.device = cfg, torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(bundle), subfolder=cfg.tokenizer_subfolder)
        self.model = UMT5EncoderModel.from_pretrained(str(bundle), subfolder=cfg.text_encoder_subfolder,
                                                      dtype=dtype or torch.float32)
        self.model.to(self.device).eval().requires_grad_(False)
        self.calls = 0

    @property
    def dim(self) -> int:
        return int(self.model.config.d_model)

    def encode(self, prompts: list[str]) -> list[np.ndarray]:
        import torch

        self.calls += 1
        tokens = self.tokenizer(prompts, padding="max_length", max_length=self.cfg.max_length, truncation=True,
                                add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        ids, mask = tokens.input_ids.to(self.device), tokens.attention_mask.to(self.device)
        with torch.inference_mode():
            hidden = self.model(ids, mask).last_hidden_state.float().cpu()
        return [hidden[i, : int(mask[i].sum())].numpy() for i in range(len(prompts))]


def pad_context(embedding: np.ndarray | None, max_length: int, dim: int) -> np.ndarray:
    """(max_length, dim): the embedding followed by zeros; all zeros (the null context) for None."""
    out = np.zeros((max_length, dim), dtype=np.float32)
    if embedding is not None:
        out[: len(embedding)] = embedding[:max_length]
    return out


class TextCache:
    """The per-prompt embedding files of one text tag."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, prompt: str) -> Path:
        return self.directory / f"{prompt_key(prompt)}.npy"

    def missing(self, prompts: list[str]) -> list[str]:
        return sorted({p for p in prompts if not self.path(p).exists()})

    def put(self, prompt: str, embedding: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path(prompt).with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, embedding.astype(np.float32))
        tmp.rename(self.path(prompt))

    def get(self, prompt: str) -> np.ndarray:
        path = self.path(prompt)
        if not path.exists():
            raise FileNotFoundError(f"no cached text embedding for a prompt (key {prompt_key(prompt)}) in "
                                    f"{self.directory}: run the encode step")
        return np.load(path)


def encode_prompts(prompts: list[str], directory: str, text: dict[str, Any], bundle: str, device: str = "cpu",
                   batch: int = 8) -> int:
    """Encode and store ``prompts`` (one Ray task's share); returns how many were encoded."""
    cache = TextCache(Path(directory))
    todo = cache.missing(prompts)
    if not todo:
        return 0
    encoder = TextEncoder(TextConfig.model_validate(text), Path(bundle), device)
    for start in range(0, len(todo), batch):
        part = todo[start:start + batch]
        for prompt, embedding in zip(part, encoder.encode(part)):
            cache.put(prompt, embedding)
    return len(todo)


def encode_texts(prompts: list[str], directory: Path, cfg: TrainConfig, use_ray: bool = True) -> int:
    """Cache the embeddings of every prompt that has none: Ray tasks requesting ``text.encode_gpus`` GPUs each, or
    in this process when no GPU is requested (a CPU task would only add a worker start-up)."""
    todo = TextCache(directory).missing(prompts)
    if not todo or cfg.text.encoder == "none":
        return 0
    bundle = str(bundle_path(cfg.text, cfg.model.tiny.text_dim, Path(directory).parent))
    text = cfg.text.model_dump(mode="json")
    if not use_ray or cfg.text.encode_gpus == 0:
        return encode_prompts(todo, str(directory), text, bundle)
    import ray

    gpus = cfg.text.encode_gpus
    task = ray.remote(encode_prompts).options(num_cpus=cfg.data.decode_cpus, num_gpus=gpus)
    device = "cuda" if gpus > 0 else "cpu"
    per_task = max(1, len(todo) // max(1, int(cfg.ray.num_workers)))
    parts = [todo[i:i + per_task] for i in range(0, len(todo), per_task)]
    return sum(ray.get([task.remote(p, str(directory), text, bundle, device) for p in parts]))


class TextConditioner:
    """The text context of each training sample: its cached prompt embedding, or the null (all-zero) context
    when the prompt is dropped for classifier-free guidance or the sample has no text under ``text.source``."""

    def __init__(self, cfg: TrainConfig, directory: Path | None, dim: int, device: Any) -> None:
        import torch

        self.cfg, self.dim, self.device = cfg.text, dim, device
        self.length = cfg.text.max_length if cfg.text.encoder == "umt5" else cfg.model.text_len
        self.cache = TextCache(directory) if directory is not None and cfg.text.encoder == "umt5" else None
        self.null = torch.zeros(1, self.length, dim, device=device)

    def prompt(self, caption: str | None, instruction: str | None) -> str | None:
        return prompt_for(caption, instruction, self.cfg.source)

    def embed(self, prompt: str | None) -> Any:
        """(1, length, dim) context of ``prompt`` (the null context for None or with no text encoder)."""
        import torch

        if prompt is None or self.cache is None:
            return self.null
        array = pad_context(self.cache.get(prompt), self.length, self.dim)
        return torch.from_numpy(array)[None].to(self.device)

    def context(self, caption: str | None, instruction: str | None, rng: np.random.Generator) -> tuple[Any, str]:
        """(context, status): status is "text", "dropped" (CFG dropout) or "missing" (no prompt: null context)."""
        prompt = self.prompt(caption, instruction)
        if self.cache is None:
            return self.null, "missing"
        if prompt is None:
            return self.null, "missing"
        if rng.uniform() < self.cfg.cfg_dropout:
            return self.null, "dropped"
        return self.embed(prompt), "text"
