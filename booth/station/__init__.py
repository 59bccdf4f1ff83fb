"""The station a visitor stands in front of: its states, screens, window and the photo.

Modules: loop (the Station: newest frame, state machine, photo on a worker thread, screen;
the PhotoMaker: the photo, its outputs, then the result screen), machine (the states and
their timing, driven by the time it is given), events (the typed input events displays
produce), display (the fullscreen window, or headless), renderer (one screen for one moment;
nothing drawn for an unchanged view), screens (what each state shows, in every language),
layout (where the photo area, the panel and the touch targets sit), textfit (text measured
to fit its box), graphics (fonts and overlays), photo (the saved photo's caption band and its
JPEG without EXIF), qr (the photo's QR code and the venue's Wi-Fi code), showcase (`booth
screens`: every screen in every language), outputs (a package: the Product a capture makes,
and one module per output, which `[outputs] enabled` chooses: store).
"""
