"""The cut-out's quality, measured against truth (scripts/mask_quality.py reports it,
tests/test_mask_quality.py holds it to its figures), for several cut-outs side by side (the
raw MediaPipe model, MODNet alone, the booth's saved photo).

Two sets. **Issue 8's** pastes each shared person that has a reference matte into five rooms (a
bright plain wall, the Background-Matting back plate, the two office videos with their people
painted out, and a dim lamp-lit room) at webcam scale (1280x720), with lens blur, sensor noise
and JPEG; the matte it was pasted with is the exact truth. Three people are the part the cut
was tuned on, two are held out (HELD_OUT) and only ever reported.

**DAVIS** (../shared/assets/devset/davis, see davis()): 12 sequences of real people outdoors
with hand-drawn truth, people the project has never seen, split by sequence into a tuning part
(DAVIS_TUNE) and a held-out part (DAVIS_HELD_OUT) that nothing is ever tuned on. Each frame
is cropped and scaled as a booth's webcam would see the annotated person (davis_view()).

Per picture: IoU at alpha 0.5; boundary error (mean absolute alpha error within 10 px of the
true edge); rim (the cut-out painted onto flat Mars ground against the person under the true
matte on the same ground: mean CIE76 delta E within 6 px of the true edge). For the shared
photos the rim comes from pasting them onto the bright wall at their own size. flicker() is
the live preview's edge shimmer on a video. Interior opacity (issue 20): the share of the
person's inside (the truth at 0.5, eroded by 2 % of the person's height) where alpha >= 0.95;
a solid body scores 1.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Iterator
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
INTERIOR = 0.02  # interior opacity: the truth eroded by this share of the person's height...
OPAQUE = 0.95  # ...must have at least this alpha
DAVIS = "devset/davis"
# The DAVIS split, by sequence and fixed: the held-out part has the crowds behind a dancer
# (dance-jump, dance-twirl) and what looked hardest: a body upside down (breakdance-flare),
# a stick and a goal held as part of the person (hockey), kite and paraglider lines
# (kite-walk, paragliding-launch). Nothing is tuned on it.
DAVIS_TUNE = ("hike", "lucia", "rollerblade", "stroller", "swing", "tennis")
DAVIS_HELD_OUT = ("breakdance-flare", "dance-jump", "dance-twirl", "hockey", "kite-walk",
                  "paragliding-launch")
# lucia and dance-twirl are shared complete (70 and 90 frames); every 5th is measured, as the
# other sequences are shared.
DAVIS_EVERY = {"lucia": 5, "dance-twirl": 5}
DAVIS_PAD = 0.15  # the webcam's view round the person's box, a share of its size each side
DAVIS_BODY = 9  # px at 854x480: thinner parts of the truth do not widen the person's box


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


def interior_opacity(alpha: np.ndarray, truth: np.ndarray) -> float:
    """The share of the person's inside (truth at 0.5 eroded by INTERIOR of the person's
    height) where the cut-out is opaque (alpha >= OPAQUE): 1 for a solid body."""
    inside = (truth > 0.5).astype(np.uint8)
    rows = np.nonzero(inside.any(axis=1))[0]
    radius = max(1, round(INTERIOR * (rows[-1] - rows[0] + 1)))
    core = cv2.erode(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                       (2 * radius + 1, 2 * radius + 1))) > 0
    return float((alpha[core] >= OPAQUE).mean()) if core.any() else 1.0


def scores(colour, alpha, truth, fg) -> dict:
    """A picture's scores; its rim only where the person's own colours are known (fg)."""
    return {"iou": iou(alpha, truth), "boundary": boundary_error(alpha, truth),
            "rim": None if fg is None else rim(colour, alpha, fg, truth),
            "opaque": interior_opacity(alpha, truth)}


def cutout_of(pipeline, frame: np.ndarray):
    """The saved photo's cut-out at the frame's size (booth compose --cutout-out)."""
    analysis = pipeline.photo_analysis(frame)
    return pipeline.cutout(frame, analysis, pipeline.photo_matte(frame, analysis))


def raw_of(pipeline, frame: np.ndarray):
    """The raw landscape model on the whole picture, the camera's own colours."""
    return frame, pipeline.segmenter.segment(frame)


def modnet_of(model):
    """MODNet alone (a booth.vision.modnet.Modnet) on the whole picture, camera colours."""
    return lambda pipeline, frame: (frame, model.alpha(frame))


def cutouts(modnet: Path | None) -> dict:
    """The cut-outs compared side by side: the raw model, MODNet alone (when its file is
    given) and the booth's saved photo."""
    from booth.vision.modnet import Modnet

    found = {"raw": raw_of}
    if modnet is not None:
        found["modnet"] = modnet_of(Modnet(modnet))
    found["booth"] = cutout_of
    return found


@dataclass(frozen=True)
class Picture:
    """One picture of an evaluation set with its truth (float32 0..1 at its size)."""

    set: str  # 'shared', 'tune', 'held-out', 'davis-tune' or 'davis-held-out'
    room: str  # the room it was pasted into, or the DAVIS sequence
    photo: str  # the person pasted, or the DAVIS frame
    frame: np.ndarray  # BGR uint8
    truth: np.ndarray
    fg: np.ndarray | None = None  # the person's own colours (None: no rim measured)
    # The shared photos' rim is measured on them pasted onto the bright wall: (frame, truth, fg).
    rim_on: tuple | None = None


def issue8(assets: Path, segmenter) -> Iterator[Picture]:
    """Issue 8's set: the shared five as they are, then each pasted into every room."""
    everyone = people(assets)
    for p in everyone:
        on_wall, truth, fg = paste(p, np.full_like(p.photo, WALL), 1.0, 0.5)
        yield Picture("shared", "own", p.name, p.photo, p.truth, p.fg,
                      ((on_wall + 0.5).astype(np.uint8), truth, fg))
    for r, (room, background) in enumerate(rooms(assets, segmenter).items()):
        for i, p in enumerate(everyone):
            height, centre = (0.62, 0.85, 0.95)[(i + r) % 3], (0.5, 0.4, 0.6)[(i + 2 * r) % 3]
            image, truth, fg = paste(p, background, height, centre)
            frame = webcam(image, room, seed=10 * r + i)
            if room == "dim":  # the truth colours are lit as dimly as the room
                fg = webcam(fg.astype(np.float32), room, seed=10 * r + i)
            yield Picture("held-out" if p.name in HELD_OUT else "tune", room, p.name, frame,
                          truth, fg)


def body_box(truth: np.ndarray) -> tuple[int, int, int, int]:
    """The annotated person's box (x0, y0, x1, y1, exclusive) in a DAVIS truth (uint8 0/255):
    the truth opened by DAVIS_BODY px first, so that kite and paraglider lines, swing chains
    and sticks do not stretch it (the whole truth if nothing is left)."""
    inside = (truth > 127).astype(np.uint8)
    body = cv2.morphologyEx(inside, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (DAVIS_BODY, DAVIS_BODY)))
    ys, xs = np.nonzero(body if body.any() else inside)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def davis_crop(width: int, height: int, box: tuple[int, int, int, int]) -> tuple:
    """The part of a DAVIS frame (width x height) a booth's webcam would show of the person in
    `box`: 16:9 (the webcam's aspect), the box padded by DAVIS_PAD of its size on every side
    (whichever of its height or width needs the taller crop), centred on the box and moved
    inside the frame, at most the whole frame. (x0, y0, x1, y1), exclusive."""
    x0, y0, x1, y1 = box
    aspect = WEBCAM[0] / WEBCAM[1]
    grow = 1 + 2 * DAVIS_PAD
    ch = min(round(max((y1 - y0) * grow, (x1 - x0) * grow / aspect)), height,
             int(width / aspect))
    cw = round(ch * aspect)
    left = int(np.clip(round((x0 + x1 - cw) / 2), 0, width - cw))
    top = int(np.clip(round((y0 + y1 - ch) / 2), 0, height - ch))
    return left, top, left + cw, top + ch


def davis_view(image: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A DAVIS frame (BGR) and its truth (uint8 0/255) as a booth's webcam sees the person:
    davis_crop() scaled to WEBCAM (bicubic; the truth bilinear, then cut at half, so it stays
    0/1). Bystanders inside the crop stay in it: the truth leaves them out, so a cut-out
    that keeps them is wrong."""
    x0, y0, x1, y1 = davis_crop(image.shape[1], image.shape[0], body_box(truth))
    frame = cv2.resize(image[y0:y1, x0:x1], WEBCAM, interpolation=cv2.INTER_CUBIC)
    scaled = cv2.resize(truth[y0:y1, x0:x1].astype(np.float32) / 255, WEBCAM,
                        interpolation=cv2.INTER_LINEAR)
    return frame, (scaled > 0.5).astype(np.float32)


def davis_frames(assets: Path, sequence: str) -> list[Path]:
    """The frames of a DAVIS sequence that are measured (every DAVIS_EVERY-th)."""
    frames = sorted((assets / DAVIS / sequence).glob("*.jpg"))
    return frames[::DAVIS_EVERY.get(sequence, 1)]


def davis(assets: Path) -> Iterator[Picture]:
    """The DAVIS set: tuning part first, then the held-out part."""
    for part, sequences in (("davis-tune", DAVIS_TUNE), ("davis-held-out", DAVIS_HELD_OUT)):
        for sequence in sequences:
            for jpg in davis_frames(assets, sequence):
                truth = cv2.imread(str(jpg.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
                frame, truth = davis_view(cv2.imread(str(jpg)), truth)
                yield Picture(part, sequence, jpg.stem, frame, truth)


def refusals(assets: Path, pipeline=None) -> list[dict]:
    """Whether the saved photo's second look (booth.vision.presence) confirms the annotated
    person, on every measured DAVIS frame (davis_frames, both parts), seen as davis_view
    sees it. One row per frame: set, sequence, frame; `confirmed`: the photo keeps at least
    half of what the person model finds of them (False: it refuses them, nobody, or keeps
    someone else); `presence_ms`: the second look's time on this frame. `pipeline`: the
    booth's (default: loaded from the default configuration, without mirroring)."""
    from booth.vision.placement import find_people
    from booth.vision.segmentation import exposed

    if pipeline is None:
        os.environ.setdefault("BOOTH_PLATE", str(assets / "scenes/sol46/PIA24542_large.jpg"))
        pipeline = load_pipeline(load_config(None), mirror=False)
    rows = []
    for pic in davis(assets):
        analysis = pipeline.photo_analysis(pic.frame)
        small = cv2.resize(pic.frame, pipeline.segmenter.input_size,
                           interpolation=cv2.INTER_LINEAR)
        found = find_people(pipeline.segmenter.segment(exposed(small)),
                            pipeline.min_person_fraction).mask > 0.5
        truth = cv2.resize(pic.truth, found.shape[::-1], interpolation=cv2.INTER_AREA) > 0.5
        kept = analysis.people.mask > 0.5
        rows.append({"set": pic.set, "sequence": pic.room, "frame": pic.photo,
                     "confirmed": bool(analysis.people.found and np.count_nonzero(
                         kept & truth) >= 0.5 * np.count_nonzero(found & truth)),
                     "presence_ms": 1000 * pipeline.timings["presence"]})
    return rows


def measure(assets: Path, methods: dict | None = None,
            sets: tuple[str, ...] = ("issue8", "davis")) -> list[dict]:
    """One row per picture: set, room, photo and, per cut-out in `methods` (name: function
    (pipeline, frame) -> (colours, alpha); default the booth's alone), its scores."""
    methods = methods or {"booth": cutout_of}
    os.environ.setdefault("BOOTH_PLATE", str(assets / "scenes/sol46/PIA24542_large.jpg"))
    pipeline = load_pipeline(load_config(None), mirror=False)
    pictures = itertools.chain(issue8(assets, pipeline.segmenter) if "issue8" in sets else (),
                               davis(assets) if "davis" in sets else ())
    rows = []
    for pic in pictures:
        row = {"set": pic.set, "room": pic.room, "photo": pic.photo}
        for name, method in methods.items():
            row[name] = scores(*method(pipeline, pic.frame), pic.truth, pic.fg)
            if pic.rim_on is not None:
                frame, truth, fg = pic.rim_on
                row[name]["rim"] = rim(*method(pipeline, frame), fg, truth)
        rows.append(row)
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


def summary(rows: list[dict]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per set (in the order met) and cut-out: mean and worst IoU, mean boundary error, mean
    rim (None where not measured), mean and worst interior opacity."""
    sets: dict = {}
    for row in rows:
        sets.setdefault(row["set"], []).append(row)
    methods = [k for k in rows[0] if k not in ("set", "room", "photo")] if rows else []
    return {name: {m: _summary([r[m] for r in chosen]) for m in methods}
            for name, chosen in sets.items()}


def _summary(scored: list[dict]) -> dict[str, float | None]:
    rims = [s["rim"] for s in scored]
    return {"iou": float(np.mean([s["iou"] for s in scored])),
            "worst_iou": float(min(s["iou"] for s in scored)),
            "boundary": float(np.mean([s["boundary"] for s in scored])),
            "rim": None if None in rims else float(np.mean(rims)),
            "opaque": float(np.mean([s["opaque"] for s in scored])),
            "worst_opaque": float(min(s["opaque"] for s in scored))}
