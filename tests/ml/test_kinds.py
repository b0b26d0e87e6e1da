"""The one registry of job kinds (ml.kinds): its facts, the CLI and the engine read it, and it stays torch-free."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from ml import kinds, recipes
from ml.catalog import CATALOG
from ml.cli import build_parser


def test_every_kind_is_listed_once_with_a_config_whose_kind_field_accepts_it() -> None:
    assert {"pretrain", "distill", "finetune", "retrieve", "synthesize"} <= set(kinds.kind_names())
    assert all(name == spec.name for name, spec in kinds.KINDS.items())
    for spec in kinds.KINDS.values():
        cls = spec.config_class()
        assert spec.name in typing.get_args(cls.model_fields["kind"].annotation), spec.name
        assert callable(spec.runner_function())
        assert spec.produces and spec.produces <= set(kinds.PRODUCTS)
    with pytest.raises(ValueError, match="unknown job kind 'evaluate'; valid kinds: pretrain, distill"):
        kinds.get("evaluate")  # one name per kind: the API's old "evaluate" is "retrieve"


def test_parents_are_derived_from_what_kinds_produce() -> None:
    assert kinds.parent_kinds("pretrain") == ()
    assert kinds.parent_kinds("distill") == ("pretrain", "distill", "import")  # import: an external teacher
    assert kinds.parent_kinds("finetune") == ("pretrain", "distill", "import")
    assert kinds.parent_kinds("retrieve")[:3] == ("pretrain", "distill", "finetune")
    assert kinds.producing(kinds.CLASSIFIER) == ("finetune",)
    assert kinds.producing(kinds.DATASET) == ("synthesize",)
    distill = kinds.get("distill")
    assert (distill.parent_request, distill.parent_field, distill.parent_required) == (
        "teacher_job_id", "distill.teacher_checkpoint", True)
    for name in ("finetune", "retrieve"):
        assert kinds.get(name).parent_request == "source_job_id"
    for spec in kinds.KINDS.values():  # the parent's checkpoint goes to a path-typed field of the config
        if spec.parent_field:
            from ml.config import path_fields

            assert spec.parent_field in path_fields(spec.config_class()), spec.name


def test_cli_sub_commands_are_generated_from_the_registry() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(kinds.kind_names(cli=True)) <= set(commands)
    assert "synthesize" not in commands  # worker-only
    for spec in kinds.KINDS.values():
        if spec.cli_parent_flag:
            args = parser.parse_args([spec.name, "--out", "/o", f"--{spec.cli_parent_flag}", "/p.pt"])
            assert str(getattr(args, spec.cli_parent_flag)) == "/p.pt"


def test_registries_and_recipes_import_without_torch() -> None:
    code = ("import sys, ml.kinds, ml.recipes, ml.kd_terms, ml.catalog; ml.recipes.list_recipes(); "
            "ml.recipes.resolve('tiny', 'distill', paths={'data.root': '/d', 'distill.teacher_checkpoint': '/t'}); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("backbone", sorted(CATALOG))
def test_catalog_default_clip_is_what_the_reference_recipe_states(backbone: str) -> None:
    cfg = recipes.resolve(f"pcl/{backbone}", "pretrain", paths={"data.root": "/d"})
    clip = cfg.clip.model_dump()
    assert {k: clip[k] for k in CATALOG[backbone].default_clip()} == CATALOG[backbone].default_clip()


def test_engine_run_dispatches_a_worker_only_kind_through_the_registry(tmp_path) -> None:
    from ml.engine import run
    from ml.synthetic_spec import SynthesizeConfig

    cfg = SynthesizeConfig(root=tmp_path / "set", classes=2, videos_per_class=2, frames=8, width=32, height=32)
    result = run(cfg, out_dir=tmp_path / "out")
    assert result.status == "completed" and result.results["kind"] == "synthesize"
    assert len(list((tmp_path / "set").rglob("*.avi"))) == 4
