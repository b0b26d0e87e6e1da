"""The "synthesize" job: what to render (a config) and what it will cost, without importing the renderer.

The API sizes a request with these functions (numpy/PyAV/torch-free) before it accepts it; the worker
renders it with :func:`ml.synthetic.synthesize` through the normal job path (claim, heartbeat, progress,
cancel, failure recording).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SYNTHESIZE: Literal["synthesize"] = "synthesize"
"""The job kind that renders a synthetic dataset on a worker (the one place this name is spelled)."""

CONTAINER_OVERHEAD_BYTES = 16 * 1024  # AVI headers and index per video (measured: ~6 KiB), with margin


def avi_bit_rate(width: int, height: int, fps: int) -> int:
    """The mpeg4-in-AVI bit rate :func:`ml.synthetic.write_video` asks the encoder for (bits per second)."""
    return max(400_000, width * height * fps * 2)


class SynthesizeConfig(BaseModel):
    """Render ``classes x videos_per_class`` videos of ``frames`` frames at ``width x height`` under ``root``
    (a server-chosen folder under the first data root), then index and scan them."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["synthesize"] = SYNTHESIZE
    root: Path
    classes: int = Field(ge=2, le=50)
    videos_per_class: int = Field(ge=2, le=200)
    frames: int = Field(ge=1)
    width: int = Field(ge=16)
    height: int = Field(ge=16)
    fps: int = Field(25, ge=1, le=120)
    seed: int = 0
    min_frames: int = Field(8, ge=1, description="the scan reports shorter videos as problems")

    @property
    def videos(self) -> int:
        return self.classes * self.videos_per_class

    @property
    def pixels(self) -> int:
        """The rendering work: every pixel of every frame of every video."""
        return self.videos * self.frames * self.width * self.height

    def estimated_bytes(self) -> int:
        """Disk the videos will take: the encoder's target bit rate over the clip length, plus container overhead."""
        seconds = self.frames / self.fps
        per_video = int(avi_bit_rate(self.width, self.height, self.fps) * seconds / 8) + CONTAINER_OVERHEAD_BYTES
        return self.videos * per_video
