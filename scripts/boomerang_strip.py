"""A boomerang made by the station from a shared video, and a strip of its frames.

The station as `booth run` assembles it, on an injected clock stepped at the camera's 30 fps
(every video frame is taken, whatever the machine's load), records a boomerang of the
visitor in the shared video; its output here writes the clip's MP4 and poster into --out,
and the script adds a strip of --frames frames from the clip's forward half, side by side
(for the README), and one frame at 100 % (to look at the edges).

    python scripts/boomerang_strip.py --out docs/images
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import datetime, timedelta
from pathlib import Path

from common import PLATE, VIDEO, add_assets_argument, config_for, missing_media


class Files:
    """An output that writes what it is given into a folder."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def deliver(self, product):
        from booth.station.outputs import Delivered

        (self.out / "boomerang.mp4").write_bytes(product.file)
        (self.out / "boomerang-poster.jpg").write_bytes(product.poster)
        return Delivered("http://booth.example/p/boomerang", datetime.now() + timedelta(hours=1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("boomerang"), help="folder for the files")
    ap.add_argument("--frames", type=int, default=5, help="frames in the strip (default: 5)")
    ap.add_argument("--height", type=int, default=300, help="the strip's height (default: 300)")
    add_assets_argument(ap)
    args = ap.parse_args(argv)
    if missing_media("boomerang_strip", args.assets, PLATE, VIDEO):
        return 2

    import time

    import av
    import cv2
    import numpy as np

    from booth.bench import LoopingVideo
    from booth.clock import ManualClock
    from booth.station.machine import Machine, State
    from booth.station.outputs import Kind
    from booth.store import Store
    from booth.wiring import assemble_station, load_pipeline

    args.out.mkdir(parents=True, exist_ok=True)
    cfg = config_for(args.assets, args.out / ".cache")
    pipeline = load_pipeline(cfg, mirror=True)
    clock = ManualClock(wall=datetime.now())  # the caption band dated today
    video = LoopingVideo(str(args.assets / VIDEO), cfg.camera.width, cfg.camera.height)
    store = Store(args.out / ".data")  # assemble_station's own output is replaced below
    try:
        station = assemble_station(cfg, pipeline, video, store, "http://booth.example",
                                   machine=Machine(1, 30), clock=clock, out=io.StringIO())
        station.maker.outputs = [Files(args.out)]
        with station:
            video.start()
            # Pressed as the video starts again: its 1 s countdown, then 2.5 s of the video's
            # frames in their order (no jump back to its start in the clip).
            press = int(video.cap.get(cv2.CAP_PROP_FRAME_COUNT))
            for n in range(press + 30 + 80):
                if n == press:
                    station.press(Kind.CLIP)
                video.advance()
                clock.advance(1 / 30)
                station.step()
            while station.machine.state is State.PROCESSING:  # the clip, in real time
                clock.advance(1 / 30)
                station.step()
                time.sleep(0.01)
            if station.machine.state is not State.RESULT:
                print(f"boomerang_strip: no clip ({station.machine.state.value}: "
                      f"{station.outcome and station.outcome.error})", file=sys.stderr)
                return 1
    finally:
        video.close()
        store.close()

    with av.open(str(args.out / "boomerang.mp4")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    forward = frames[:len(frames) // 2 + 1]
    picks = [forward[round(i * (len(forward) - 1) / (args.frames - 1))]
             for i in range(args.frames)]
    h, w = picks[0].shape[:2]
    width = round(w * args.height / h)
    gap = np.full((args.height, 6, 3), 255, np.uint8)
    strip = [cv2.resize(f, (width, args.height), interpolation=cv2.INTER_AREA) for f in picks]
    row = np.hstack([x for f in strip for x in (f, gap)][:-1])
    cv2.imwrite(str(args.out / "boomerang-strip.jpg"), row, [cv2.IMWRITE_JPEG_QUALITY, 88])
    cv2.imwrite(str(args.out / "boomerang-frame.png"), forward[len(forward) // 2])
    for name in ("boomerang.mp4", "boomerang-poster.jpg", "boomerang-strip.jpg",
                 "boomerang-frame.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
