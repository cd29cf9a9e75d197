"""Video style transfer (Ruder, Dosovitskiy and Brox 2016): ``stylize video`` and ``VideoJob``.

    from stylize.video import VideoJob
    VideoJob("clip.mp4", "painting.jpg", "out.mp4", length=256, iterations=300, frame_iterations=100).run()

Modules: ``frames`` (video and image folders in, video with audio out, via
FFmpeg), ``flow`` (DIS optical flow, the reliability mask, warping and the
warping error), ``work`` (the resumable work folder), ``job`` (the frame
loop over ``stylize.Job``), ``events``. The temporal term itself is the
loss plugin ``temporal`` (``stylize.losses.temporal``).
"""
from .job import VideoJob

__all__ = ["VideoJob"]
