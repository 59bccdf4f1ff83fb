"""The cut-out's quality, measured against exact truth (scripts/mask_quality.py reports it,
tests/test_mask_quality.py holds it to its figures).

The evaluation set pastes each shared person that has a reference matte into five rooms (a
bright plain wall, the Background-Matting back plate, the two office videos with their people
painted out, and a dim lamp-lit room) at webcam scale (1280x720), with lens blur, sensor noise
and JPEG; the matte it was pasted with is the exact truth. Three people are the part the cut
was tuned on, two are held out (HELD_OUT) and only ever reported.

Per picture: IoU at alpha 0.5; boundary error (mean absolute alpha error within 10 px of the
true edge); rim (the cut-out painted onto flat Mars ground against the person under the true
matte on the same ground: mean CIE76 delta E within 6 px of the true edge). For the shared
photos the rim comes from pasting them onto the bright wall at their own size. flicker() is
the live preview's edge shimmer on a video.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from booth.config import load_config
from booth.wiring import load_pipeline

BAND = 10  # boundary error: pixels either side of the true edge
RIM_BAND = 6  # rim: pixels either side of the true edge
WALL = (232, 236, 238)  # a bright plain wall, BGR
MARS = (70, 95, 125)  # flat Mars ground, BGR
HELD_OUT = ("p3m_p_bd6af989", "rembg_girl-2")
ROOMS = ("wall", "backplate", "office-book", "office-again", "dim")
WEBCAM = (1280, 720)


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    a, r = alpha > 0.5, truth > 0.5
    return float((a & r).sum() / max(1, (a | r).sum()))


def edge_band(truth: np.ndarray, width: int) -> np.ndarray:
    inside = (truth > 0.5).astype(np.uint8)
    edge = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    return cv2.dilate(edge, np.ones((2 * width + 1, 2 * width + 1), np.uint8)) > 0


def boundary_error(alpha: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(alpha - truth)[edge_band(truth, BAND)].mean())


def _on_mars(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[:, :, None].astype(np.float32)
    return colour.astype(np.float32) * a + np.float32(MARS) * (1 - a)


def _lab(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.float32) / 255, cv2.COLOR_BGR2Lab)


def rim(colour: np.ndarray, alpha: np.ndarray, true_fg: np.ndarray, truth: np.ndarray) -> float:
    """Mean delta E (CIE76) near the true edge between the cut-out (colour, alpha) painted on
    Mars ground and the person under the true matte on the same ground."""
    diff = _lab(_on_mars(colour, alpha)) - _lab(_on_mars(true_fg, truth))
    return float(np.sqrt((diff ** 2).sum(axis=2))[edge_band(truth, RIM_BAND)].mean())


@dataclass(frozen=True)
class Person:
    name: str
    photo: np.ndarray  # BGR uint8, as shared
    truth: np.ndarray  # reference matte, float32 0..1
    fg: np.ndarray  # the person's own colours (pymatting's multi-level estimate), BGR uint8


def people(assets: Path) -> list[Person]:
    from pymatting import estimate_foreground_ml

    found = []
    for ref in sorted((assets / "people" / "reference_alpha").glob("*.png")):
        photo = cv2.imread(str(next((assets / "people").glob(ref.stem + ".*"))))
        truth = cv2.imread(str(ref), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        fg = estimate_foreground_ml(photo.astype(np.float64) / 255, truth.astype(np.float64))
        found.append(Person(ref.stem, photo, truth, (fg * 255 + 0.5).astype(np.uint8)))
    return found


def paste(person: Person, room: np.ndarray, height: float, centre: float) -> tuple:
    """The person over `room` (their box `height` of the room's, centred at `centre` of its
    width; standing on its bottom if their photo cuts them off there): (image, truth, fg)."""
    ys, xs = np.nonzero(person.truth > 0.1)
    ph, pw = person.truth.shape
    rh, rw = room.shape[:2]
    cut_off = ys.max() >= ph - 3
    scale = min(height * rh / (ys.max() - ys.min() + 1), 0.9 * rw / (xs.max() - xs.min() + 1))
    tx = centre * rw - scale * (xs.min() + xs.max()) / 2
    ty = (rh if cut_off else 0.97 * rh) - scale * (ph if cut_off else ys.max())
    m = np.float32([[scale, 0, tx], [0, scale, ty]])
    warp = functools.partial(cv2.warpAffine, M=m, dsize=(rw, rh), flags=cv2.INTER_AREA
                             if scale < 1 else cv2.INTER_LINEAR)
    truth = warp(person.truth, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    fg = warp(person.fg, borderMode=cv2.BORDER_REPLICATE)
    a = truth[:, :, None]
    image = fg.astype(np.float32) * a + room.astype(np.float32) * (1 - a)
    return image, truth, fg


def _painted_out(video: Path, width: int, height: int, segmenter) -> np.ndarray:
    """An office from a shared video: its first frame with the person painted out."""
    from booth.bench import cover

    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read {video}")
    person = cv2.resize(segmenter.segment(frame), frame.shape[1::-1]) > 0.2
    hole = cv2.dilate(person.astype(np.uint8), np.ones((25, 25), np.uint8))
    return cover(cv2.inpaint(frame, hole, 9, cv2.INPAINT_TELEA), width, height)


def rooms(assets: Path, segmenter) -> dict[str, np.ndarray]:
    w, h = WEBCAM
    plate = cv2.resize(cv2.imread(str(assets / "people/bgm_0001_back_plate.png")), (w, h),
                       interpolation=cv2.INTER_AREA)
    return {"wall": np.full((h, w, 3), WALL, np.uint8), "backplate": plate,
            "office-book": _painted_out(assets / "video/intel_asl_book.mp4", w, h, segmenter),
            "office-again": _painted_out(assets / "video/intel_asl_again.mp4", w, h, segmenter),
            "dim": plate}


def webcam(image: np.ndarray, room: str, seed: int) -> np.ndarray:
    """What a webcam would deliver: lens blur, sensor noise, JPEG; a dim room is dark, warm
    (lamp light) and noisier."""
    rng = np.random.default_rng(seed)
    if room == "dim":
        image = image * np.float32([0.22, 0.27, 0.34])
    image = cv2.GaussianBlur(image, (0, 0), 0.7)
    image = image + rng.normal(0, 3.5 if room == "dim" else 2.0, image.shape).astype(np.float32)
    _, jpeg = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, 85])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def scores(colour, alpha, truth, fg) -> dict:
    return {"iou": iou(alpha, truth), "boundary": boundary_error(alpha, truth),
            "rim": rim(colour, alpha, fg, truth)}


def cutout_of(pipeline, frame: np.ndarray):
    """The saved photo's cut-out at the frame's size (booth compose --cutout-out)."""
    analysis = pipeline.photo_analysis(frame)
    return pipeline.cutout(frame, analysis, pipeline.photo_matte(frame, analysis))


def raw_of(pipeline, frame: np.ndarray):
    return frame, pipeline.segmenter.segment(frame)


def measure(assets: Path, method=cutout_of) -> list[dict]:
    """One row per picture: set ('shared', 'tune' or 'held-out'), room, photo, scores."""
    os.environ.setdefault("BOOTH_PLATE", str(assets / "scenes/sol46/PIA24542_large.jpg"))
    pipeline = load_pipeline(load_config(None), mirror=False)
    everyone = people(assets)
    rows = []
    for p in everyone:
        row = scores(*method(pipeline, p.photo), p.truth, p.fg)
        on_wall, truth, fg = paste(p, np.full_like(p.photo, WALL), 1.0, 0.5)
        on_wall = (on_wall + 0.5).astype(np.uint8)
        row["rim"] = scores(*method(pipeline, on_wall), truth, fg)["rim"]
        rows.append({"set": "shared", "room": "own", "photo": p.name, **row})
    for r, (room, background) in enumerate(rooms(assets, pipeline.segmenter).items()):
        for i, p in enumerate(everyone):
            height, centre = (0.62, 0.85, 0.95)[(i + r) % 3], (0.5, 0.4, 0.6)[(i + 2 * r) % 3]
            image, truth, fg = paste(p, background, height, centre)
            frame = webcam(image, room, seed=10 * r + i)
            if room == "dim":  # the truth colours are lit as dimly as the room
                fg = webcam(fg.astype(np.float32), room, seed=10 * r + i)
            rows.append({"set": "held-out" if p.name in HELD_OUT else "tune", "room": room,
                         "photo": p.name, **scores(*method(pipeline, frame), truth, fg)})
    return rows


def flicker(pipeline, video: Path) -> tuple[float, float]:
    """Edge shimmer in the live preview: mean absolute alpha change between consecutive
    frames over the pixels where the picture did not change, for the raw model and for the
    preview's mask (smoothed over time, stretched to alpha), at the model's size."""
    from booth.bench import cover
    from booth.vision.compositing import alpha_from_confidence

    cap = cv2.VideoCapture(str(video))
    previous, raw_steps, preview_steps, t = None, [], [], 0.0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frame = cover(frame, *WEBCAM)
        small = cv2.resize(frame, pipeline.segmenter.input_size, interpolation=cv2.INTER_LINEAR)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        raw = pipeline.segmenter.segment(small)
        t += 1 / 30
        preview = alpha_from_confidence(pipeline.preview_analysis(frame, t).people.mask)
        if previous is not None:
            still = cv2.blur(np.abs(grey - previous[0]), (5, 5)) < 3
            raw_steps.append(np.abs(raw - previous[1])[still].mean())
            preview_steps.append(np.abs(preview - previous[2])[still].mean())
        previous = (grey, raw, preview)
    cap.release()
    return float(np.mean(raw_steps)), float(np.mean(preview_steps))


def summary(rows: list[dict]) -> dict[str, dict[str, float]]:
    sets = {}
    for name in ("shared", "tune", "held-out"):
        chosen = [r for r in rows if r["set"] == name]
        sets[name] = {k: float(np.mean([r[k] for r in chosen])) for k in ("iou", "boundary", "rim")}
        sets[name]["worst_iou"] = float(min(r["iou"] for r in chosen))
    return sets
