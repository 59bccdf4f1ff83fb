"""Scenes as data: what a visitor is put into.

Modules: definition (overlays/<name>/scene.toml parsed into plate-relative geometry: the
stage where visitors stand, the boxes that must stay visible, caption, credit and the
[effects] table), plate (finding the plate image: the configured path, BOOTH_PLATE, the
cache, or a download from NASA checked by its SHA-256).
"""
