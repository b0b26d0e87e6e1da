"""What an import is, without torch (the registry and the API read it): its job kind, formats and config.

The key layouts themselves, the mapping and the runner are in :mod:`ml.importers`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import Field

from ml.catalog import BackboneName
from ml.config import StrictModel

IMPORT: Literal["import"] = "import"  # the job kind of an imported checkpoint (POST /models/import)
ImportFormat = Literal["pcl", "torchvision"]
FORMATS: tuple[str, ...] = get_args(ImportFormat)


class ImportConfig(StrictModel):
    """Map an external checkpoint onto one of our backbones (``python -m ml import``, ``POST /models/import``)."""

    kind: Literal["import"] = IMPORT
    checkpoint: Path = Field(description="the external file (a server path: never taken from a request)")
    format: ImportFormat
    backbone: BackboneName
    width: float | None = Field(None, gt=0, le=4, description="None: read from the file")
    modality: Literal["res", "rgb"] | None = Field(None, description="None: the format's (pcl res, torchvision rgb)")
