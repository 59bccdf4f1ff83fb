"""Printing through CUPS (issue 24), against a real cupsd with a cups-pdf queue started by the
test (devtools/printers.py): the page that comes out, the faults, the daily limit, staff's
prints and the station's Print button."""

from __future__ import annotations

import multiprocessing
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from booth.clock import ManualClock
from booth.config import Config, PrinterConfig, load_config
from booth.errors import BoothError
from booth.i18n.catalogues import shipped
from booth.station.display import _KEYS
from booth.station.events import PrintPhoto
from booth.station.graphics import to_pil
from booth.station.outputs import Kind, Product
from booth.station.outputs.cups import choose_media, parse_lpstat
from booth.station.outputs.page import PAPERS, layout
from booth.station.outputs.printer import PrinterOutput, PrintState
from booth.station.outputs.store import StoreOutput
from booth.station.photo import encode_jpeg, with_band
from booth.station.textfit import Para, fit
from booth.store import Store
from booth.store.status import PrinterStatus
from tests.conftest import asset
from tests.test_web_staff import PASSWORD, _login, _post


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A photo as the station makes it: the sol-46 plate above its caption band (BGR)."""
    from booth.scene.definition import load_scene

    plate = cv2.imread(str(asset("scenes/sol46/PIA24542_large.jpg")))
    return with_band(plate, load_scene("sol46"), datetime(2026, 12, 4, 15, 30))


def product(picture: np.ndarray, kind: Kind = Kind.PHOTO) -> Product:
    jpeg = encode_jpeg(picture)
    return Product(kind, jpeg, jpeg, picture, datetime.now(), 1.0)


def printer(store: Store, queue: str = "booth", **settings) -> PrinterOutput:
    return PrinterOutput(PrinterConfig(name=queue, **settings), store, timeout=10,
                         watch_seconds=3600)  # the tests run the watcher's rounds themselves


def settle(output: PrinterOutput, timeout: float = 20.0) -> PrintState:
    """The shown photo's print state once it is no longer on its way."""
    deadline = time.monotonic() + timeout
    while (state := output.shown()[0]) is PrintState.PRINTING:
        assert time.monotonic() < deadline, "the print never settled"
        time.sleep(0.01)
    return state


def rendered(pdf: Path, tmp_path: Path) -> np.ndarray:
    """The printed PDF's page as pixels at 300 dpi (pdftoppm), RGB."""
    subprocess.run(["pdftoppm", "-r", "300", "-png", "-singlefile", str(pdf),
                    str(tmp_path / "page")], check=True, timeout=60)
    return np.asarray(Image.open(tmp_path / "page.png").convert("RGB"), np.int16)


def page_size(pdf: Path) -> str:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return next(line.split(":", 1)[1].strip() for line in info.stdout.splitlines()
                if line.startswith("Page size"))


@pytest.mark.slow
def test_the_printed_page_is_the_photo_at_the_papers_size_and_no_link(cups, store, picture,
                                                                      tmp_path):
    """A visitor's Print: the PDF cups-pdf writes is 6 x 4 in; rendered at 300 dpi it is the
    photo laid out on the paper, pixel for pixel within JPEG noise; neither the photo's link
    nor its token is on it, and no QR code. The same photo on A6."""
    delivered = StoreOutput(store, "http://booth.test").deliver(product(picture))
    token = delivered.link.rsplit("/", 1)[1]
    # The paper is fed short side first: CUPS turns the landscape page onto it (A6 is the
    # queue's own size, which its PPD gives in whole points).
    for paper, size, pages in (("4x6in", "288 x 432 pts", 1), ("A6", "297 x 419 pts", 2)):
        output = printer(store, paper=paper)
        try:
            assert output.deliver(product(picture)) is None  # the store's link is the QR code
            assert output.shown() == (PrintState.OFFER, 0, True)
            assert output.press()
            assert settle(output) is PrintState.PRINTED
        finally:
            output.close()
        pdf = cups.wait_for_pdf(pages)
        assert page_size(pdf) == size
        if paper == "A6":
            continue
        expected = np.asarray(layout(to_pil(picture), PAPERS[paper]), np.int16)
        page = rendered(pdf, tmp_path)
        page = min((np.rot90(page, k) for k in (1, 3)),
                   key=lambda turned: np.abs(turned - expected).mean())
        assert page.shape == expected.shape
        diff = np.abs(page - expected)
        # (JPEG at 95 and Ghostscript's page in cups-pdf: 2.4 and 23 measured; a page
        # scaled or moved by a pixel is far over.)
        assert diff.mean() < 3.0 and np.percentile(diff, 99) < 30, (diff.mean(), paper)
        assert page[:, :100].min() > 250 and page[:, -100:].min() > 250, "white margins"
        data = pdf.read_bytes()
        assert token.encode() not in data and b"booth.test" not in data
        assert not cv2.QRCodeDetector().detect(page.astype(np.uint8))[0]
    assert store.prints_on("booth", datetime.now().date().isoformat()) == 2


@pytest.mark.slow
def test_auto_print_prints_each_photo_once_and_clips_never(cups, store, picture):
    output = printer(store, auto_print=True)
    try:
        output.deliver(product(picture, Kind.CLIP))
        assert output.shown() == (PrintState.NONE, 0, False) and not output.press()
        output.deliver(product(picture))
        assert settle(output) is PrintState.PRINTED
        assert output.shown()[2] is False and not output.press()
    finally:
        output.close()
    cups.wait_for_pdf(1)


@pytest.mark.slow
def test_faults_leave_the_photo_and_say_one_line_and_staff_see_why(cups, store, picture):
    """Paused, deleted, hung, CUPS down: the visitor's state is UNAVAILABLE (one line on the
    result screen), nothing is counted, the store output still gives the photo its link,
    and the status staff read names the state and the last error."""
    output = printer(store)
    today = datetime.now().date().isoformat()
    try:
        def attempt() -> PrinterStatus:
            assert StoreOutput(store, "http://booth.test").deliver(product(picture)).link
            output.deliver(product(picture))
            assert output.press() and settle(output) is PrintState.UNAVAILABLE
            output.watch_once()
            return PrinterStatus.load(store)

        cups.run("cupsdisable", "-r", "out of paper", cups.queue)
        status = attempt()
        assert (status.state, status.ok) == ("paused", False)
        assert "out of paper" in status.message
        assert "visitor print: queue 'booth': paused (out of paper)" in status.last_error
        cups.run("cupsenable", cups.queue)
        cups.run("lpadmin", "-x", cups.queue)
        status = attempt()
        assert status.state == "missing" and "queue 'booth': missing" in status.last_error
        cups.add_queue()
        cups.pause()  # hung: every client waits (a shorter timeout than the booth's 10 s)
        output.close()
        output = PrinterOutput(PrinterConfig(name="booth"), store, timeout=1,
                               watch_seconds=3600)
        started = time.monotonic()
        status = attempt()
        assert time.monotonic() - started < 4.0
        assert status.state == "unknown" and "did not answer `lpstat` within 1 s" in \
            status.last_error
        cups.resume()
        cups.stop()
        status = attempt()
        assert status.state == "CUPS not running" and "CUPS not running" in status.last_error
        assert store.prints_on("booth", today) == 0
    finally:
        output.close()
    assert not cups.pdfs()


def test_the_visitors_line_is_there_in_every_language():
    from booth.station.printpanel import lines

    for lang in shipped():
        said = lines(lang)
        assert len(set(said.values())) == 4
        if lang.code != "en":
            assert said[PrintState.UNAVAILABLE] != lines(shipped().default)[
                PrintState.UNAVAILABLE]
        for text in said.values():  # one line on the panel, never cut short
            assert "…" not in fit([Para(text, 20, "Bold")], 324, 50).lines[-1].text


def test_lpstat_words_are_read_as_states():
    assert parse_lpstat("printer p is idle.  enabled since x\n\tAlerts: none\n").usable
    off = parse_lpstat("printer p now printing p-3.  enabled since x\n\tAlerts: offline-report\n")
    assert off.state == "printing" and off.blocked and not off.usable
    empty = parse_lpstat("printer p is idle.  enabled\n\tAlerts: media-empty-error\n")
    assert not empty.usable and "media-empty-error" in empty.message
    assert parse_lpstat("printer p is idle.\n\tAlerts: none\np not accepting requests since x"
                        " -\n\tclosed\n").state == "rejecting jobs"


def test_the_papers_borderless_size_is_chosen_where_the_queue_has_one():
    four_by_six, a6 = PAPERS["4x6in"], PAPERS["A6"]
    ppd = ["Letter", "A4", "4x6", "4x6.Borderless", "A6", "A6.FullBleed", "100x150mm"]
    assert choose_media(ppd, four_by_six) == "4x6.Borderless"
    assert choose_media(ppd, a6) == "A6.FullBleed"
    assert choose_media(ppd, PAPERS["10x15cm"]) == "100x150mm"
    everywhere = ["na_letter_8.5x11in", "na_index-4x6_4x6in", "na_index-4x6_4x6in.Borderless"]
    assert choose_media(everywhere, four_by_six) == "na_index-4x6_4x6in.Borderless"
    assert choose_media(["Custom.WIDTHxHEIGHT", "A4"], four_by_six) == "Custom.4x6in"
    assert choose_media(["Letter"], a6) == "iso_a6_105x148mm"  # for CUPS to match


def _claim(db: Path, opening, ready, results) -> None:
    with opening:  # (two stores opening at the same instant: one's sweep takes the other's
        store = Store(db)  # probe file; not what this test is about)
    try:
        ready.wait(30)
        results.put(store.claim_prints("booth", "2026-12-04", 1, 7))
    finally:
        store.close()


def test_a_daily_limit_of_n_is_exactly_n_under_20_parallel_presses_in_processes(tmp_path):
    """20 processes, each with its store open, claim one print each at once on one data
    dir: exactly 7 get one."""
    Store(tmp_path / "data").close()
    ctx = multiprocessing.get_context("fork")
    results, opening, ready = ctx.Queue(), ctx.Lock(), ctx.Barrier(20)
    procs = [ctx.Process(target=_claim, args=(tmp_path / "data", opening, ready, results))
             for _ in range(20)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(got) == 7
    store = Store(tmp_path / "data")
    try:
        assert store.prints_on("booth", "2026-12-04") == 7
    finally:
        store.close()


@pytest.mark.slow
def test_a_daily_limit_holds_on_the_shared_store(shared):
    store = Store(None, shared=shared)
    try:
        got = []
        threads = [threading.Thread(target=lambda: got.append(
            store.claim_prints("booth", "2026-12-04", 1, 5))) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(got) == 5 and store.prints_on("booth", "2026-12-04") == 5
        store.give_back_prints("booth", "2026-12-04", 9)
        assert store.prints_on("booth", "2026-12-04") == 0
    finally:
        store.close()


@pytest.mark.slow
def test_twenty_parallel_presses_print_exactly_the_daily_limit(cups, tmp_path, picture):
    """A station's presses and a second process's (two stores on one data dir, as staff's
    reprints and the station's prints are) against a limit of 3: three pages come out."""
    stores = [Store(tmp_path / "data") for _ in range(2)]
    outputs = [printer(s, daily_limit=3) for s in stores]
    try:
        got: list[PrintState] = []
        threads = [threading.Thread(target=lambda i=i: got.append(
            outputs[i % 2]._print(picture, 1, "visitor"))) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(s.value for s in got) == ["printed"] * 3 + ["used up"] * 17
        assert "visitor print refused: the daily limit of 3 prints" in outputs[0].last_error
        cups.wait_for_pdf(3)
        time.sleep(0.5)
        assert len(cups.pdfs()) == 3
    finally:
        for output, store in zip(outputs, stores, strict=True):
            output.close()
            store.close()


@pytest.mark.slow
def test_staff_print_and_reprint_from_the_gallery(cups, make_app, store, picture):
    """Staff's Print button asks the store; the station's printer takes it within a round
    of its watcher and prints the stored photo; the gallery shows the queue's state, today's
    count and the last error."""
    from booth.store.passwords import set_password

    set_password(store, PASSWORD)
    client = make_app().test_client()
    assert _login(client).status_code == 303
    photo = store.publish(encode_jpeg(picture), ttl_seconds=3600)
    clip = store.publish(b"\0\0\0\x18ftypmp42", ttl_seconds=3600, kind="clip",
                         poster_jpeg=encode_jpeg(picture))
    assert "Print photo" not in client.get("/staff").text, "no printer: no Print buttons"
    output = printer(store, daily_limit=10)
    try:
        output.watch_once()
        page = client.get("/staff").text
        assert "Printer booth: ready" in page and "0 of 10" in page
        assert f'aria-label="Print photo {photo.id}"' in page
        assert f'aria-label="Print photo {clip.id}"' not in page
        response = _post(client, "/staff/print", {"ids": str(photo.id)})
        assert response.status_code == 303
        assert "Waiting to print" in client.get("/staff").text
        output.watch_once()
        cups.wait_for_pdf(1)
        page = client.get("/staff").text
        assert "Waiting to print" not in page and "1 of 10" in page
        _post(client, "/staff/print", {"ids": str(photo.id)})  # a reprint
        cups.run("cupsdisable", "-r", "jammed", cups.queue)
        output.watch_once()
        page = client.get("/staff").text
        assert "Printer booth: paused" in page and "jammed" in page
        assert "staff print: queue &#39;booth&#39;: paused (jammed)" in page
        assert _post(client, "/staff/print", {"ids": str(clip.id)}).status_code == 303
        assert "gone, or it is a boomerang" in client.get("/staff").text
        assert _post(client, "/staff/print", {"ids": "x1"}).status_code == 400
    finally:
        output.close()
    assert len(cups.pdfs()) == 1


def test_printer_config():
    assert Config().outputs.enabled == ("store",)
    with pytest.raises(BoothError, match="printer.*name is empty"):
        Config(outputs=type(Config().outputs)(enabled=("store", "printer")))
    assert _KEYS[ord("p")] == _KEYS[ord("P")] == PrintPhoto()


def test_a_printer_config_file(tmp_path):
    path = tmp_path / "booth.toml"
    path.write_text('[printer]\nname = "Photo"\npaper = "A6"\ndaily_limit = 200\n')
    cfg = load_config(path)
    assert cfg.outputs.enabled == ("store", "printer") and cfg.printer.paper == "A6"
    path.write_text('[printer]\nname = "Photo"\npaper = "A4"\n')
    with pytest.raises(BoothError, match="printer.paper = 'A4'; use one of 4x6in, 10x15cm"):
        load_config(path)


@pytest.mark.slow
def test_the_result_screen_prints_by_touch_then_key(cups, tmp_path):
    """The real Station.run: a photo, then on its result screen the Print button touched
    (one copy), then P (the second of copies_per_photo = 2), and no third; the button is
    drawn while a copy may be asked for, then the line that says it printed."""
    import io

    from booth.bench import cover
    from booth.station.events import Press, Quit, Tap
    from booth.station.graphics import ACCENT
    from booth.station.loop import PhotoMaker, Station
    from booth.station.machine import Machine, State
    from booth.station.renderer import Renderer
    from booth.station.screens import Screens
    from booth.wiring import load_pipeline, print_panel
    from tests.conftest import plate_config
    from tests.test_station import HandCamera, ScriptedDisplay

    cap = cv2.VideoCapture(str(asset("video/intel_asl_book.mp4")))
    frames = [cover(cap.read()[1], 1280, 720) for _ in range(30)]
    cap.release()
    clock = ManualClock()
    pipeline = load_pipeline(plate_config(), mirror=True)
    camera = HandCamera(frames, clock)
    camera.start()
    store = Store(tmp_path / "data")
    screens = Screens(1280, 720, pipeline.plate, pipeline.scene, countdown=1, when=clock.now(),
                      printing=True)
    output = printer(store, copies_per_photo=2)
    outputs = [StoreOutput(store, "http://booth.test"), output]
    station = Station(camera, Renderer(pipeline, screens),
                      PhotoMaker(pipeline, screens, outputs, retention_hours=1, clock=clock),
                      Machine(1, 600), clock=clock, out=io.StringIO(),
                      printing=print_panel(screens, outputs))
    sent = []

    def script(poll: int):
        state, _, more = output.shown()
        if poll == 1:
            return [Press()]
        if station.machine.state is not State.RESULT or state is PrintState.PRINTING:
            return [Quit()] if poll > 200000 else []
        x, y, w, h = screens.print_box
        if state is PrintState.PRINTED and not more and sent[-1:] != ["shown"]:
            sent.append("shown")  # the next step draws the line before the test quits
            return []
        event = (Tap(x + w // 2, y + h // 2) if state is PrintState.OFFER else PrintPhoto()
                 if more else Quit())
        sent.append(event)
        return [event]

    display = ScriptedDisplay(clock, script)
    try:
        assert station.run(display) == 0
        assert not output.press(), "two copies at most"
    finally:
        output.close()
        store.close()
    assert [type(e).__name__ for e in sent] == ["Tap", "PrintPhoto", "str", "Quit"]
    cups.wait_for_pdf(2)
    assert len(cups.pdfs()) == 2
    x, y, w, h = screens.print_box

    def accent_share(screen: np.ndarray) -> float:
        box = screen[y:y + h, x:x + w].astype(int)
        return float((np.abs(box - np.array(ACCENT[::-1])).sum(axis=2) < 30).mean())

    result = [s for _, s in display.shows if accent_share(s) > 0.5]
    assert result, "the Print button was shown"
    assert 0 < accent_share(display.shows[-1][1]) < 0.2, "then the line that it printed"
