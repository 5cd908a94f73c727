"""The recovery evaluation (ReMind Appendix D, G.2): VLM reviewer scores, PSNR/SSIM (LPIPS where weights exist),
bootstrap confidence intervals, per-example Parquet and a comparison table over model variants."""
