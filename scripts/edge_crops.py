"""Before/after crops of the cut-out's edge at 100 %: the saved photo and the live preview of
the yellow hoodie in front of a pale office wall (the shared video intel_asl_book.mp4), with
the camera's own colours at the edge (before) and the visitor's estimated colours (after).

    python scripts/edge_crops.py [--assets ../shared/assets] [--out docs/edge-crops.png]
"""

from __future__ import annotations

import dataclasses
import sys

import cv2
import numpy as np
from common import assets_and_out, config_for, label

from booth.bench import cover
from booth.wiring import load_pipeline

CROP = 220  # pixels of the picture, shown at 2x so the edge can be seen


def _edge_crop(picture: np.ndarray, alpha: np.ndarray, box: tuple[int, int]) -> np.ndarray:
    """The CROP x CROP square around the person's left edge at shoulder height (against the
    ground, where a pale rim shows most), enlarged 2x (nearest)."""
    ys, xs = np.nonzero(alpha > 0.5)
    y = int(ys.min() + 0.55 * (ys.max() - ys.min()))
    x = int(xs[ys == y].min()) + box[0]
    y += box[1]
    h, w = picture.shape[:2]
    x0, y0 = min(max(0, x - CROP // 2), w - CROP), min(max(0, y - CROP // 3), h - CROP)
    crop = picture[y0:y0 + CROP, x0:x0 + CROP]
    return cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


def main() -> int:
    args = assets_and_out(__doc__, "edge-crops.png")
    cap = cv2.VideoCapture(str(args.assets / "video/intel_asl_book.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 50)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit("cannot read intel_asl_book.mp4; set --assets")
    frame = cover(frame, 1280, 720)
    pipeline = load_pipeline(config_for(args.assets), mirror=True)
    on = pipeline.effects
    cells = []
    for caption, effects in (("before: the camera's colours", dataclasses.replace(
            on, edge_colours=0)), ("after: the visitor's own colours", on)):
        pipeline.effects = effects
        analysis = pipeline.photo_analysis(frame)
        photo = pipeline.plate.copy()
        matte = pipeline.photo_matte(frame, analysis)
        coloured = frame if effects.edge_colours == 0 else pipeline.cutout(
            frame, analysis, matte)[0]
        drawn = pipeline.draw_photo(photo, coloured, analysis, matte, colours_estimated=True)
        preview = cv2.resize(pipeline.plate, (980, 720), interpolation=cv2.INTER_AREA)
        shown = pipeline.draw_preview(preview, frame, analysis)
        cells.append(np.hstack([
            label(_edge_crop(photo, drawn.alpha, drawn.region[:2]), f"photo, {caption}"),
            label(_edge_crop(preview, shown.alpha, shown.region[:2]), "live preview")]))
    pipeline.effects = on
    cv2.imwrite(str(args.out), np.vstack(cells))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
