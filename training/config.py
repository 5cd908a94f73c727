"""The training configuration: one pydantic model, YAML files override only the keys they set.

Defaults describe the tiny CPU setting (random-init Wan of a few layers, frames downscaled to 64x112 after decode);
``configs/train-wan1.3b.yaml`` switches to pretrained Wan2.1-T2V-1.3B weights, 480x832 frames and GPU workers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from schemas.config_section import RootConfig, Section as _Section

REGIMES = ("all_history", "noisy_memory", "node_drop", "v2v_frontier", "reference_cache")
Regime = Literal["all_history", "noisy_memory", "node_drop", "v2v_frontier", "reference_cache"]


class TransformerConfig(_Section):
    """Keyword arguments of diffusers' WanTransformer3DModel when it is built from scratch (no ``pretrained``)."""

    num_attention_heads: int = 2
    attention_head_dim: int = 24
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 32
    freq_dim: int = 32
    ffn_dim: int = 96
    num_layers: int = 2
    rope_max_seq_len: int = 1024


class PMRoPEConfig(_Section):
    enabled: bool = True
    phase_hidden: int = Field(64, ge=1, description="Hidden width of the per-layer phase MLP h(c).")
    value_residual: bool = True
    output_residual: bool = True


class ModelConfig(_Section):
    pretrained: str | None = Field(None, description="Diffusers folder (or subfolder) of a WanTransformer3DModel.")
    pretrained_subfolder: str | None = "transformer"
    tiny: TransformerConfig = TransformerConfig()
    pm_rope: PMRoPEConfig = PMRoPEConfig()
    attention_backend: Literal["auto", "dense", "flex"] = Field(
        "auto", description="auto = flex-attention BlockMask on CUDA, a dense boolean mask on CPU.")
    gradient_checkpointing: bool | int = Field(
        False, description="Recompute activations in the backward pass: true = every block, N = the first N blocks "
        "(spend the memory the device has on the rest), false / 0 = none.")
    compile_blocks: bool = Field(False, description="torch.compile each transformer block (in place).")
    compile_backend: str = Field("inductor", description="torch.compile backend of compile_blocks (aot_eager: "
                                 "traced, no code generation: the CPU check of the compiled path).")
    text_len: int = Field(8, ge=1, description="Length of the (null) text context when no text encoder is set.")
    train_new_only: bool = Field(False, description="Freeze the stock weights and train only the new modules.")


class TinyUMT5Config(_Section):
    """A random-init UMT5 encoder (d_model = the transformer's text_dim) for CPU runs; built once, then loaded
    through ``from_pretrained`` like the real one."""

    num_layers: int = 2
    num_heads: int = 2
    d_kv: int = 16
    d_ff: int = 64
    vocab_size: int = 256
    seed: int = 0


class TextConfig(_Section):
    """Text conditioning as Wan is trained: UMT5 encoder embeddings, padded with zeros to ``max_length``."""

    encoder: Literal["umt5", "none"] = Field(
        "umt5", description="none = the all-zero null context for every sample (an unconditional run).")
    pretrained: str | None = Field(None, description="Diffusers folder holding text_encoder/ and tokenizer/.")
    text_encoder_subfolder: str = "text_encoder"
    tokenizer_subfolder: str = "tokenizer"
    max_length: int = Field(512, ge=1, description="Tokens; embeddings are zero-padded to this length.")
    source: Literal["caption", "instruction", "both"] = Field(
        "caption", description="caption = the event caption (txt), instruction = degraded.txt, both = joined.")
    cfg_dropout: float = Field(0.1, ge=0, le=1, description="Chance a sample gets the null context (CFG).")
    encode_gpus: float = Field(0.0, ge=0, description="GPUs per Ray text-encoding task.")
    tiny: TinyUMT5Config = TinyUMT5Config()


class VAEConfig(_Section):
    pretrained: str | None = Field(None, description="Diffusers folder of an AutoencoderKLWan.")
    pretrained_subfolder: str | None = "vae"
    base_dim: int = Field(8, description="Tiny random-init VAE width (ignored with pretrained).")
    num_res_blocks: int = 1
    seed: int = 0


class MixtureConfig(_Section):
    """Sampling weights by category; a category not listed gets ``default``; weight 0 excludes it."""

    sources: dict[str, float] = Field(default_factory=dict, description="meta.source.kind -> weight")
    event_groups: dict[str, float] = Field(default_factory=dict, description="meta.event_group -> weight")
    interruptions: dict[str, float] = Field(default_factory=dict, description="interruption kind -> weight")
    default: float = Field(1.0, ge=0)
    buffer_size: int = Field(8, ge=1, description="Rows held by the sampler (bounds memory).")


class DataConfig(_Section):
    height: int = Field(64, description="Frames are resized to this in the decoder (480 in production).")
    width: int = Field(112, description="Must be a multiple of 16 (VAE x8, patch x2).")
    latents: Literal["cache", "on_the_fly"] = Field(
        "cache", description="cache: the encode step writes latent shards first; on_the_fly: VAE in the loop.")
    decode_cpus: float = Field(0.5, gt=0, description="CPUs per Ray Data decode task.")
    decode_concurrency: int = Field(1, ge=1)
    encode_gpus: float = Field(0.0, ge=0, description="GPUs per Ray latent-encoding task (1 on GPU clusters).")
    mixture: MixtureConfig = MixtureConfig()


class NoisyMemoryConfig(_Section):
    prob: float = Field(0.5, ge=0, le=1, description="Chance that a past chunk is put at high noise.")
    sigma_min: float = Field(0.7, ge=0, le=1)
    sigma_max: float = Field(0.95, ge=0, le=1)


class NodeDropConfig(_Section):
    prob: float = Field(0.3, ge=0, le=1, description="Chance that a non-degraded past node is dropped as well.")


class FrontierConfig(_Section):
    degraded_prefix_prob: float = Field(0.5, ge=0, le=1)


class ReferenceCacheConfig(_Section):
    max_refs: int = Field(2, ge=1)
    gap_min: int = Field(0, ge=0, description="Gap G in chunks between the references and the target.")
    gap_max: int = Field(4, ge=0)


class CurriculumConfig(_Section):
    weights: dict[str, float] = Field(default_factory=lambda: {r: 1.0 for r in REGIMES})
    timestep_shift: float = Field(3.0, gt=0, description="Flow-matching shift s' = k s / (1 + (k - 1) s).")
    sigma_min: float = 0.001
    sigma_max: float = 0.999
    noisy_memory: NoisyMemoryConfig = NoisyMemoryConfig()
    node_drop: NodeDropConfig = NodeDropConfig()
    v2v_frontier: FrontierConfig = FrontierConfig()
    reference_cache: ReferenceCacheConfig = ReferenceCacheConfig()


class LossConfig(_Section):
    alpha: float = 0.2
    gamma: float = 5.0
    delta_warmup_steps: int = Field(2000, ge=0, description="The temporal-delta loss starts after this many steps.")


class OptimConfig(_Section):
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(100, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    grad_accum: int = Field(1, ge=1, description="Samples per optimiser step and worker (one sample per pass).")
    fused: bool = Field(False, description="torch's fused AdamW kernel (one launch for all parameters).")


class RayTrainConfig(_Section):
    address: str = Field("", description="Existing cluster; empty = a local Ray.")
    num_cpus: int = Field(0, ge=0, description="Local Ray CPUs (0 = all cores).")
    min_free_disk_gib: float = Field(1.0, gt=0, description="Local Ray: refuse to create or spill objects below "
                                     "this much free disk (instead of Ray's 95%-of-the-disk rule).")
    num_workers: int = Field(1, ge=1)
    cpus_per_worker: float = Field(1.0, gt=0)
    use_gpu: bool = False
    gpus_per_worker: float = Field(1.0, ge=0)
    torch_threads: int = Field(1, ge=1)
    strategy: Literal["ddp", "fsdp"] = Field("ddp", description="fsdp shards parameters, grads and optimiser state.")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="Placement of the workers' bundles (STRICT_SPREAD: every worker on its own node).")
    max_failures: int = Field(3, ge=-1, description="Worker-group restarts from the last checkpoint after a worker "
                              "or node is lost (Ray Train FailureConfig; -1 = no limit).")


class GenerateConfig(_Section):
    """Streaming generation from a checkpoint (``training.generate``)."""

    steps: int = Field(20, ge=1, description="Denoising steps per chunk.")
    scheduler: Literal["euler", "unipc"] = Field("unipc", description="Wan's flow-matching schedulers.")
    shift: float = Field(3.0, gt=0, description="Flow shift (Wan: 3.0 at 480p).")
    guidance: float = Field(5.0, ge=1, description="Classifier-free guidance scale; 1 = no unconditional pass.")
    seed: int = 42
    v2v_prefix: Literal["degraded", "clean"] = Field("degraded", description="degraded when the sample has one.")
    v2v_prefix_chunks: int = Field(2, ge=1, le=6, description="Prefix length when the graph has no recovery.")
    reference_count: int = Field(1, ge=1, description="Clean anchor chunks kept as references.")
    reference_gap: int = Field(2, ge=0, description="Gap G in chunks before the target.")
    heatmap_layers: list[int] = Field(default_factory=lambda: [-1])
    fps: int = 16


class TrainConfig(RootConfig):
    REPLACED_WHOLE = ("weights",)  # a regime left out of a file's curriculum weights is not trained
    HASH_CHARS = 12

    seed: int = 0
    max_steps: int = Field(300, ge=1)
    precision: Literal["fp32", "bf16"] = "fp32"
    metrics_sync: Literal["every_step", "log_steps"] = Field(
        "every_step", description="When the step's metrics (losses, grad norm) are read back to the host: "
        "log_steps keeps them on the device between logged and checkpoint steps (no host sync in other steps).")
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    heatmap_every: int = Field(0, ge=0, description="0 = only at the end of the run.")
    heatmap_layers: list[int] = Field(default_factory=lambda: [-1], description="Layer indices (negative = from end).")
    heatmap_query_stride: int = Field(1, ge=1, description="Use every n-th query token (bounds memory).")
    run_name: str = "remind-train"
    model: ModelConfig = ModelConfig()
    vae: VAEConfig = VAEConfig()
    text: TextConfig = TextConfig()
    generate: GenerateConfig = GenerateConfig()
    data: DataConfig = DataConfig()
    curriculum: CurriculumConfig = CurriculumConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    ray: RayTrainConfig = RayTrainConfig()


def load_train_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the YAML file's keys, then ``overrides``. Unknown keys are an error.

    ``curriculum.weights`` is replaced as a whole (a regime left out of a file's weights is not trained).
    """
    return checked(TrainConfig.load(path, overrides=overrides))


def checked(config: TrainConfig) -> TrainConfig:
    """What the model's fields alone cannot say."""
    unknown = set(config.curriculum.weights) - set(REGIMES)
    if unknown:
        raise ValueError(f"unknown regimes in curriculum.weights: {sorted(unknown)}")
    if not any(w > 0 for w in config.curriculum.weights.values()):
        raise ValueError("curriculum.weights needs at least one positive weight")
    checkpointing = config.model.gradient_checkpointing
    if not isinstance(checkpointing, bool) and checkpointing < 0:
        raise ValueError("model.gradient_checkpointing must be true, false or a number of blocks >= 0")
    if config.data.height % 16 or config.data.width % 16:
        raise ValueError("data.height and data.width must be multiples of 16 (VAE x8, patch x2)")
    return config
