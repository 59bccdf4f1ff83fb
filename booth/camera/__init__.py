"""Where frames come from: cameras, device paths, IP cameras, videos, images, folders.

Modules: sources (the FrameSource and StillSource interfaces the station uses, and
open_source(), which picks a source for a --source value), threaded (the newest frame under a
lock and the thread that delivers it: the base of every source), files (an image, a folder of
images, a video file), cameras (a live camera: reader thread, watchdog, reconnect with
backoff, the still mode at the shutter).
"""
