"""Recipes as files (configs/, ml.recipes): every file validates, inheritance and its errors, no server paths,
and the grid resolved from the files is, hash for hash, what the in-code presets produced before (pinned data)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ml import kinds, recipes
from ml.cli import build_config, build_parser
from ml.config import config_hash, path_fields

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

import reproduce  # noqa: E402

# Computed from the in-code presets (ml/cli.py TINY_PRESET, reproduce.PRESETS) before they moved to configs/,
# with data root /data/set and grid out /runs/grid.
PINNED = json.loads((Path(__file__).parent / "data" / "grid_config_hashes.json").read_text())
DATA, OUT = Path("/data/set"), Path("/runs/grid")


def _paths(kind: str) -> dict[str, str]:
    spec = kinds.get(kind)
    return {"data.root": "/data/set", **({spec.parent_field: "/runs/p.pt"} if spec.parent_field else {})}


@pytest.mark.parametrize("info", recipes.list_recipes(), ids=lambda r: r.name)
def test_every_recipe_file_validates_for_each_of_its_kinds(info: recipes.RecipeInfo) -> None:
    assert info.description, f"{info.name} has no description"
    for kind in info.kinds:
        if kind == "synthesize":  # worker-only: the server chooses its root
            pytest.importorskip("ml.synthetic_spec")
            recipes.resolve(info.name, kind, paths={"root": "/data/x"})
            continue
        cfg = recipes.resolve(info.name, kind, paths=_paths(kind))
        assert cfg.kind == kind


def test_recipes_list_the_reference_per_backbone_the_cpu_sizes_the_grids_and_the_demo() -> None:
    names = {r.name for r in recipes.list_recipes()}
    assert {"pcl/r3d", "pcl/c3d", "pcl/r21d", "pcl/r3d18", "tiny", "demo", "grid/tiny", "grid/small", "grid/ucf101"} <= names
    assert "pcl/_base" not in names  # underscore files are bases only
    for backbone in ("r3d", "c3d", "r21d", "r3d18"):
        ft = recipes.resolve(f"pcl/{backbone}", "finetune", paths=_paths("finetune"))
        assert (ft.model.backbone, ft.clip.frames, ft.clip.crop, ft.clip.normalize, ft.optim.epochs) == (backbone, 16, 112, False, 150)
    grids = {r.name: r.grid for r in recipes.list_recipes()}
    assert grids["grid/tiny"] and not grids["tiny"]


def test_base_inheritance_merges_in_order_and_refuses_cycles(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("description: a\nconfig: {optim: {lr: 0.5, epochs: 3}, model: {width: 0.5}}\n")
    (tmp_path / "b.yaml").write_text("description: b\nconfig: {optim: {epochs: 7}}\n")
    (tmp_path / "c.yaml").write_text("base: [a, b]\ndescription: c\nkinds: {pretrain: {optim: {batch_size: 2}}}\n")
    cfg = recipes.resolve("c", "pretrain", paths={"data.root": "/d"}, root=tmp_path)
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.optim.batch_size, cfg.model.width) == (0.5, 7, 2, 0.5)
    (tmp_path / "x.yaml").write_text("base: y\n")
    (tmp_path / "y.yaml").write_text("base: [a, x]\n")
    with pytest.raises(recipes.RecipeError, match=r"base cycle \(x.yaml -> y.yaml -> x.yaml\)"):
        recipes.load("x", root=tmp_path)
    with pytest.raises(recipes.RecipeError, match="unknown recipe 'nope'"):
        recipes.load("nope", root=tmp_path)
    (tmp_path / "typo.yaml").write_text("kinds: {pretrian: {optim: {lr: 1}}}\n")
    with pytest.raises(recipes.RecipeError, match=r"typo.yaml: kinds.pretrian is not a job kind"):
        recipes.load("typo", root=tmp_path)
    (tmp_path / "role.yaml").write_text("grid: {roles: {teachers: {}}}\n")
    with pytest.raises(recipes.RecipeError, match=r"grid.roles.teachers is not a role"):
        recipes.load("role", root=tmp_path)


def test_errors_name_the_file_and_the_dotted_key(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("description: bad\nkinds: {pretrain: {optim: {lr: -1, epochz: 2}}}\n")
    with pytest.raises(recipes.RecipeError) as err:
        recipes.resolve("bad", "pretrain", paths={"data.root": "/d"}, root=tmp_path)
    text = str(err.value)
    assert "bad.yaml" in text and "optim.lr" in text and "optim.epochz" in text


@pytest.mark.parametrize("body", ["config: {data: {root: /srv/videos}}",
                                  "kinds: {distill: {distill: {teacher_checkpoint: /x.pt}}}",
                                  "kinds: {finetune: {source_checkpoint: /x.pt}}",
                                  "grid: {roles: {teacher: {data: {splits_dir: /s}}}}"])
def test_a_recipe_naming_a_server_path_is_refused(tmp_path: Path, body: str) -> None:
    (tmp_path / "p.yaml").write_text(f"description: p\n{body}\n")
    with pytest.raises(recipes.RecipeError, match="is a server path"):
        recipes.load("p", root=tmp_path)


def test_no_shipped_recipe_names_a_path_field() -> None:
    forbidden = set().union(*(path_fields(kinds.config_class(k)) for k in kinds.kind_names(cli=True)))
    for info in recipes.list_recipes():
        merged = recipes.load(info.name)
        for kind in info.kinds:
            if kind in kinds.kind_names(cli=True):
                data = recipes.resolve_dict(merged, kind)
                leaves = set(recipes._leaves(data))
                assert not leaves & forbidden, (info.name, kind, leaves & forbidden)


def test_user_config_file_inherits_a_recipe_with_base(tmp_path: Path) -> None:
    mine = tmp_path / "my.yaml"
    mine.write_text("base: tiny\noptim: {epochs: 2}\ndistill: {terms: {contrastive: 0.5}}\n")
    args = build_parser().parse_args(["distill", "--config", str(mine), "--data-root", "/d", "--out", str(tmp_path / "o"),
                                      "--teacher", "/t.pt"])
    cfg = build_config("distill", args)
    assert (cfg.optim.epochs, cfg.optim.lr, cfg.clip.crop, cfg.contrast.negatives) == (2, 0.05, 32, 64)
    assert cfg.distill.terms == {"contrastive": 0.5} and cfg.distill.alpha == 1.0


def _cli_hash(kind: str, *argv: str) -> str:
    spec = kinds.get(kind)
    extra = [f"--{spec.cli_parent_flag}", "/runs/t.pt"] if spec.cli_parent_flag == "teacher" else []
    args = build_parser().parse_args([kind, "--out", "/runs/x", "--data-root", "/data/set", *extra, *argv])
    return config_hash(build_config(kind, args))


@pytest.mark.parametrize("kind", ["pretrain", "distill", "finetune"])
def test_cli_recipe_tiny_keeps_the_old_tiny_preset_hashes(kind: str) -> None:
    assert _cli_hash(kind, "--recipe", "tiny") == PINNED["cli"][kind]
    assert _cli_hash(kind, "--preset", "tiny") == PINNED["cli"][kind]  # the deprecated spelling
    assert _cli_hash(kind) == PINNED["cli"][f"{kind}-pcl"]


@pytest.mark.parametrize("preset", reproduce.PRESETS)
@pytest.mark.parametrize("grid", ["pair", "full"])
def test_grid_configs_from_files_equal_the_old_in_code_presets(preset: str, grid: str) -> None:
    """Every run of the grid (pretraining, fine-tune, random-init retrieval) hashes as it did with the in-code
    presets: the published result tables were produced by exactly these configs."""
    p = reproduce.Preset.load(preset)
    seeds = 3 if grid == "pair" else 2
    specs = reproduce.build_grid(grid, seeds)
    got = {}
    for s in specs:
        got[s.name] = config_hash(reproduce.pretrain_config(s, p, DATA, OUT))
        got[s.name + "-ft"] = config_hash(reproduce.finetune_config(s, p, DATA, OUT))
    for b in sorted({s.backbone for s in specs}):
        for seed in range(seeds):
            got[f"random-init-{b}-s{seed}"] = config_hash(reproduce.random_init_config(b, seed, p, DATA))
    assert got == PINNED[f"{grid}-{preset}"]


@pytest.mark.parametrize("role", ["teacher", "student", "baseline"])
def test_cli_and_reproduce_resolve_the_same_config_for_a_recipe_and_role(role: str) -> None:
    spec = next(s for s in reproduce.build_grid("pair", 1) if s.role == role)
    want = config_hash(reproduce.pretrain_config(spec, reproduce.Preset.load("tiny"), DATA, OUT))
    kind = "distill" if role == "student" else "pretrain"
    argv = [kind, "--recipe", "grid/tiny", "--role", role, "--data-root", str(DATA), "--out", "/runs/x",
            "--set", f"model.backbone={spec.backbone}", "--set", f"runtime.seed={spec.seed}",
            "--set", f"data.subset_seed={spec.seed}"]
    if role == "student":
        argv += ["--teacher", str(OUT / spec.teacher / "checkpoint.pt")]  # type: ignore[operator]
    assert config_hash(build_config(kind, build_parser().parse_args(argv))) == want


@pytest.mark.parametrize("grid", ["pair", "full"])
def test_kd_target_override_keeps_the_published_kd_pretext_grid_hashes(grid: str) -> None:
    p = reproduce.Preset.load("tiny", kd_target="pretext")
    students = [s for s in reproduce.build_grid(grid, 3 if grid == "pair" else 2) if s.role == "student"]
    got = {s.name: config_hash(reproduce.pretrain_config(s, p, DATA, OUT)) for s in students}
    assert got == PINNED[f"{grid}-tiny-kd-pretext"]
    assert all(reproduce.pretrain_config(s, p, DATA, OUT).distill.terms == {"pretext": 1.0} for s in students)


@pytest.mark.parametrize("table", sorted((ROOT / "docs" / "results").glob("*/results.md")), ids=lambda p: p.parent.name)
def test_published_tables_protocol_line_is_what_the_recipe_files_state(table: Path) -> None:
    grid, preset, *kd = table.parent.name.split("-")
    p = reproduce.Preset.load(preset, kd_target=kd[1] if kd else None)
    data = f"synthetic 6-class set (ml.synthetic, {p.videos_per_class} videos/class, whole groups held out)"
    assert table.read_text().splitlines()[0] == "Protocol: " + p.protocol(data)
