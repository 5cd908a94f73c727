"""A tiny random-weight Qwen3-VL bundle built offline, loadable by the production loader.

Honest test and benchmark tooling: it exercises the real processor, chat template, vision tower, batching and
``generate``, but its answers are junk, which the judge must treat as unparseable, never as a verdict.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (GenerationConfig, Qwen2TokenizerFast, Qwen2VLImageProcessor, Qwen3VLConfig,
                          Qwen3VLForConditionalGeneration, Qwen3VLProcessor)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<think>", "</think>")

# A Qwen-style ChatML template: string or typed-part content, one placeholder per image or video.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}")

_CORPUS = (
    '{"scene_cut": false, "event_type": "pouring_filling", "spatial_occupancy": 0.42, "temporal_occupancy": 0.9, '
    '"confidence": 0.8, "caption": "Water level in a clear glass rises as it is filled."}',
    "You are an expert video reviewer. Judge the clip and answer with only the JSON object.",
    "scene cut event type spatial temporal occupancy confidence caption object state variable direction",
    "The frames are sampled evenly, in order, from one clip. null true false 0123456789",
)


def _train_tokenizer(vocab_size: int) -> Qwen2TokenizerFast:
    """Byte-level BPE with Qwen's pre-tokenizer, trained on a few strings, wrapped as the Qwen2 tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(QWEN_SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(_CORPUS) * 4, trainer)
    merges = [tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]
    return Qwen2TokenizerFast(vocab=tok.get_vocab(), merges=merges, unk_token=None, eos_token="<|im_end|>",
                              pad_token="<|endoftext|>", extra_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]))


def build_tiny_qwen3vl(directory: str | Path, seed: int = 0, vocab_size: int = 512) -> Path:
    """Write a random-weight tiny Qwen3-VL (model + processor, about 1 MB) to ``directory`` and return it.

    ``AutoProcessor`` / ``AutoModelForImageTextToText.from_pretrained(directory)`` load it like a hub checkpoint.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    processor = Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(patch_size=16), tokenizer=tokenizer,
                                 video_processor=Qwen3VLVideoProcessor(patch_size=16), chat_template=CHAT_TEMPLATE)
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=8192,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2],
                                          "mrope_interleaved": True},
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64,
                           num_position_embeddings=256, deepstack_visual_indexes=[0, 1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                                               do_sample=False)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
