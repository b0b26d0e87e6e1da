"""Video backbones (R3D, R(2+1)D, C3D, R3D-18), heads and the PCL network.

``build_backbone`` / ``list_backbones`` import the backbone modules that ``ml.catalog`` names.
"""

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
