"""The per-frame path: segmentation, placement, cut-out and compositing (pure numpy)."""
