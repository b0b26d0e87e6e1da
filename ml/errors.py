"""Typed errors raised by ml/ for bad input; callers (CLI, API) turn them into clear messages."""

import re

_ABS_PATH = re.compile(r"(?<![\w.])/[^\s,:;'\"()\]]+")


def without_paths(text: str, placeholder: str = "<path>") -> str:
    """``text`` with every absolute filesystem path replaced: for messages that reach a user who must not
    learn server paths (decoder build paths, temp files, data roots)."""
    return _ABS_PATH.sub(placeholder, text)


class MLError(Exception):
    """Base class for errors caused by the user's input rather than a bug."""


class VideoError(MLError):
    """A video file cannot be used; ``reason`` says why in words a user can act on."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NotAVideoError(VideoError):
    """The bytes are not a container decord can open."""


class EmptyVideoError(VideoError):
    """The file has zero bytes or zero decodable frames."""


class VideoTooShortError(VideoError):
    """Fewer frames than one clip needs."""


class CorruptVideoError(VideoError):
    """Opens, but frames fail to decode."""


class DatasetError(MLError):
    """A dataset root or split file is unusable (missing folder, no classes, bad split file)."""


class CheckpointError(MLError):
    """A checkpoint is missing, unreadable or of the wrong kind for this use."""
