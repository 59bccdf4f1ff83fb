"""Mask quality on the shared photos against their reference mattes.

For each photo in <assets>/people/ with a reference_alpha/<name>.png: IoU at alpha 0.5, and
the boundary error (mean absolute alpha error within 10 px of the reference edge), for the
raw landscape model (the whole photo given to MediaPipe) and for the saved photo's cut-out
(booth.pipeline: a second, closer pass and a guided filter).

    python scripts/mask_quality.py [--assets ../shared/assets] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from booth.config import load_config
from booth.wiring import load_pipeline

BAND = 10  # pixels either side of the reference edge


def iou(alpha: np.ndarray, reference: np.ndarray) -> float:
    a, r = alpha > 0.5, reference > 0.5
    return float((a & r).sum() / max(1, (a | r).sum()))


def boundary_error(alpha: np.ndarray, reference: np.ndarray) -> float:
    inside = (reference > 0.5).astype(np.uint8)
    edge = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    band = cv2.dilate(edge, np.ones((2 * BAND + 1, 2 * BAND + 1), np.uint8)) > 0
    return float(np.abs(alpha - reference)[band].mean())


def measure(assets: Path) -> list[dict]:
    os.environ.setdefault("BOOTH_PLATE", str(assets / "scenes/sol46/PIA24542_large.jpg"))
    pipeline = load_pipeline(load_config(None), mirror=False)
    rows = []
    for ref_path in sorted((assets / "people" / "reference_alpha").glob("*.png")):
        photo = next(p for p in (assets / "people").glob(ref_path.stem + ".*"))
        frame = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        reference = cv2.imread(str(ref_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        raw = pipeline.segmenter.segment(frame)
        refined = pipeline.photo_alpha(frame, pipeline.analyse(frame),
                                       pipeline.photo_matte(frame, pipeline.analyse(frame)))
        rows.append({"photo": photo.name,
                     "raw_iou": iou(raw, reference), "raw_boundary": boundary_error(raw, reference),
                     "iou": iou(refined, reference),
                     "boundary": boundary_error(refined, reference)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path(
        os.environ.get("BOOTH_ASSETS", Path(__file__).resolve().parents[2] / "shared/assets")))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.assets)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "photo"}
    if args.json:
        print(json.dumps({"photos": rows, "mean": mean}))
        return 0
    print("| photo | raw IoU | raw boundary error | refined IoU | refined boundary error |")
    print("|---|---:|---:|---:|---:|")
    for r in rows + [{"photo": "**mean**", **mean}]:
        print(f"| {r['photo']} | {r['raw_iou']:.3f} | {r['raw_boundary']:.3f} | "
              f"{r['iou']:.3f} | {r['boundary']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
