"""ReMind training: memory-oriented shards -> a causal Wan video DiT with PM-RoPE, trained on Ray.

Entry point: ``training.run.train(shards, config_path, out)``. See training/README.md for the layout of OUT,
the PM-RoPE descriptor layout and the curriculum regimes.
"""
