"""Streaming generation from a training checkpoint: rollouts (i2v / v2v / reference), sampler, CLI entry."""
