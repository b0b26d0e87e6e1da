"""Backbones, heads and PCLNet: exact reference sizes (docs/method.md §1) and tiny CPU forward/backward."""

from __future__ import annotations

from typing import get_args

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ml.models import (
    ClassifierHead,
    PCLNet,
    PCLOutputs,
    ProjectionHead,
    VCPHead,
    VideoClassifier,
    build_backbone,
    build_pcl_net,
    list_backbones,
)
from ml.catalog import CATALOG, BackboneName
from ml.config import ModelConfig
from ml.models.c3d import SafeMaxPool3d
from ml.models.video_resnet import scale_channels

REFERENCE_PARAMS = {
    "r3d": 14_361_792,
    "r21d": 14_365_303,
    "c3d": 27_661_440,
    "r3d18": 33_166_272,
    "r21d18": 31_300_125,  # torchvision r2plus1d_18: 31,505,325 less its fc (512*400 + 400)
    "r3d_small": 3_598_944,
}
TINY = 0.125


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registry_lists_the_reference_backbones() -> None:
    assert set(list_backbones()) == set(REFERENCE_PARAMS) == set(CATALOG)


def test_config_accepts_exactly_the_catalogue() -> None:
    assert get_args(BackboneName) == tuple(CATALOG)
    for name in CATALOG:
        assert ModelConfig(backbone=name).backbone == name
    with pytest.raises(ValueError, match="r3d"):
        ModelConfig(backbone="resnet50")


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalogue_facts_match_the_built_network(name: str) -> None:
    """Parameters by count and GMACs per clip by torch's flop counter, on the meta device (no compute)."""
    facts = CATALOG[name]
    with torch.device("meta"):
        m = build_backbone(name)
        clip = torch.empty(1, 3, facts.clip_frames, facts.clip_crop, facts.clip_crop)
    counter = FlopCounterMode(display=False)
    with counter:
        out = m(clip)
    assert _n_params(m) == facts.params == REFERENCE_PARAMS[name]
    assert round(counter.get_total_flops() / 2e9, 1) == facts.gmacs  # a MAC is two FLOPs
    assert out.shape[-1] == m.feature_dim == facts.feature_dim


@pytest.mark.parametrize("name", list_backbones())
def test_reference_param_count_and_map_shape(name: str) -> None:
    # Meta device: exact sizes and shapes without allocating or computing.
    with torch.device("meta"):
        m = build_backbone(name)
        fmap = m.forward_features(torch.empty(2, 3, 16, 112, 112))
        pooled = m(torch.empty(2, 3, 16, 112, 112))
    dim = CATALOG[name].feature_dim
    assert _n_params(m) == REFERENCE_PARAMS[name]
    assert m.feature_dim == dim
    assert tuple(fmap.shape) == (2, dim, 2, 7, 7)
    assert tuple(pooled.shape) == (2, dim)


def test_r3d_real_forward_at_reference_size() -> None:
    m = build_backbone("r3d").eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 16, 112, 112))
    assert tuple(out.shape) == (1, 512)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list_backbones())
def test_tiny_forward_backward(name: str) -> None:
    m = build_backbone(name, width=TINY)
    dim = scale_channels(CATALOG[name].feature_dim, TINY)
    assert m.feature_dim == dim
    x = torch.randn(2, 3, 8, 32, 32)
    out = m(x)
    assert tuple(out.shape) == (2, dim)
    assert m.forward_features(x).shape[:2] == (2, dim)
    out.square().mean().backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", list_backbones())
@pytest.mark.parametrize("thw", [(1, 8, 8), (4, 16, 16), (3, 9, 7), (1, 1, 1)])
def test_odd_and_tiny_clip_sizes_run(name: str, thw: tuple[int, int, int]) -> None:
    m = build_backbone(name, width=TINY).eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, *thw))
    assert tuple(out.shape) == (1, scale_channels(CATALOG[name].feature_dim, TINY))


def test_width_scaling_rounds_and_never_hits_zero() -> None:
    assert build_backbone("r3d", width=0.5).feature_dim == 256
    m = build_backbone("c3d", width=0.001)
    assert m.feature_dim == 1
    assert tuple(m(torch.randn(2, 3, 4, 16, 16)).shape) == (2, 1)


def test_r21d_mid_channels_follow_the_formula() -> None:
    m = build_backbone("r21d")
    assert m.stem[0].mid_channels == 83
    assert m.layer1[0].conv1[0].mid_channels == 144
    assert (m.layer2[0].conv1[0].mid_channels, m.layer2[0].conv2[0].mid_channels) == (230, 288)
    assert (m.layer3[0].conv1[0].mid_channels, m.layer3[0].conv2[0].mid_channels) == (460, 576)
    assert (m.layer4[0].conv1[0].mid_channels, m.layer4[0].conv2[0].mid_channels) == (921, 1152)


def test_safe_max_pool_matches_max_pool_where_it_works() -> None:
    x = torch.randn(1, 2, 5, 9, 8)
    assert torch.equal(SafeMaxPool3d((2, 2, 2))(x), nn.MaxPool3d(2)(x))
    assert tuple(SafeMaxPool3d((2, 2, 2))(torch.randn(1, 2, 1, 4, 4)).shape) == (1, 2, 1, 2, 2)


def test_init_is_kaiming_fan_out_and_unit_bn() -> None:
    m = build_backbone("r3d", width=TINY)
    bns = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm3d)]
    assert all(torch.all(b.weight == 1) and torch.all(b.bias == 0) for b in bns)
    conv = m.layer4[0].conv2[0]
    fan_out = conv.out_channels * conv.weight[0, 0].numel()
    assert conv.weight.std().item() == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.15)


def test_unknown_backbone_error_lists_valid_names() -> None:
    with pytest.raises(ValueError) as err:
        build_backbone("resnet50")
    msg = str(err.value)
    assert "resnet50" in msg
    assert all(name in msg for name in list_backbones())


def test_non_positive_width_is_rejected() -> None:
    with pytest.raises(ValueError, match="width"):
        build_backbone("r3d", width=0)


def test_heads_shapes() -> None:
    assert VCPHead(512).fc.in_features == 1536 and VCPHead(512).fc.out_features == 5
    z = ProjectionHead(64, out_dim=16)(torch.randn(4, 64))
    assert tuple(z.shape) == (4, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
    proj = ProjectionHead(512)
    assert [l.in_features for l in proj.mlp if isinstance(l, nn.Linear)] == [512, 512]
    assert tuple(ClassifierHead(64, 101, dropout=0.5)(torch.randn(3, 64)).shape) == (3, 101)


@pytest.mark.parametrize("name", list_backbones())
def test_pcl_net_outputs(name: str) -> None:
    net = build_pcl_net(name, TINY, proj_dim=16)
    clips = torch.randn(2, 3, 3, 8, 32, 32)
    out = net(clips)
    assert isinstance(out, PCLOutputs)
    assert tuple(out.logits.shape) == (2, 5)
    assert tuple(out.embeddings.shape) == (2, 2, 16)
    assert tuple(out.features.shape) == (2, 3, scale_channels(CATALOG[name].feature_dim, TINY))
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(2, 2))
    (out.logits.sum() + out.embeddings.sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_pcl_net_calls_backbone_once_and_uses_first_and_last_clip() -> None:
    backbone = build_backbone("r3d", width=TINY)
    net = PCLNet(backbone, n_clips=4, num_pretext=5, proj_dim=8).eval()
    calls: list[tuple[int, ...]] = []
    backbone.register_forward_hook(lambda _m, inp, _out: calls.append(tuple(inp[0].shape)))
    clips = torch.randn(2, 4, 3, 4, 16, 16)
    with torch.no_grad():
        out = net(clips)
        per_clip = torch.stack([backbone(clips[:, i]) for i in range(4)], dim=1)
    assert calls[0] == (8, 3, 4, 16, 16)
    assert len(calls) == 1 + 4  # one batched call in net(), then our four references
    torch.testing.assert_close(out.features, per_clip, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        expected = net.proj_head(per_clip[:, [0, 3]].flatten(0, 1)).view(2, 2, -1)
    torch.testing.assert_close(out.embeddings, expected, rtol=1e-4, atol=1e-5)


def test_pcl_net_rejects_wrong_tuple_shape() -> None:
    net = build_pcl_net("r3d", TINY)
    with pytest.raises(ValueError, match="B×3"):
        net(torch.randn(2, 2, 3, 4, 16, 16))


def test_backbone_state_dict_transfers_to_classifier() -> None:
    net = build_pcl_net("c3d", TINY)
    clf = VideoClassifier(build_backbone("c3d", TINY), num_classes=101, dropout=0.5)
    clf.backbone.load_state_dict(net.backbone.state_dict())
    x = torch.randn(2, 3, 8, 32, 32)
    assert tuple(clf(x).shape) == (2, 101)
    assert tuple(clf.features(x).shape) == (2, 64)
