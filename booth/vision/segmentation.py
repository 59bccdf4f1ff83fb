"""Person segmentation with MediaPipe's selfie model, loaded from the installed wheel: the
landscape model for both paths' analysis of a frame, the square one for the photo's closer
look (booth.vision.refine).

mediapipe 0.10.21 ships the model files; nothing is downloaded at run time.
"""

from __future__ import annotations

import math
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np

from booth.errors import BoothError
from booth.quiet import quiet_stderr

_MODELS = {
    "landscape": "selfie_segmentation_landscape.tflite",  # 256x144 input, best on 16:9
    "square": "selfie_segmentation.tflite",  # 256x256 input, best on tight crops
}
_INPUT_SIZE = {"landscape": (256, 144), "square": (256, 256)}


def model_path(model: str) -> Path:
    """The .tflite file for 'landscape', 'square', or a path given by the operator."""
    if model in _MODELS:
        import importlib.util

        spec = importlib.util.find_spec("mediapipe")
        if spec is None or not spec.submodule_search_locations:
            raise BoothError("mediapipe is not installed; run: pip install mediapipe==0.10.21")
        root = Path(next(iter(spec.submodule_search_locations)))
        path = root / "modules" / "selfie_segmentation" / _MODELS[model]
        if not path.is_file():
            raise BoothError(f"the installed mediapipe has no {_MODELS[model]}; install "
                             "mediapipe==0.10.21, the newest release that ships it")
        return path
    path = Path(model)
    if path.suffix != ".tflite" or not path.is_file():
        raise BoothError(f"segmentation model {model!r} is neither 'landscape', 'square' "
                         "nor an existing .tflite file")
    return path


def exposed(image: np.ndarray, bright: float = 230.0, max_gain: float = 4.0) -> np.ndarray:
    """The picture as the model should see it: one whose highlights (99th percentile, of
    every fourth pixel each way) are darker than `bright` is brightened by up to max_gain.
    In a dim room the model loses people (in the evaluation set's dim room, one visitor's
    solid core went from 0 % to 6 % of the frame with this)."""
    gain = min(max_gain, bright / max(_percentile_99(image[::4, ::4]), 1.0))
    return cv2.convertScaleAbs(image, alpha=gain) if gain > 1.2 else image


def _percentile_99(values: np.ndarray) -> float:
    """np.percentile(values, 99) of uint8 values, from their histogram: the same figure (the
    two order statistics it interpolates between are found by counting) at a tenth of the
    cost, which matters once a frame."""
    counts = np.cumsum(np.bincount(values.ravel(), minlength=256))
    rank = 0.99 * (counts[-1] - 1)
    low, high = np.searchsorted(counts, [math.floor(rank) + 1, math.ceil(rank) + 1])
    return float(low + (rank - math.floor(rank)) * (high - low))


class Segmenter:
    """Confidence that each pixel shows a person, for BGR frames."""

    def __init__(self, model: str = "landscape") -> None:
        path = model_path(model)
        self.input_size = _INPUT_SIZE.get(model, (256, 144))
        # The photo worker may analyse a still (Pipeline.still_analysis) while the screen loop
        # analyses the preview (Pipeline.preview_analysis).
        self._lock = threading.Lock()
        # mediapipe 0.10.21 warns about its own use of a deprecated protobuf API: noise.
        with quiet_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision

            self._mp = mp
            options = vision.ImageSegmenterOptions(
                base_options=BaseOptions(model_asset_path=str(path)),
                running_mode=vision.RunningMode.IMAGE,
                output_confidence_masks=True,
                output_category_mask=False,
            )
            try:
                self._segmenter = vision.ImageSegmenter.create_from_options(options)
            except (RuntimeError, ValueError) as exc:
                raise BoothError(f"cannot load segmentation model {path}: {exc}") from None
            # The first inference logs too (delegate set-up), so run it while muted.
            self.segment(np.zeros((self.input_size[1], self.input_size[0], 3), np.uint8))

    def segment(self, bgr: np.ndarray) -> np.ndarray:
        """float32 mask (0..1) at the size of `bgr`. Feed a frame already shrunk to
        self.input_size for speed: the model works at that size whatever it is given."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        with self._lock:
            result = self._segmenter.segment(image)
        return result.confidence_masks[0].numpy_view().copy()

    def close(self) -> None:
        """Close the graph and let it go: MediaPipe ends its threads only when the task
        object itself is destroyed."""
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None
