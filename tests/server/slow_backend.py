"""A test plugin backend (loaded by the worker as ``slow_backend:SlowRenderBackend``).

The real ``render`` backend with a pause per frame, so that a job runs long
enough for a test to kill its worker or withdraw its consent mid-job, the way
a GPU diffusion job of minutes would be interrupted.
"""

from __future__ import annotations

import time

from server_animator.backends import RenderBackend


class SlowRenderBackend(RenderBackend):
    name = "slow-render"

    def __init__(self, config):
        super().__init__(config)
        self.frame_delay_s = float(config.backend_options.get("frame_delay_s", 0.1))

    def animate(self, recording, out_dir, progress):
        def slow_progress(fraction: float) -> None:
            time.sleep(self.frame_delay_s)
            progress(fraction)

        return super().animate(recording, out_dir, slow_progress)
