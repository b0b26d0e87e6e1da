"""Recipes: run configurations as YAML files under ``configs/`` (torch-free; the API imports it).

A recipe file (``configs/<name>.yaml``, named without the suffix, e.g. ``tiny``, ``pcl/r3d``, ``grid/tiny``)::

    base: [pcl/base]          # one name or a list, relative to configs/; deep-merged in order, then this file
    description: one line shown by list_recipes() and GET /recipes
    config:                   # sections shared by every kind; a section a kind's config lacks is skipped
      clip: {frames: 8, crop: 32}
      model: {width: 0.125}
    kinds:                    # per-kind sections (strict: a wrong key is an error); a kind reads the
      pretrain: {...}         # sections ml.kinds lists for it (distill reads pretrain's, then its own)
      finetune: {...}
    grid:                     # only grid recipes: the budget facts experiments/reproduce.py needs
      seeds: {pair: 3, full: 2}
      roles: {teacher: {optim: {epochs: 36}}}   # per-role overrides on top of the kind's config

Resolution of (recipe, kind, role, overrides): the kind's ``defaults`` (ml.kinds) < ``config`` < ``kinds``
sections < ``grid.roles[role]`` < overrides (nested dict or ``a.b=value`` strings) < ``paths`` (the caller's
server paths: ``data.root``, checkpoints). Recipe files never name a server path: a path-typed key
(``ml.config.path_fields``) in a recipe is refused, naming the file and the dotted key.

API:
- ``list_recipes() -> list[RecipeInfo]`` (name, description, kinds, is a grid);
- ``load(name) -> dict``: the merged recipe (bases applied; cycles refused);
- ``resolve_dict(name, kind, overrides=None, *, role=None, paths=None) -> dict`` (unvalidated);
- ``resolve(...)``: the same, validated by the kind's config class; a ``RecipeError`` names the file and key;
- ``load_file(path)``: a user file (``--config``) in the recipe format, or a plain config with an optional ``base:``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ml import kinds as kind_registry
from ml.config import apply_overrides, load_config_file, path_fields, set_dotted
from ml.grid import ROLES

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
RECIPE_KEYS = frozenset({"base", "description", "config", "kinds", "grid"})
SUFFIX = ".yaml"


class RecipeError(ValueError):
    """A recipe that cannot be loaded or resolved; the message names the file and the dotted key."""


@dataclass(frozen=True)
class RecipeInfo:
    name: str
    description: str
    kinds: tuple[str, ...]
    grid: bool


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _path_of(name: str, root: Path) -> Path:
    rel = name if name.endswith(SUFFIX) else name + SUFFIX
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        raise RecipeError(f"recipe {name!r} is outside {root}")
    if not path.is_file():
        known = ", ".join(recipe_names(root)) or "none"
        raise RecipeError(f"unknown recipe {name!r} (no {path.relative_to(root.resolve())} in configs/); recipes: {known}")
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _bases(data: Mapping[str, Any], where: str) -> list[str]:
    base = data.get("base") or []
    names = [base] if isinstance(base, str) else base
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RecipeError(f"{where}: base must be a recipe name or a list of names")
    return names


def _load_path(path: Path, root: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
    if path in stack:
        chain = " -> ".join(p.name for p in (*stack, path))
        raise RecipeError(f"{path}: base cycle ({chain})")
    data = _read_yaml(path)
    unknown = set(data) - RECIPE_KEYS
    if unknown:
        raise RecipeError(f"{path}: unknown top-level key(s) {sorted(unknown)}; a recipe has {sorted(RECIPE_KEYS)}")
    _check_sections(data, path)
    _check_no_paths(data, path)
    merged: dict[str, Any] = {}
    for name in _bases(data, str(path)):
        merged = deep_merge(merged, _load_path(_path_of(name, root), root, (*stack, path)))
    own = {k: v for k, v in data.items() if k != "base"}
    return deep_merge(merged, own)


def load(name: str, *, root: Path = CONFIGS_DIR) -> dict[str, Any]:
    """The merged recipe ``name`` (its bases applied in order, then the file itself)."""
    return _load_path(_path_of(name, root), root, ())


def load_file(path: Path, *, root: Path = CONFIGS_DIR) -> dict[str, Any]:
    """A user's ``--config`` file: a recipe (top-level ``config``/``kinds``/``grid``) or a plain config of one kind
    (its sections, e.g. ``optim:``), each with an optional ``base:`` naming recipes; returned in the recipe format
    with a plain config under ``kinds: {"*": ...}`` (applied to whichever kind resolves it)."""
    data = load_config_file(Path(path))
    if set(data) - {"base", "description"} <= RECIPE_KEYS and set(data) & {"config", "kinds", "grid"}:
        merged: dict[str, Any] = {}
        for name in _bases(data, str(path)):
            merged = deep_merge(merged, load(name, root=root))
        return deep_merge(merged, {k: v for k, v in data.items() if k != "base"})
    merged = {}
    for name in _bases(data, str(path)):
        merged = deep_merge(merged, load(name, root=root))
    return deep_merge(merged, {"kinds": {"*": {k: v for k, v in data.items() if k != "base"}}})


def _leaves(data: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, dotted + ".")
        else:
            yield dotted


def _all_path_keys() -> frozenset[str]:
    keys: set[str] = set()
    for kind in kind_registry.KINDS.values():
        try:
            keys |= path_fields(kind.config_class())
        except ImportError:  # a kind whose module is not installed cannot be resolved either
            continue
    return frozenset(keys)


def _check_sections(data: Mapping[str, Any], where: Path) -> None:
    """Section names are checked, not skipped: a misspelt kind or role would otherwise be silently unused."""
    sections = {section for k in kind_registry.KINDS.values() for section in k.sections()}
    unknown = set(data.get("kinds") or {}) - sections
    if unknown:
        raise RecipeError(f"{where}: kinds.{sorted(unknown)[0]} is not a job kind; kinds: {', '.join(sorted(sections))}")
    roles = set(((data.get("grid") or {}).get("roles") or {}))
    if roles - set(ROLES):
        raise RecipeError(f"{where}: grid.roles.{sorted(roles - set(ROLES))[0]} is not a role; roles: {', '.join(ROLES)}")


def _check_no_paths(data: Mapping[str, Any], where: Path | str) -> None:
    """A recipe never names a server path (data.root, checkpoints): the caller fills those."""
    forbidden = _all_path_keys()
    sections: list[tuple[str, Any]] = [("config", data.get("config") or {})]
    sections += [(f"kinds.{k}", v or {}) for k, v in (data.get("kinds") or {}).items()]
    sections += [(f"grid.roles.{k}", v or {}) for k, v in ((data.get("grid") or {}).get("roles") or {}).items()]
    for prefix, section in sections:
        if not isinstance(section, Mapping):
            raise RecipeError(f"{where}: {prefix} must be a mapping")
        for dotted in _leaves(section):
            if dotted in forbidden or any(dotted.startswith(p + ".") for p in forbidden):
                raise RecipeError(f"{where}: {prefix}.{dotted} is a server path; recipes never name paths "
                                  "(the caller sets data.root and checkpoints)")


def kinds_of(recipe: Mapping[str, Any]) -> tuple[str, ...]:
    """The kinds a recipe resolves for: every training/evaluation kind (the shared ``config`` reaches them all)
    and a worker-only kind (synthesize) when the recipe has its section."""
    own = set(recipe.get("kinds") or {})
    return tuple(k.name for k in kind_registry.KINDS.values() if k.cli or own & set(k.sections()))


def recipe_names(root: Path = CONFIGS_DIR) -> list[str]:
    """Names of the recipes under ``root`` (files whose name starts with ``_`` are bases only, not listed)."""
    return [path.relative_to(root).with_suffix("").as_posix() for path in sorted(root.rglob(f"*{SUFFIX}"))
            if not path.name.startswith("_")]


def list_recipes(root: Path = CONFIGS_DIR) -> list[RecipeInfo]:
    """Every recipe under ``root`` with its description and the kinds it resolves for."""
    out = []
    for name in recipe_names(root):
        recipe = load(name, root=root)
        out.append(RecipeInfo(name, str(recipe.get("description", "")), kinds_of(recipe), "grid" in recipe))
    return out


def merge_for_kind(recipe: Mapping[str, Any], kind: str, *, role: str | None = None) -> dict[str, Any]:
    """The recipe's config dict for ``kind`` (and grid ``role``), before overrides and paths."""
    spec = kind_registry.get(kind)
    fields = set(spec.config_class().model_fields)
    data: dict[str, Any] = copy.deepcopy(spec.defaults)
    shared = recipe.get("config") or {}
    data = deep_merge(data, {k: v for k, v in shared.items() if k in fields})
    sections = recipe.get("kinds") or {}
    for section in (*spec.sections(), "*"):
        data = deep_merge(data, sections.get(section) or {})
    if role is not None:
        roles = (recipe.get("grid") or {}).get("roles") or {}
        if role not in ROLES:
            raise RecipeError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        data = deep_merge(data, roles.get(role) or {})
    data.update({k: v for k, v in spec.defaults.items() if not isinstance(v, Mapping)})  # "kind" is the kind's
    return data


def resolve_dict(name: str | Mapping[str, Any], kind: str, overrides: Mapping[str, Any] | list[str] | None = None, *,
                 role: str | None = None, paths: Mapping[str, Any] | None = None,
                 root: Path = CONFIGS_DIR) -> dict[str, Any]:
    """Recipe ``name`` (or an already loaded recipe) resolved for ``kind``: an unvalidated config dict."""
    recipe = load(name, root=root) if isinstance(name, str) else name
    data = merge_for_kind(recipe, kind, role=role)
    if isinstance(overrides, list):
        data = apply_overrides(data, overrides)
    elif overrides:
        data = deep_merge(data, overrides)
    for dotted, value in (paths or {}).items():
        if value is not None:
            set_dotted(data, dotted, str(value))
    return data


def _where(recipe: str | Mapping[str, Any], root: Path) -> str:
    return str(_path_of(recipe, root).relative_to(root.parent)) if isinstance(recipe, str) else "the given recipe"


def resolve(name: str | Mapping[str, Any], kind: str, overrides: Mapping[str, Any] | list[str] | None = None, *,
            role: str | None = None, paths: Mapping[str, Any] | None = None, root: Path = CONFIGS_DIR) -> BaseModel:
    """Recipe ``name`` resolved for ``kind`` and validated by its config class.

    Raises RecipeError naming the recipe file and every invalid dotted key."""
    data = resolve_dict(name, kind, overrides, role=role, paths=paths, root=root)
    try:
        return kind_registry.config_class(kind).model_validate(data)  # type: ignore[no-any-return]
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors())
        raise RecipeError(f"{_where(name, root)} ({kind}): {problems}") from err


def grid_facts(name: str, *, root: Path = CONFIGS_DIR) -> dict[str, Any]:
    """The ``grid:`` section of a grid recipe (budget facts beyond the per-kind configs)."""
    grid = load(name, root=root).get("grid")
    if not isinstance(grid, dict):
        raise RecipeError(f"{_where(name, root)}: not a grid recipe (no grid: section)")
    return grid
