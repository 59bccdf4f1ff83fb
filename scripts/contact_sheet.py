"""A side-by-side sheet per picture: raw model | refined cut-out | final composite.

Every shared photo and a few frames of each shared video, so anyone can look at the cut-out:

    python scripts/contact_sheet.py [--assets ../shared/assets] [--out sheet.jpg]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from common import assets_and_out, config_for, label

from booth.bench import cover
from booth.wiring import load_pipeline

ROW_H = 300


def _grey(alpha: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((np.clip(alpha, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _fit(image: np.ndarray, height: int = ROW_H) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w * height / h), height), interpolation=cv2.INTER_AREA)


def pictures(assets: Path) -> list[tuple[str, np.ndarray]]:
    found = [(p.name, cv2.imread(str(p), cv2.IMREAD_COLOR))
             for p in sorted((assets / "people").glob("*.*"))
             if p.suffix in (".jpg", ".png") and "back_plate" not in p.name]
    for video in sorted((assets / "video").glob("*.mp4")):
        cap = cv2.VideoCapture(str(video))
        for index in (10, 50):
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            if ok:
                found.append((f"{video.stem} #{index}", cover(frame, 1280, 720)))
        cap.release()
    return found


def main() -> int:
    args = assets_and_out(__doc__, "contact-sheet.jpg")
    pipeline = load_pipeline(config_for(args.assets), mirror=True)
    rows = []
    for name, frame in pictures(args.assets):
        analysis = pipeline.photo_analysis(frame)
        raw = pipeline.segmenter.segment(frame)
        matte = pipeline.photo_matte(frame, analysis)
        refined = pipeline.photo_alpha(frame, analysis, matte)
        final = pipeline.final(frame, analysis, matte)
        cells = [label(_fit(_grey(raw)), f"{name}: raw model", 18),
                 label(_fit(_grey(refined)), "refined", 18),
                 label(_fit(final), "composite", 18)]
        row = np.hstack(cells)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1],
                                          cv2.BORDER_CONSTANT) for r in rows])
    cv2.imwrite(str(args.out), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
