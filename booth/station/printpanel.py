"""The result screen's printing part, in the room booth.station.screens keeps for it under the
link: the Print button (touch it, or press P) while the visitor may ask for a copy, else one
line on how printing goes. Each look is drawn once per language and printing state; the
result screen is redrawn only when the printer output's state changes."""

from __future__ import annotations

import numpy as np

from booth.i18n.catalogues import Language
from booth.station.graphics import ACCENT, INK, PANEL, Overlay
from booth.station.layout import Button
from booth.station.outputs.printer import PrinterOutput, PrintState
from booth.station.screens import Screens
from booth.station.textfit import Para, fit, render


def lines(lang: Language) -> dict[PrintState, str]:
    """What the line says in each state (none for the button alone)."""
    _ = lang.gettext
    return {PrintState.PRINTING: _("Printing..."),
            PrintState.PRINTED: _("Printed: take it from the printer."),
            PrintState.UNAVAILABLE: _("Printing is unavailable, your photo is on your phone."),
            PrintState.USED_UP: _("No more prints today, your photo is on your phone.")}


class PrintPanel:
    def __init__(self, screens: Screens, printer: PrinterOutput) -> None:
        self.screens, self.printer = screens, printer
        self._looks: dict[tuple, Overlay] = {}
        self._screen: np.ndarray | None = None  # the result screen last drawn on
        self._drawn: tuple | None = None  # (state's seq, button) last drawn there
        self._under: np.ndarray | None = None  # the room as that screen had it

    @property
    def button(self) -> Button | None:
        """Where the Print button is now, if it is shown."""
        more = self.printer.shown()[2]
        return Button("print", *self.screens.print_box) if more else None

    def at(self, x: int, y: int) -> bool:
        button = self.button
        return button is not None and button.contains(x, y)

    def press(self) -> bool:
        return self.printer.press()

    def draw(self, screen: np.ndarray) -> bool:
        """Printing's part drawn on the result screen; True when it changed."""
        state, seq, more = self.printer.shown()
        if screen is self._screen and (seq, more) == self._drawn:
            return False
        x, y, w, h = self.screens.print_box
        room = screen[y:y + h, x:x + w]
        if screen is not self._screen:  # a new result screen
            self._screen, self._under = screen, room.copy()
        room[:] = self._under
        self._drawn = (seq, more)
        look = self._look(self.screens.language, state, more)
        if look is not None:
            look.draw(screen)
        return True

    def _look(self, lang: Language, state: PrintState, more: bool) -> Overlay | None:
        key = (lang.code, state, more)
        if key not in self._looks:
            self._looks[key] = self._render(lang, state, more)
        return self._looks[key]

    def _render(self, lang: Language, state: PrintState, more: bool) -> Overlay | None:
        _ = lang.gettext
        x, y, w, h = self.screens.print_box
        u = self.screens.layout.height / 720
        if more:  # the button: again after a print, while copies are left
            title = _("Print again") if state is PrintState.PRINTED else _("Print")
            pad = round(8 * u)
            paras = [Para(title, round(28 * u), "Black", PANEL),
                     Para(_("Press P"), round(16 * u), "Bold", PANEL)]
            return render(fit(paras, w - 2 * pad, h - 2 * pad), x, y, pad=pad,
                          backdrop=(*ACCENT, 255), box_height=h, align="center",
                          valign="middle")
        text = lines(lang).get(state)
        if text is None:
            return None
        colour = ACCENT if state is PrintState.PRINTED else INK
        return render(fit([Para(text, round(20 * u), "Bold", colour)], w, h), x, y)
