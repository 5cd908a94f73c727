"""Qwen3-VL (any checkpoint ``config.model`` names) in process with transformers: batched greedy generation.

Frames go through qwen-vl-utils as one video: a list of PIL images already resized by ``VLMRequest.video`` (the
same frames, size and fps the OpenAI backend encodes), so qwen-vl-utils' own resize leaves them as they are; the
processor then must not resize again, and takes the fake video metadata qwen-vl-utils returns (frame i at
i / sample_fps seconds) for the timestamps it writes into the prompt.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import torch
from PIL import Image
from qwen_vl_utils import process_vision_info
from transformers import AutoModelForImageTextToText, AutoProcessor

from schemas.config import VLMConfig
from tasks.vlm.backends import Usage, VLMCallError, VLMRequest

log = logging.getLogger(__name__)


def pick_device_dtype(dtype: str) -> tuple[torch.device, torch.dtype]:
    """CUDA if present; bf16 on GPU and float32 on CPU unless the config says otherwise."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "bfloat16":
        return device, torch.bfloat16
    if dtype == "float32":
        return device, torch.float32
    return device, torch.bfloat16 if device.type == "cuda" else torch.float32


class TransformersBackend:
    """Loads processor and model once; ``generate`` runs one padded batch per call."""

    name = "transformers"

    def __init__(self, config: VLMConfig) -> None:
        self.config = config
        self.model = config.model
        self.usage = Usage()
        self.device, self.dtype = pick_device_dtype(config.dtype)
        start = time.perf_counter()
        self.processor = AutoProcessor.from_pretrained(config.model)
        self.processor.tokenizer.padding_side = "left"  # decoder-only batching: prompts end where generation starts
        self.net = AutoModelForImageTextToText.from_pretrained(config.model, dtype=self.dtype).to(self.device).eval()
        self.patch_size = int(getattr(self.processor.video_processor, "patch_size", 16))
        log.info("loaded VLM %s on %s (%s) in %.1f s", config.model, self.device, self.dtype,
                 time.perf_counter() - start)

    def messages(self, request: VLMRequest) -> list[dict[str, Any]]:
        """Qwen chat messages; the frames become one video part of the first user turn."""
        cfg = self.config
        out: list[dict[str, Any]] = []
        attached = False
        for turn in request.turns:
            content: list[dict[str, Any]] = []
            if turn.role == "user" and not attached:
                video = request.video(cfg)  # already at the budget: qwen-vl-utils' resize is then the identity
                content.append({
                    "type": "video", "video": [Image.fromarray(f) for f in video.frames],
                    "min_pixels": cfg.min_pixels, "max_pixels": cfg.max_pixels, "sample_fps": video.fps})
                attached = True
            content.append({"type": "text", "text": turn.text})
            out.append({"role": turn.role, "content": content})
        return out

    def _inputs(self, requests: list[VLMRequest]) -> Any:
        conversations = [self.messages(r) for r in requests]
        texts = [self.processor.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                 for c in conversations]
        _, videos, video_kwargs = process_vision_info(conversations, return_video_kwargs=True,
                                                      return_video_metadata=True, image_patch_size=self.patch_size)
        frames, metadata = zip(*videos)
        return self.processor(text=texts, videos=list(frames), video_metadata=list(metadata), padding=True,
                              return_tensors="pt", do_resize=False, cap_pixels_per_frame=True, **video_kwargs)

    @torch.inference_mode()
    def generate(self, requests: list[VLMRequest]) -> list[str | VLMCallError]:
        """Greedy answers for one batch; raises on a batch-wide failure (the judge then isolates requests)."""
        if not requests:
            return []
        start = time.perf_counter()
        inputs = self._inputs(requests).to(self.device)
        if "pixel_values_videos" in inputs:
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.dtype)
        tokenizer = self.processor.tokenizer
        output = self.net.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                   temperature=None, top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        self.usage.requests += len(requests)
        self.usage.prompt_tokens += int(inputs["attention_mask"].sum())
        self.usage.completion_tokens += int((new_tokens != tokenizer.pad_token_id).sum())
        self.usage.seconds += time.perf_counter() - start
        return list(texts)
