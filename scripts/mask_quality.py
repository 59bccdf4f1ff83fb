"""How good the saved photo's cut-out is, beside the raw MediaPipe model and MODNet alone, on
issue 8's evaluation set and on DAVIS's real people (devtools/quality.py describes the sets,
the crop and the measures):

    python scripts/mask_quality.py [--assets ../shared/assets] [--json]   # Markdown tables
    python scripts/mask_quality.py --sets davis   # one set only (issue8, davis)
    python scripts/mask_quality.py --flicker      # the live preview's edge shimmer, per video
    python scripts/mask_quality.py --refusals     # DAVIS people the photo's pose check refuses

MODNet's column needs its model file: --modnet PATH, or $BOOTH_MODNET (without either it is
left out, and said so).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from common import PLATE, add_assets_argument

from booth.config import load_config
from booth.wiring import load_pipeline
from devtools.quality import cutouts, flicker, measure, refusals, summary

NAMES = {"raw": "raw model", "modnet": "MODNet alone", "booth": "the booth's"}
MEASURES = (("iou", "mean IoU", "{:.3f}"), ("worst_iou", "worst IoU", "{:.3f}"),
            ("boundary", "boundary error", "{:.3f}"), ("rim", "rim delta E", "{:.2f}"),
            ("opaque", "interior opaque (mean)", "{:.3f}"),
            ("worst_opaque", "interior opaque (worst)", "{:.3f}"))


def _cell(values: list, form: str) -> str:
    return " / ".join("-" if v is None else form.format(v) for v in values)


def report(rows: list[dict], sets: dict, methods: list[str]) -> None:
    """The Markdown tables: every picture, then each set."""
    names = " / ".join(NAMES.get(m, m) for m in methods)
    print(f"Each cell: {names}.\n")
    print("| set | room or sequence | photo | IoU | boundary error | interior opaque | "
          "rim delta E |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [_cell([r[m][k] for m in methods], form) for k, form in
                 (("iou", "{:.3f}"), ("boundary", "{:.3f}"), ("opaque", "{:.3f}"),
                  ("rim", "{:.2f}"))]
        print(f"| {r['set']} | {r['room']} | {r['photo']} | {' | '.join(cells)} |")
    for name, s in sets.items():
        count = sum(r["set"] == name for r in rows)
        print(f"\n| {name} ({count} pictures) | {' | '.join(NAMES.get(m, m) for m in methods)} |")
        print("|---|" + "---:|" * len(methods))
        for key, label, form in MEASURES:
            print(f"| {label} | " + " | ".join(_cell([s[m][key]], form) for m in methods)
                  + " |")


def report_refusals(rows: list[dict]) -> None:
    """The Markdown table of refusals: per DAVIS sequence, then per part."""
    print("| part | sequence | frames | confirmed | refused frames | presence ms (median / max) |")
    print("|---|---|---:|---:|---|---:|")
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["set"], r["sequence"]), []).append(r)
    for r in rows:
        groups.setdefault((r["set"], "all"), []).append(r)
    for (part, sequence), chosen in groups.items():
        refused = [r["frame"] for r in chosen if not r["confirmed"]]
        ms = [r["presence_ms"] for r in chosen]
        print(f"| {part} | {sequence} | {len(chosen)} | {len(chosen) - len(refused)} | "
              f"{' '.join(refused) if sequence != 'all' else len(refused)} | "
              f"{np.median(ms):.0f} / {max(ms):.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_assets_argument(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sets", default="issue8,davis",
                        help="comma-separated: issue8, davis (default both)")
    parser.add_argument("--modnet", type=Path, default=os.environ.get("BOOTH_MODNET") or None,
                        help="MODNet's model file (default: $BOOTH_MODNET)")
    parser.add_argument("--flicker", action="store_true",
                        help="measure the preview's edge shimmer on the shared videos instead")
    parser.add_argument("--refusals", action="store_true",
                        help="whether the photo's pose check confirms each DAVIS person instead")
    args = parser.parse_args()
    if args.refusals:
        rows = refusals(args.assets)
        if args.json:
            print(json.dumps(rows))
        else:
            report_refusals(rows)
        return 0
    if args.flicker:
        os.environ.setdefault("BOOTH_PLATE", str(args.assets / PLATE))
        for video in sorted((args.assets / "video").glob("*.mp4")):
            raw, preview = flicker(load_pipeline(load_config(None), mirror=False), video)
            print(f"{video.name}: raw model {raw:.5f}, preview {preview:.5f} "
                  f"({preview / raw:.2f}x)")
        return 0
    if args.modnet is None:
        print("mask_quality: MODNet left out (pass --modnet or set BOOTH_MODNET)",
              file=sys.stderr)
    methods = cutouts(args.modnet)
    rows = measure(args.assets, methods, tuple(args.sets.split(",")))
    sets = summary(rows)
    if args.json:
        print(json.dumps({"pictures": rows, "sets": sets}))
        return 0
    report(rows, sets, list(methods))
    return 0


if __name__ == "__main__":
    sys.exit(main())
