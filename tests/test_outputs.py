"""What happens to a capture (booth.station.outputs): the Product a photo makes, the outputs
`[outputs] enabled` names, each given the product in its order, and the result screen made
from the link the store gives."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.clock import ManualClock
from booth.config import Config, load_config
from booth.errors import BoothError
from booth.station.loop import PhotoMaker
from booth.station.outputs import Delivered, Kind, Product
from booth.station.outputs.store import StoreOutput
from booth.station.screens import Screens
from booth.store import Store
from booth.wiring import load_pipeline, make_outputs
from tests.conftest import asset, plate_config, read_qr


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(plate_config(), mirror=True)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return cv2.resize(cv2.imread(str(asset("people/rembg_girl-2.jpg"))), (1280, 720))


def config(tmp_path: Path, outputs: str) -> Config:
    path = tmp_path / "booth.toml"
    path.write_text(f"[outputs]\n{outputs}\n")
    return load_config(path, environ={})


class Recorder:
    """An output that keeps what it was given and how many photos the store had by then."""

    def __init__(self, store: Store, gives: Delivered | None = None) -> None:
        self.store, self.gives = store, gives
        self.got: list[tuple[Product, int]] = []

    def deliver(self, product: Product) -> Delivered | None:
        self.got.append((product, self.store.count()))
        return self.gives


class Broken:
    def deliver(self, product: Product) -> None:
        raise BoothError("the printer is out of paper")


def maker_for(pipeline, outputs, clock: ManualClock) -> PhotoMaker:
    screens = Screens(1280, 720, pipeline.plate, pipeline.scene, 3, when=clock.now())
    return PhotoMaker(pipeline, screens, outputs, retention_hours=2, keep_raw=True,
                      clock=clock)


def test_the_outputs_are_the_ones_the_config_names(tmp_path: Path, store: Store):
    assert load_config(None, environ={}).outputs.enabled == ("store",)
    (output,) = make_outputs(config(tmp_path, 'enabled = ["store"]'), store,
                             "http://booth.test")
    assert isinstance(output, StoreOutput)
    assert (output.store, output.base_url) == (store, "http://booth.test")


@pytest.mark.parametrize("outputs, expected", [
    ("enabled = []", 'outputs.enabled = [] has no "store"'),
    ('enabled = ["store", "store"]', "outputs.enabled names 'store' twice"),
    ('enabled = ["store", "wall"]', "outputs.enabled names 'wall'; use some of store, printer"),
    ('enabled = ["store", "printer"]', 'outputs.enabled names "printer" but [printer] name is '
                                       "empty; set it to the CUPS queue's name"),
    ('enabled = "store"', "outputs.enabled must be a list of names"),
    ("enabled = [1]", "outputs.enabled must be a list of names"),
])
def test_a_bad_list_of_outputs_is_refused_naming_it(tmp_path: Path, outputs, expected):
    with pytest.raises(BoothError) as refused:
        config(tmp_path, outputs)
    assert expected in str(refused.value)


@pytest.mark.slow  # two photos made in full
def test_each_output_gets_the_photo_in_order_and_the_qr_code_is_the_stores_link(
        pipeline, frame, store: Store):
    clock = ManualClock()
    before = Recorder(store)
    after = Recorder(store, Delivered("http://elsewhere.test/x", clock.now(), "later"))
    outcome = maker_for(pipeline, [before, StoreOutput(store, "http://booth.test"), after],
                        clock).make(frame.copy(), pipeline.photo_analysis(frame))
    assert outcome.ok, outcome.error
    [(product, stored_before)], [(same, stored_after)] = before.got, after.got
    assert same is product and (stored_before, stored_after) == (0, 1)  # in the list's order
    assert product.kind is Kind.PHOTO
    assert product.taken_at == clock.now() and product.retention_hours == 2
    (capture,) = store.captures()
    assert capture.path.read_bytes() == product.file
    assert capture.thumb_path.read_bytes() == product.thumb
    assert cv2.imdecode(np.frombuffer(product.file, np.uint8), 1).shape == product.picture.shape
    assert cv2.imdecode(np.frombuffer(product.raw, np.uint8), 1).shape == frame.shape
    assert capture.expires_at - capture.created_at == pytest.approx(2 * 3600)
    # The first link given is the QR code's: the store's, not the later output's.
    assert outcome.link.startswith("http://booth.test/p/") and outcome.capture == capture.short_id
    assert store.resolve(outcome.link.rsplit("/", 1)[1]).id == capture.id
    decoded = read_qr(outcome.screen)
    assert decoded == outcome.link
    # An output that fails fails the capture, with its own words for the log.
    outcome = maker_for(pipeline, [StoreOutput(store, "http://booth.test"), Broken()],
                        clock).make(frame.copy(), pipeline.photo_analysis(frame))
    assert (outcome.ok, outcome.error) == (False, "the printer is out of paper")


@pytest.mark.slow  # a photo made in full
def test_without_an_output_that_gives_a_link_the_capture_fails(pipeline, frame, store: Store):
    recorder = Recorder(store)
    outcome = maker_for(pipeline, [recorder], ManualClock()).make(
        frame.copy(), pipeline.photo_analysis(frame))
    assert not outcome.ok and "no output gave the photo a link" in outcome.error
    assert len(recorder.got) == 1 and store.count() == 0
