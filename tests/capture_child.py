"""A station's capture path in a tight loop, for tests/test_faults_storage.py to SIGKILL.

    python tests/capture_child.py DATA_DIR VIDEO PLATE FIRST_FRAME

Opens the store as the station does (its start-up sweep runs first), loads the pipeline once,
then makes photos from distinct frames of VIDEO (FIRST_FRAME, FIRST_FRAME + 2, ...) exactly as
the station's photo worker does: PhotoMaker.make (final composite with refinement, caption
band, JPEG encodes, Store.publish, link, QR code, result screen). It prints one line per step
so the parent can aim its kill:

    ready               pipeline loaded, about to make the first photo
    publishing          Store.publish is about to run
    published           Store.publish returned (the row is committed)
    saved <link>        the result screen with this link's QR code exists
    done                out of frames; waits to be killed

Each frame is used once, so no two photos of one data dir are the same picture.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2

from booth.config import load_config
from booth.station.loop import PhotoMaker
from booth.station.outputs.store import StoreOutput
from booth.station.screens import Screens
from booth.store import Store
from booth.wiring import load_pipeline

FRAMES = 15
STEP = 2


def main(argv: list[str]) -> int:
    data, video, plate, first = Path(argv[0]), argv[1], argv[2], int(argv[3])
    store = Store(data)
    cfg = load_config(None)  # BOOTH_MODNET as the test sets it
    cfg.scene.plate = plate
    pipeline = load_pipeline(cfg, mirror=True)
    screens = Screens(1280, 720, pipeline.plate, pipeline.scene, 1)
    maker = PhotoMaker(pipeline, screens, [StoreOutput(store, "http://booth.test")],
                       retention_hours=1)
    cap = cv2.VideoCapture(video)
    for _ in range(first):  # decode up to FIRST_FRAME (seeking an mp4 may land elsewhere)
        cap.grab()
    frames = []
    while len(frames) < FRAMES:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
        for _ in range(STEP - 1):
            cap.grab()
    cap.release()
    if not frames:
        print(f"no frames at {first} in {video}", file=sys.stderr)
        return 2

    publish = store.publish

    def announced(*args, **kwargs):
        print("publishing", flush=True)
        capture = publish(*args, **kwargs)
        print("published", flush=True)
        return capture

    store.publish = announced  # the real publish runs; the parent only learns when
    print("ready", flush=True)
    for frame in frames:
        outcome = maker.make(frame, pipeline.preview_analysis(frame, time.monotonic()))
        if not outcome.ok:
            print(f"failed {outcome.error}", flush=True)
            return 1
        print(f"saved {outcome.link}", flush=True)
    print("done", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
