"""The vision layer: from a camera frame to the visitor standing on Mars (numpy and OpenCV).

Two named paths run through it, both on `pipeline.Pipeline`:

- the live preview, every camera frame: `preview_analysis(frame, now)` then
  `draw_preview(canvas, frame, analysis)` (smoothed over time, the model asked again only
  when the picture changed, a second thread sharing the work);
- the saved photo, once a capture: `photo_analysis(frame)` (or `still_analysis(still,
  preview)`), `photo_matte`, then `final` (the full-resolution picture) or `cutout` (the
  cut-out alone).

The modules, in the order a frame meets them:

- segmentation: the MediaPipe person model (both paths);
- placement: the people's box and where they go on the stage (the preview smooths it);
- presence: who is in the photo: MediaPipe's pose landmarker confirms a body, the
  visitor's blobs are kept, people far smaller left off, and the picture must show them;
- refine: the photo's closer second look and edge-aware alpha;
- modnet, fusion: MODNet portrait matting (ONNX Runtime) on the photo, fused with the refined
  cut-out: MediaPipe decides who and where, MODNet the edges and hair, the body opaque;
- models: the pinned MODNet file (`booth models install`), found, verified and loaded;
- effects: edge smoothing over time (preview), colour transfer, light wrap, contact shadow;
- matting: the visitor's own colours at soft edges;
- compositing: warp and blend into the plate (`Finish`: one composite's effects);
- pipeline: the two paths; preview_state: the preview's state between frames.
"""
