"""Scene definitions: overlays/<name>/scene.toml parsed into plate-relative geometry."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from booth.errors import BoothError
from booth.resources import data_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Effects:
    """Per-scene settings ([effects] in scene.toml); a strength of 0 switches one off."""

    refine: bool = True  # second, closer segmentation + guided filter for the saved photo
    edge_colours: float = 0.03  # the visitor's own colours at soft edges (blur-fusion radius,
    # a share of the picture's height); 0: the camera's colours, room and all
    temporal: float = 0.9  # preview: weight of the previous mask where nothing moved
    colour: float = 0.35  # colour statistics transfer toward the plate
    light_wrap: float = 0.35  # how much of the plate's light spills over the edges
    light_wrap_width: float = 0.012  # of the canvas height
    shadow: float = 0.45  # darkness of the contact shadow under visible feet
    shadow_height: float = 0.025  # of the canvas height


@dataclass(frozen=True)
class Box:
    """A rectangle in plate fractions: x0, y0 (top left) to x1, y1."""

    x0: float
    y0: float
    x1: float
    y1: float

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (round(self.x0 * width), round(self.y0 * height),
                round(self.x1 * width), round(self.y1 * height))


@dataclass(frozen=True)
class Stage:
    left: float
    right: float
    top: float
    ground: float
    bottom: float


@dataclass(frozen=True)
class Plate:
    file: str
    url: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class Scene:
    name: str
    title: str
    caption: str
    credit: str
    plate: Plate
    stage: Stage
    keep_visible: tuple[tuple[str, Box], ...]
    effects: Effects = Effects()


def _effects(path: Path, table: object) -> Effects:
    """[effects]: each key a number (0 switches an effect off), refine true or false."""
    if not isinstance(table, dict):
        raise BoothError(f"{path}: [effects] must be a table of settings")
    known = {f.name: f for f in dataclasses.fields(Effects)}
    values = {}
    for key, value in table.items():
        if key not in known:
            raise BoothError(f"{path}: unknown effect {key!r}; known: {', '.join(known)}")
        if key == "refine":
            if not isinstance(value, bool):
                raise BoothError(f"{path}: effects.refine must be true or false")
            values[key] = value
        else:
            values[key] = _frac(f"{path}: effects.{key}", value)
    return Effects(**values)


def _frac(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise BoothError(f"{where} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _parse(path: Path, data: dict) -> Scene:
    try:
        p, s = data["plate"], data["stage"]
        plate = Plate(str(p["file"]), str(p["url"]), str(p["sha256"]).lower(),
                      int(p["width"]), int(p["height"]))
        stage = Stage(*(_frac(f"{path}: stage.{k}", s[k])
                        for k in ("left", "right", "top", "ground", "bottom")))
        keep = []
        for i, item in enumerate(data.get("keep_visible", [])):
            box = item["box"]
            if not isinstance(box, list) or len(box) != 4:
                raise BoothError(f"{path}: keep_visible[{i}].box must be [x0, y0, x1, y1]")
            keep.append((str(item.get("name", f"region {i}")),
                         Box(*(_frac(f"{path}: keep_visible[{i}].box", v) for v in box))))
        scene = Scene(str(data["name"]), str(data.get("title", "")), str(data["caption"]),
                      str(data["credit"]), plate, stage, tuple(keep),
                      _effects(path, data.get("effects", {})))
    except KeyError as exc:
        raise BoothError(f"scene file {path} lacks the setting {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise BoothError(f"scene file {path} has a bad value: {exc}") from None
    if not (stage.left < stage.right and stage.top < stage.ground <= stage.bottom):
        raise BoothError(f"{path}: stage needs left < right and top < ground <= bottom")
    if len(plate.sha256) != 64 or not all(c in "0123456789abcdef" for c in plate.sha256):
        raise BoothError(f"{path}: plate.sha256 must be 64 hex digits")
    return scene


def scene_file(name: str) -> Path:
    """A scene name (a folder under overlays/) or a path to a scene.toml."""
    candidate = Path(name)
    if candidate.suffix == ".toml":
        return candidate
    return data_dir("overlays") / name / "scene.toml"


def load_scene(name: str) -> Scene:
    path = scene_file(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = sorted(p.parent.name for p in data_dir("overlays").glob("*/scene.toml"))
        raise BoothError(f"no scene {name!r} ({path} is missing); known scenes: "
                         f"{', '.join(known)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BoothError(f"scene file {path} cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoothError(f"scene file {path} is not valid TOML: {exc}") from None
    return _parse(path, data)
