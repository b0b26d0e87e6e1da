"""Video backbones (R3D, R(2+1)D, C3D, R3D-18), heads and the PCL network.

Importing this package registers every backbone, so ``build_backbone`` sees them all.
"""

from ml.models import c3d as _c3d  # noqa: F401  (registers "c3d")
from ml.models import video_resnet as _video_resnet  # noqa: F401  (registers "r3d", "r21d", "r3d18")
from ml.models.heads import ClassifierHead, ProjectionHead, VCPHead
from ml.models.pcl_net import PCLNet, PCLOutputs, VideoClassifier, build_pcl_net
from ml.models.registry import build_backbone, list_backbones, register_backbone

__all__ = [
    "ClassifierHead",
    "PCLNet",
    "PCLOutputs",
    "ProjectionHead",
    "VCPHead",
    "VideoClassifier",
    "build_backbone",
    "build_pcl_net",
    "list_backbones",
    "register_backbone",
]
