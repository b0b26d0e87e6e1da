"""External checkpoints: the PCL/VCOP and torchvision key layouts import onto our backbones exactly.

Each test writes a state dict under the reference's own key names (every tensor distinct random values,
BatchNorm statistics included) and computes the reference network's output straight from those names
with torch.nn.functional, written here from the reference's documented structure. The imported
checkpoint, loaded the way a distillation teacher is (``load_teacher``), must give the same features:
a single mis-mapped or transposed tensor changes the output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ml.engine.runner import load_teacher
from ml.errors import CheckpointError
from ml.importers import import_checkpoint
from tests.crafted_pickle import write_crafted_checkpoint

WIDTH = 0.125
X_SHAPE = (2, 3, 8, 16, 16)  # large enough for C3D's four reference pools


def _ch(c: int) -> int:
    return max(1, round(c * WIDTH))


class RefWeights(dict[str, Tensor]):
    """A reference-layout state dict filled with distinct random values as keys are declared."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.g = torch.Generator().manual_seed(seed)

    def conv(self, key: str, out: int, inp: int, k: tuple[int, int, int], bias: bool = False) -> None:
        self[f"{key}.weight"] = torch.randn(out, inp, *k, generator=self.g) * math.sqrt(2.0 / (inp * math.prod(k)))
        if bias:
            self[f"{key}.bias"] = torch.randn(out, generator=self.g) * 0.1

    def bn(self, key: str, n: int) -> None:
        self[f"{key}.weight"] = 1 + 0.2 * torch.randn(n, generator=self.g)
        self[f"{key}.bias"] = 0.1 * torch.randn(n, generator=self.g)
        self[f"{key}.running_mean"] = 0.1 * torch.randn(n, generator=self.g)
        self[f"{key}.running_var"] = 0.5 + torch.rand(n, generator=self.g)
        self[f"{key}.num_batches_tracked"] = torch.tensor(7)

    def linear(self, key: str, out: int, inp: int) -> None:
        self[f"{key}.weight"] = torch.randn(out, inp, generator=self.g) / math.sqrt(inp)
        self[f"{key}.bias"] = 0.1 * torch.randn(out, generator=self.g)


def _bn(x: Tensor, w: dict[str, Tensor], key: str) -> Tensor:
    return F.batch_norm(x, w[f"{key}.running_mean"], w[f"{key}.running_var"], w[f"{key}.weight"], w[f"{key}.bias"],
                        training=False, eps=1e-5)


# ----------------------------------------------------------------------------- VCOP / PCL R3D and R(2+1)D


def _vcop_conv(w: RefWeights, key: str, out: int, inp: int, k: int | tuple[int, int, int], kind: str) -> None:
    kk = (k, k, k) if isinstance(k, int) else k
    if kind == "r3d":
        w.conv(f"{key}.temporal_spatial_conv", out, inp, kk)
    else:  # VCOP SpatioTemporalConv: spatial (1,d,d) -> BN -> ReLU -> temporal (t,1,1), mid by the R(2+1)D formula
        t, d = kk[0], kk[1]
        mid = math.floor(t * d * d * inp * out / (d * d * inp + t * out))
        w.conv(f"{key}.spatial_conv", mid, inp, (1, d, d))
        w.bn(f"{key}.bn", mid)
        w.conv(f"{key}.temporal_conv", out, mid, (t, 1, 1))


def _vcop_conv_fwd(x: Tensor, w: dict[str, Tensor], key: str, kind: str, stride: tuple[int, int, int],
                   pad: tuple[int, int, int]) -> Tensor:
    if kind == "r3d":
        return F.conv3d(x, w[f"{key}.temporal_spatial_conv.weight"], stride=stride, padding=pad)
    x = F.conv3d(x, w[f"{key}.spatial_conv.weight"], stride=(1, stride[1], stride[2]), padding=(0, pad[1], pad[2]))
    x = F.relu(_bn(x, w, f"{key}.bn"))
    return F.conv3d(x, w[f"{key}.temporal_conv.weight"], stride=(stride[0], 1, 1), padding=(pad[0], 0, 0))


def vcop_resnet_weights(kind: str, prefix: str, seed: int) -> RefWeights:
    w = RefWeights(seed)
    c = [_ch(n) for n in (64, 128, 256, 512)]
    _vcop_conv(w, f"{prefix}conv1", c[0], 3, (3, 7, 7), kind)
    w.bn(f"{prefix}bn1", c[0])
    prev = c[0]
    for stage in range(2, 6):
        out = c[stage - 2]
        b = f"{prefix}conv{stage}.block1"
        _vcop_conv(w, f"{b}.conv1", out, prev, 3, kind)
        w.bn(f"{b}.bn1", out)
        _vcop_conv(w, f"{b}.conv2", out, out, 3, kind)
        w.bn(f"{b}.bn2", out)
        if stage > 2:
            _vcop_conv(w, f"{b}.downsampleconv", out, prev, 1, kind)
            w.bn(f"{b}.downsamplebn", out)
        prev = out
    return w


def vcop_resnet_forward(x: Tensor, w: dict[str, Tensor], kind: str, prefix: str) -> Tensor:
    x = F.relu(_bn(_vcop_conv_fwd(x, w, f"{prefix}conv1", kind, (1, 2, 2), (1, 3, 3)), w, f"{prefix}bn1"))
    for stage in range(2, 6):
        b = f"{prefix}conv{stage}.block1"
        s = (2, 2, 2) if stage > 2 else (1, 1, 1)
        res = F.relu(_bn(_vcop_conv_fwd(x, w, f"{b}.conv1", kind, s, (1, 1, 1)), w, f"{b}.bn1"))
        res = _bn(_vcop_conv_fwd(res, w, f"{b}.conv2", kind, (1, 1, 1), (1, 1, 1)), w, f"{b}.bn2")
        if stage > 2:
            x = _bn(_vcop_conv_fwd(x, w, f"{b}.downsampleconv", kind, s, (0, 0, 0)), w, f"{b}.downsamplebn")
        x = F.relu(x + res)
    return x.mean(dim=(2, 3, 4))


# ----------------------------------------------------------------------------- VCOP C3D

C3D_BLOCKS = (("1", 64), ("2", 128), ("3a", 256), ("3b", 256), ("4a", 512), ("4b", 512), ("5a", 512), ("5b", 512))
C3D_POOL_AFTER = {"1": (1, 2, 2), "2": (2, 2, 2), "3b": (2, 2, 2), "4b": (2, 2, 2)}


def c3d_weights(prefix: str, seed: int) -> RefWeights:
    w = RefWeights(seed)
    prev = 3
    for name, n in C3D_BLOCKS:
        w.conv(f"{prefix}conv{name}", _ch(n), prev, (3, 3, 3), bias=True)
        w.bn(f"{prefix}bn{name}", _ch(n))
        prev = _ch(n)
    return w


def c3d_forward(x: Tensor, w: dict[str, Tensor], prefix: str) -> Tensor:
    for name, _ in C3D_BLOCKS:
        x = F.conv3d(x, w[f"{prefix}conv{name}.weight"], w[f"{prefix}conv{name}.bias"], padding=1)
        x = F.relu(_bn(x, w, f"{prefix}bn{name}"))
        if name in C3D_POOL_AFTER:
            x = F.max_pool3d(x, C3D_POOL_AFTER[name])
    return x.mean(dim=(2, 3, 4))


# ----------------------------------------------------------------------------- torchvision r3d_18


def torchvision_r3d18_weights(seed: int, prefix: str = "", sequential: bool = False) -> RefWeights:
    """``r3d_18().state_dict()`` names; ``sequential``: PCL's ``Sequential(*children[:-1])`` (0 stem, 1-4 layers)."""
    w = RefWeights(seed)
    stem, layer = (f"{prefix}0", lambda i: f"{prefix}{i}") if sequential else (f"{prefix}stem", lambda i: f"{prefix}layer{i}")
    c = [_ch(n) for n in (64, 128, 256, 512)]
    w.conv(f"{stem}.0", c[0], 3, (3, 7, 7))
    w.bn(f"{stem}.1", c[0])
    prev = c[0]
    for i in range(1, 5):
        for b in range(2):
            k = f"{layer(i)}.{b}"
            w.conv(f"{k}.conv1.0", c[i - 1], prev, (3, 3, 3))
            w.bn(f"{k}.conv1.1", c[i - 1])
            w.conv(f"{k}.conv2.0", c[i - 1], c[i - 1], (3, 3, 3))
            w.bn(f"{k}.conv2.1", c[i - 1])
            if b == 0 and i > 1:
                w.conv(f"{k}.downsample.0", c[i - 1], prev, (1, 1, 1))
                w.bn(f"{k}.downsample.1", c[i - 1])
            prev = c[i - 1]
    if not sequential:
        w.linear(f"{prefix}fc", 400, prev)
    return w


def torchvision_r3d18_forward(x: Tensor, w: dict[str, Tensor], stem: str = "stem", layer: str = "layer") -> Tensor:
    x = F.relu(_bn(F.conv3d(x, w[f"{stem}.0.weight"], stride=(1, 2, 2), padding=(1, 3, 3)), w, f"{stem}.1"))
    for i in range(1, 5):
        for b in range(2):
            k = f"{layer}{i}.{b}"
            s = 2 if (b == 0 and i > 1) else 1
            res = F.relu(_bn(F.conv3d(x, w[f"{k}.conv1.0.weight"], stride=s, padding=1), w, f"{k}.conv1.1"))
            res = _bn(F.conv3d(res, w[f"{k}.conv2.0.weight"], padding=1), w, f"{k}.conv2.1")
            if f"{k}.downsample.0.weight" in w:
                x = _bn(F.conv3d(x, w[f"{k}.downsample.0.weight"], stride=s), w, f"{k}.downsample.1")
            x = F.relu(x + res)
    return x.mean(dim=(2, 3, 4))


# ----------------------------------------------------------------------------- torchvision r2plus1d_18


def _tv_mid(inp: int, out: int) -> int:
    return (inp * out * 27) // (inp * 9 + 3 * out)  # torchvision's midplanes, shared by both convs of a block


def torchvision_r21d18_weights(seed: int, prefix: str = "", sequential: bool = False) -> RefWeights:
    """``r2plus1d_18().state_dict()`` names: stem {0 conv(1,7,7)->45, 1 BN, 3 conv(3,1,1), 4 BN}; each (2+1)D conv
    {0 spatial, 1 BN, 3 temporal}; plain 1x1x1 downsample."""
    w = RefWeights(seed)
    stem, layer = (f"{prefix}0", lambda i: f"{prefix}{i}") if sequential else (f"{prefix}stem", lambda i: f"{prefix}layer{i}")
    c = [_ch(n) for n in (64, 128, 256, 512)]
    w.conv(f"{stem}.0", _ch(45), 3, (1, 7, 7))
    w.bn(f"{stem}.1", _ch(45))
    w.conv(f"{stem}.3", c[0], _ch(45), (3, 1, 1))
    w.bn(f"{stem}.4", c[0])
    prev = c[0]
    for i in range(1, 5):
        for b in range(2):
            k, out = f"{layer(i)}.{b}", c[i - 1]
            mid = _tv_mid(prev, out)
            for conv, inp in (("conv1", prev), ("conv2", out)):
                w.conv(f"{k}.{conv}.0.0", mid, inp, (1, 3, 3))
                w.bn(f"{k}.{conv}.0.1", mid)
                w.conv(f"{k}.{conv}.0.3", out, mid, (3, 1, 1))
                w.bn(f"{k}.{conv}.1", out)
            if b == 0 and i > 1:
                w.conv(f"{k}.downsample.0", out, prev, (1, 1, 1))
                w.bn(f"{k}.downsample.1", out)
            prev = out
    return w


def torchvision_r21d18_forward(x: Tensor, w: dict[str, Tensor]) -> Tensor:
    x = F.relu(_bn(F.conv3d(x, w["stem.0.weight"], stride=(1, 2, 2), padding=(0, 3, 3)), w, "stem.1"))
    x = F.relu(_bn(F.conv3d(x, w["stem.3.weight"], padding=(1, 0, 0)), w, "stem.4"))

    def conv21(x: Tensor, k: str, s: int) -> Tensor:
        x = F.relu(_bn(F.conv3d(x, w[f"{k}.0.weight"], stride=(1, s, s), padding=(0, 1, 1)), w, f"{k}.1"))
        return F.conv3d(x, w[f"{k}.3.weight"], stride=(s, 1, 1), padding=(1, 0, 0))

    for i in range(1, 5):
        for b in range(2):
            k = f"layer{i}.{b}"
            s = 2 if (b == 0 and i > 1) else 1
            res = F.relu(_bn(conv21(x, f"{k}.conv1.0", s), w, f"{k}.conv1.1"))
            res = _bn(conv21(res, f"{k}.conv2.0", 1), w, f"{k}.conv2.1")
            if f"{k}.downsample.0.weight" in w:
                x = _bn(F.conv3d(x, w[f"{k}.downsample.0.weight"], stride=s), w, f"{k}.downsample.1")
            x = F.relu(x + res)
    return x.mean(dim=(2, 3, 4))


# ----------------------------------------------------------------------------- the tests

Case = tuple[str, str, Callable[[], RefWeights], Callable[[Tensor, dict[str, Tensor]], Tensor]]
CASES: dict[str, Case] = {
    "pcl-r3d": ("pcl", "r3d", lambda: vcop_resnet_weights("r3d", "base_network.", 1),
                lambda x, w: vcop_resnet_forward(x, w, "r3d", "base_network.")),
    "vcop-r21d-bare": ("pcl", "r21d", lambda: vcop_resnet_weights("r21d", "", 2),
                       lambda x, w: vcop_resnet_forward(x, w, "r21d", "")),
    "pcl-c3d": ("pcl", "c3d", lambda: c3d_weights("base_network.", 3), lambda x, w: c3d_forward(x, w, "base_network.")),
    "pcl-r18": ("pcl", "r3d18", lambda: torchvision_r3d18_weights(4, "base_network.", sequential=True),
                lambda x, w: torchvision_r3d18_forward(x, w, "base_network.0", "base_network.")),
    "torchvision-r3d18": ("torchvision", "r3d18", lambda: torchvision_r3d18_weights(5), torchvision_r3d18_forward),
    "torchvision-r21d18": ("torchvision", "r21d18", lambda: torchvision_r21d18_weights(6), torchvision_r21d18_forward),
    "pcl-r21d": ("pcl", "r21d18", lambda: torchvision_r21d18_weights(7, "base_network.", sequential=True),
                 lambda x, w: torchvision_r21d18_forward(x, {k.replace("base_network.0.", "stem.").replace(
                     "base_network.", "layer"): v for k, v in w.items()})),
}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize(("case", "dataparallel"), [(c, False) for c in sorted(CASES)] + [("pcl-r3d", True)])
def test_import_matches_the_reference_network(case: str, dataparallel: bool, tmp_path: Path) -> None:
    fmt, backbone, make, forward = CASES[case]
    weights = make()
    if fmt == "pcl" and case.startswith("pcl"):  # PCL's pretraining net: a projector and its own pretext heads
        weights.linear("projector.mlp.0", _ch(512), _ch(512))
        weights.linear("projector.mlp.2", 16, _ch(512))
        weights.linear("fc_seq", 2, 2 * _ch(512))
    saved = dict(weights)
    if dataparallel:  # saved from nn.DataParallel: every key under "module."
        saved = {f"module.{k}": v for k, v in saved.items()}
    src = tmp_path / "external.pth"
    torch.save(saved, src)
    result = import_checkpoint(src, fmt=fmt, backbone=backbone, out=tmp_path / "imported.pt")
    assert result.width == WIDTH and result.backbone == backbone
    teacher, state = load_teacher(result.path, device=torch.device("cpu"))  # as distill --teacher loads it
    assert state["origin"]["format"] == fmt and state["origin"]["file"] == "external.pth"
    x = torch.randn(*X_SHAPE, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ours = teacher.backbone(x)
        ref = forward(x, weights)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    if "projector.mlp.0.weight" in weights:
        assert result.fresh == ["vcp_head"]
        assert [k.removeprefix("module.") for k in result.dropped] == ["fc_seq.bias", "fc_seq.weight"]
        with torch.no_grad():
            expected = F.normalize(F.linear(F.relu(F.linear(ref, weights["projector.mlp.0.weight"], weights["projector.mlp.0.bias"])),
                                            weights["projector.mlp.2.weight"], weights["projector.mlp.2.bias"]), dim=1)
            torch.testing.assert_close(teacher.proj_head(ours), expected, rtol=1e-4, atol=1e-5)


def test_one_swapped_tensor_changes_the_output(tmp_path: Path) -> None:
    """The comparison above can fail: two same-shaped tensors exchanged in the file give another network."""
    weights = vcop_resnet_weights("r3d", "base_network.", 1)
    a, b = "base_network.conv2.block1.bn1.weight", "base_network.conv2.block1.bn2.weight"
    swapped = dict(weights)
    swapped[a], swapped[b] = weights[b], weights[a]
    torch.save(swapped, tmp_path / "x.pth")
    teacher, _ = load_teacher(import_checkpoint(tmp_path / "x.pth", fmt="pcl", backbone="r3d", out=tmp_path / "i.pt").path,
                              device=torch.device("cpu"))
    x = torch.randn(*X_SHAPE)
    with torch.no_grad():
        assert not torch.allclose(teacher.backbone(x), vcop_resnet_forward(x, weights, "r3d", "base_network."), atol=1e-4)


def test_a_wrong_layout_is_refused_by_name(tmp_path: Path) -> None:
    torch.save(dict(c3d_weights("base_network.", 3)), tmp_path / "c3d.pth")
    with pytest.raises(CheckpointError, match="does not match"):
        import_checkpoint(tmp_path / "c3d.pth", fmt="pcl", backbone="r3d", out=tmp_path / "o.pt")
    with pytest.raises(ValueError, match="no 'torchvision' layout for backbone 'c3d'"):
        import_checkpoint(tmp_path / "c3d.pth", fmt="torchvision", backbone="c3d", out=tmp_path / "o.pt")
    assert not (tmp_path / "o.pt").exists()


def test_a_crafted_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    write_crafted_checkpoint(tmp_path / "evil.pth", marker)
    with pytest.raises(CheckpointError, match="refused"):
        import_checkpoint(tmp_path / "evil.pth", fmt="pcl", backbone="r3d", out=tmp_path / "o.pt")
    assert not marker.exists() and not (tmp_path / "o.pt").exists()


def test_an_imported_teacher_is_a_finetune_source(tmp_path: Path) -> None:
    """The written file is one of ours: kind pretrain, the trunk under backbone.*, loadable weights-only."""
    torch.save(dict(torchvision_r3d18_weights(5)), tmp_path / "tv.pth")
    out = import_checkpoint(tmp_path / "tv.pth", fmt="torchvision", backbone="r3d18", out=tmp_path / "t.pt")
    state = torch.load(out.path, weights_only=True)
    assert state["kind"] == "pretrain" and state["modality"] == "rgb" and state["backbone"] == "r3d18"
    assert out.dropped == ["fc.bias", "fc.weight"] and out.fresh == ["vcp_head", "proj_head"]
    assert {k.split(".")[0] for k in state["task"]["net"]} == {"backbone", "vcp_head", "proj_head"}


def test_the_import_kind_runs_through_the_engine(tmp_path: Path) -> None:
    """``import`` is a kind of the registry: ml.engine.run dispatches it like any other (no runtime needed)."""
    from ml.engine import run
    from ml.import_spec import ImportConfig

    torch.save(dict(torchvision_r3d18_weights(5)), tmp_path / "tv.pth")
    cfg = ImportConfig(checkpoint=tmp_path / "tv.pth", format="torchvision", backbone="r3d18")
    result = run(cfg, out_dir=tmp_path / "job")
    assert result.status == "completed" and result.checkpoint == tmp_path / "job" / "checkpoint.pt"
    assert result.results["kind"] == "import" and result.results["width"] == WIDTH
    teacher, _ = load_teacher(result.checkpoint, device=torch.device("cpu"))
    x = torch.randn(*X_SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(teacher.backbone(x), torchvision_r3d18_forward(x, torchvision_r3d18_weights(5)),
                                   rtol=1e-4, atol=1e-5)
