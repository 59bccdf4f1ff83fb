"""Every station screen in every language, drawn as the station draws them (`booth screens`):
for a museum to check its texts, languages and Wi-Fi settings before opening.

The screens come from the station's own renderer and Screens, on the museum's settings
(display size, languages, privacy text, retention, [server] public_url and Wi-Fi). A photo of
a person may stand in for the camera; without one, nobody is in view and the saved photo on
the result screen is the empty scene. The result screen's link is an example token on the
address the station would use. With [station] boomerang, the attract screen offers the Photo
and Boomerang buttons, and the boomerang's recording screen (its ring half closed) is drawn too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np

from booth.config import Config
from booth.errors import BoothError
from booth.station.machine import State
from booth.station.photo import with_band
from booth.station.qr import qr_matrix
from booth.station.renderer import Renderer, View
from booth.station.screens import Screens, screen_settings

EXAMPLE_TOKEN = "q3V9x2LmT0bY7wKcR1sZaA"  # the shape of a real one; it opens nothing
# name: (state, camera working); the countdown shows its first digit, its ring half gone
STATES = {"attract": (State.ATTRACT, True), "countdown": (State.COUNTDOWN, True),
          "processing": (State.PROCESSING, True), "nobody": (State.NOBODY, True),
          "failed": (State.FAILED, True), "camera": (State.ATTRACT, False)}
CLIP_STATES = {"recording": (State.RECORDING, True)}  # where a boomerang is offered
NAMES = (*STATES, *CLIP_STATES, "result")  # CLIP_STATES' with [station] boomerang alone


def station_screens(cfg: Config, photo: np.ndarray | None, languages: list[str] | None,
                    when: datetime) -> Iterator[tuple[str, str, np.ndarray]]:
    """(screen name, language code, BGR screen) for every screen of NAMES in each language
    (default: every language the station offers), at `when`."""
    from booth.webapp.network import public_base_url
    from booth.wiring import load_pipeline

    st = cfg.station
    pipeline = load_pipeline(cfg, mirror=st.mirror)
    screens = Screens(st.display_width, st.display_height, pipeline.plate, pipeline.scene,
                      st.countdown_seconds, when=when, boomerang=st.boomerang,
                      **screen_settings(cfg))
    codes = languages or list(screens.languages.codes)
    unknown = [code for code in codes if code not in screens.languages]
    if unknown:
        raise BoothError(f"no language {', '.join(unknown)} here; choose among "
                         f"{', '.join(screens.languages.codes)}")
    analysis = pipeline.photo_analysis(photo) if photo is not None else None
    picture = pipeline.final(photo, analysis) if photo is not None else pipeline.plate.copy()
    base_url, _ = public_base_url(cfg.server.public_url, cfg.server.host, cfg.server.port)
    link = f"{base_url}/p/{EXAMPLE_TOKEN}"
    modules = qr_matrix(link)
    expires = when + timedelta(hours=cfg.store.retention_hours)
    for code in codes:
        screens.set_language(code)
        renderer = Renderer(pipeline, screens)  # a new language is a new base screen
        if photo is not None:
            renderer.freeze(photo, analysis)
        states = {**STATES, **(CLIP_STATES if st.boomerang else {})}
        for name, (state, camera_ok) in states.items():
            view = View(state, photo if camera_ok else None, analysis if camera_ok else None,
                        camera_ok, countdown=st.countdown_seconds, countdown_left=0.5)
            yield name, code, renderer.draw(view).copy()
        saved = with_band(picture, pipeline.scene, when, screens.language)
        yield "result", code, screens.result(saved, modules, link, expires,
                                             cfg.store.retention_hours)
