"""Backbone registry: builders filed by name, looked up by :func:`build_backbone`.

A builder is a function ``(width: float = 1.0) -> nn.Module`` whose module has ``feature_dim``,
``forward_features`` and ``forward`` (see ``video_resnet.py``). Builders register themselves when
their module is imported; the modules are the ones ``ml.catalog`` names, imported on first lookup,
so the catalogue is the one list of backbones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar, overload

from torch import nn

from ml.catalog import CATALOG

BackboneBuilder = Callable[..., nn.Module]
_B = TypeVar("_B", bound=BackboneBuilder)

_BACKBONES: dict[str, BackboneBuilder] = {}


def _file(name: str, builder: _B) -> _B:
    if name in _BACKBONES and _BACKBONES[name] is not builder:
        raise ValueError(f"backbone {name!r} is already registered (by {_BACKBONES[name].__module__})")
    _BACKBONES[name] = builder
    return builder


@overload
def register_backbone(fn: _B, /) -> _B: ...
@overload
def register_backbone(fn: None = None, /, *, name: str | None = None) -> Callable[[_B], _B]: ...
def register_backbone(
    fn: _B | None = None, /, *, name: str | None = None
) -> _B | Callable[[_B], _B]:
    """File a backbone builder under ``name`` (default: the function's name).

    Use bare (``@register_backbone``) or with a key (``@register_backbone(name="r3d")``).
    """
    if fn is not None:
        return _file(name or fn.__name__, fn)

    def deco(f: _B) -> _B:
        return _file(name or f.__name__, f)

    return deco


def _import_catalogue() -> None:
    for module in sorted({f.module for f in CATALOG.values()}):
        importlib.import_module(module)
    missing = set(CATALOG) - set(_BACKBONES)
    if missing:
        raise RuntimeError(f"ml.catalog lists {sorted(missing)} but their modules register no such builder")


def list_backbones() -> list[str]:
    """Names accepted by :func:`build_backbone`, sorted."""
    _import_catalogue()
    return sorted(_BACKBONES)


def build_backbone(name: str, width: float = 1.0) -> nn.Module:
    """Build the backbone registered as ``name`` with channel-width multiplier ``width``.

    Raises ``ValueError`` naming the valid choices for an unknown name or a non-positive width.
    """
    _import_catalogue()
    try:
        builder = _BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; valid backbones: {', '.join(list_backbones())}"
        ) from None
    if not width > 0:
        raise ValueError(f"backbone width must be > 0 (got {width!r}); use 1.0 for the reference size")
    return builder(width=width)
