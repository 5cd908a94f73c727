"""Camera/depth estimation in the training conventions (Depth Anything 3 and a classical CPU fallback)."""
