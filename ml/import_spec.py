"""What an import is, without torch (the API validates requests with it): its job kind and the accepted formats.

The key layouts themselves, and the mapping, are in :mod:`ml.importers`.
"""

from __future__ import annotations

from typing import Literal, get_args

IMPORT: Literal["import"] = "import"  # the job kind of an imported checkpoint (a completed row, no worker run)
ImportFormat = Literal["pcl", "torchvision"]
FORMATS: tuple[str, ...] = get_args(ImportFormat)
