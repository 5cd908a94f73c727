"""The training format's fixed geometry (ReMind Appendix F.2) and the frame -> latent -> chunk map."""
from __future__ import annotations

NUM_FRAMES = 81
FPS = 16
HEIGHT = 480
WIDTH = 832
LATENT_FRAMES = 21  # Wan VAE: frame 0 alone, then 4 frames per latent
CHUNK_SIZE = 3  # latent frames per chunk
NUM_CHUNKS = LATENT_FRAMES // CHUNK_SIZE  # 7
DEPTH_HEIGHT = 120  # depth.npy is stored at a quarter of the frame resolution
DEPTH_WIDTH = 208


def frame_to_latent(frame: int) -> int:
    """Frame 0 maps to latent 0, frame f > 0 to 1 + (f - 1) // 4."""
    if not 0 <= frame < NUM_FRAMES:
        raise ValueError(f"frame {frame} outside 0..{NUM_FRAMES - 1}")
    return 0 if frame == 0 else 1 + (frame - 1) // 4


def latent_to_chunk(latent: int) -> int:
    if not 0 <= latent < LATENT_FRAMES:
        raise ValueError(f"latent {latent} outside 0..{LATENT_FRAMES - 1}")
    return latent // CHUNK_SIZE


def frame_to_chunk(frame: int) -> int:
    return latent_to_chunk(frame_to_latent(frame))


def latent_frames(latent: int) -> tuple[int, int]:
    """First and last video frame encoded by one latent frame."""
    if latent == 0:
        return 0, 0
    return 1 + 4 * (latent - 1), 4 * latent


def chunk_latents(chunk: int) -> tuple[int, int]:
    if not 0 <= chunk < NUM_CHUNKS:
        raise ValueError(f"chunk {chunk} outside 0..{NUM_CHUNKS - 1}")
    return chunk * CHUNK_SIZE, chunk * CHUNK_SIZE + CHUNK_SIZE - 1


def chunk_frames(chunk: int) -> tuple[int, int]:
    first_latent, last_latent = chunk_latents(chunk)
    return latent_frames(first_latent)[0], latent_frames(last_latent)[1]
