"""Scenes as data (overlays/<name>/scene.toml) and the plate each one is drawn on."""
