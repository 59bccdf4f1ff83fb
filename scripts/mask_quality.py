"""How good the saved photo's cut-out is, on the shared photos and on an evaluation set with
exact truth built from them (devtools/quality.py describes the set and the measures):

    python scripts/mask_quality.py [--assets ../shared/assets] [--json]   # a Markdown table
    python scripts/mask_quality.py --raw       # the raw landscape model, the baseline to beat
    python scripts/mask_quality.py --flicker   # the live preview's edge shimmer, per video
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from common import PLATE, add_assets_argument

from booth.config import load_config
from booth.wiring import load_pipeline
from devtools.quality import cutout_of, flicker, measure, raw_of, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_assets_argument(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--raw", action="store_true", help="score the raw model instead")
    parser.add_argument("--flicker", action="store_true",
                        help="measure the preview's edge shimmer on the shared videos instead")
    args = parser.parse_args()
    if args.flicker:
        os.environ.setdefault("BOOTH_PLATE", str(args.assets / PLATE))
        for video in sorted((args.assets / "video").glob("*.mp4")):
            raw, preview = flicker(load_pipeline(load_config(None), mirror=False), video)
            print(f"{video.name}: raw model {raw:.5f}, preview {preview:.5f} "
                  f"({preview / raw:.2f}x)")
        return 0
    rows = measure(args.assets, raw_of if args.raw else cutout_of)
    sets = summary(rows)
    if args.json:
        print(json.dumps({"pictures": rows, "sets": sets}))
        return 0
    print("| set | room | photo | IoU | boundary error | rim delta E |")
    print("|---|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['set']} | {r['room']} | {r['photo']} | {r['iou']:.3f} | "
              f"{r['boundary']:.3f} | {r['rim']:.2f} |")
    print("\n| set | mean IoU | worst IoU | boundary error | rim delta E |")
    print("|---|---:|---:|---:|---:|")
    for name, s in sets.items():
        print(f"| {name} | {s['iou']:.3f} | {s['worst_iou']:.3f} | {s['boundary']:.3f} | "
              f"{s['rim']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
