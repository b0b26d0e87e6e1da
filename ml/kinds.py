"""The one registry of job kinds (torch-free: configs and runners are imported lazily by dotted path).

Every kind a run, a job or a CLI sub-command can have is listed here once, with its facts:

- ``name``: the one spelling used by ml, the CLI, the API, the worker and the database;
- ``config``: ``"module:Class"`` of its pydantic config (``spec.config_class()`` imports it);
- ``runner``: ``"module:function"`` called as ``runner(config, out_dir=, callback=, should_stop=, resume=, rt=)``
  by :func:`ml.engine.run` (without ``rt`` for a kind with ``uses_runtime=False``: the worker-only ``synthesize``);
- ``needs``: the product a parent job must have produced (``None``: no parent); the accepted parent kinds
  are derived from it (:meth:`JobKind.parent_kinds`); ``parent_field`` is the dotted config key the
  parent's checkpoint goes to, ``parent_request`` the request field naming the parent job
  (``teacher_job_id`` for distill, ``source_job_id`` for the others), ``parent_required`` whether it must be given;
- ``produces``: what a completed run leaves (:data:`PCL_CHECKPOINT` usable as a KD teacher or fine-tune source,
  :data:`BACKBONE` usable as a retrieval/kNN source, :data:`CLASSIFIER` usable by /predict,
  :data:`RESULTS` only, :data:`DATASET`);
- ``defaults``: config values the kind implies before any recipe (``kind``, distill's ``alpha``);
- ``recipe_sections``: which ``kinds:`` sections of a recipe it reads, in order (distill reads pretrain's too);
- ``cli``/``cli_parent_flag``: whether ``python -m ml`` has a sub-command for it, and its option naming the parent.

API: ``KINDS`` (name -> :class:`JobKind`), :func:`get` (unknown name -> ValueError listing the valid ones),
:func:`kind_names`, :func:`parent_kinds`, :func:`producing`, :func:`config_class`.

Adding a kind: a config class, a runner, and one entry in ``_ENTRIES`` (the CLI sub-command, the engine's
dispatch, recipes and the service read it from here).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

PCL_CHECKPOINT = "pcl_checkpoint"  # a PCL network (backbone + pretext/projection heads): KD teacher, fine-tune source
BACKBONE = "backbone"  # a checkpoint whose backbone can be evaluated (retrieval, kNN)
CLASSIFIER = "classifier"  # a fine-tuned classifier POST /predict can serve
RESULTS = "results"  # metrics only
DATASET = "dataset"  # a rendered dataset
PRODUCTS = (PCL_CHECKPOINT, BACKBONE, CLASSIFIER, RESULTS, DATASET)


def import_object(dotted: str) -> Any:
    """``"package.module:attr"`` -> the attribute (imported on first use)."""
    module, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class JobKind:
    name: str
    title: str
    config: str
    runner: str
    produces: frozenset[str]
    needs: str | None = None
    parent_field: str | None = None
    parent_request: str = "source_job_id"
    parent_required: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    recipe_sections: tuple[str, ...] = ()
    cli: bool = True  # a ``python -m ml <name>`` sub-command
    cli_parent_flag: str | None = None  # its option naming the parent checkpoint (``--teacher``), if any
    uses_runtime: bool = True  # its config has data/runtime sections: run() seeds, picks the device, writes config.json

    def config_class(self) -> Any:
        return import_object(self.config)

    def runner_function(self) -> Any:
        return import_object(self.runner)

    def parent_kinds(self) -> tuple[str, ...]:
        """The kinds whose completed jobs this kind accepts as its parent, in registry order."""
        return producing(self.needs) if self.needs else ()

    def sections(self) -> tuple[str, ...]:
        return self.recipe_sections or (self.name,)


_ENTRIES = (
    JobKind("pretrain", "PCL teacher pretraining (VCP pretext + NCE contrastive)", "ml.config:PretrainConfig",
            "ml.engine.runner:run_pcl", frozenset({PCL_CHECKPOINT, BACKBONE}), defaults={"kind": "pretrain"}),
    JobKind("distill", "KD student: PCL losses + weighted KD terms against a frozen teacher", "ml.config:PretrainConfig",
            "ml.engine.runner:run_pcl", frozenset({PCL_CHECKPOINT, BACKBONE}), needs=PCL_CHECKPOINT,
            parent_field="distill.teacher_checkpoint", parent_request="teacher_job_id", parent_required=True,
            defaults={"kind": "distill", "distill": {"alpha": 1.0}}, recipe_sections=("pretrain", "distill"),
            cli_parent_flag="teacher"),
    JobKind("finetune", "fine-tune a pretrained backbone into an action classifier", "ml.config:FinetuneConfig",
            "ml.engine.runner:run_finetune", frozenset({BACKBONE, CLASSIFIER}), needs=PCL_CHECKPOINT,
            parent_field="source_checkpoint", cli_parent_flag="source"),
    JobKind("retrieve", "nearest-neighbour video retrieval on frozen features", "ml.config:RetrieveConfig",
            "ml.engine.runner:run_retrieve", frozenset({RESULTS}), needs=BACKBONE, parent_field="checkpoint",
            cli_parent_flag="checkpoint"),
    JobKind("knn", "weighted kNN top-1/top-5 on frozen features (train list as the memory bank)", "ml.config:KnnConfig",
            "ml.engine.knn:run_knn", frozenset({RESULTS}), needs=BACKBONE, parent_field="checkpoint",
            cli_parent_flag="checkpoint"),
    JobKind("import", "an external checkpoint (PCL/VCOP or torchvision) mapped onto our modules: a teacher or source",
            "ml.import_spec:ImportConfig", "ml.importers:run_import", frozenset({PCL_CHECKPOINT, BACKBONE}), cli=False,
            uses_runtime=False),
    JobKind("synthesize", "render a synthetic action dataset (worker only)", "ml.synthetic_spec:SynthesizeConfig",
            "ml.engine.runner:run_synthesize", frozenset({DATASET}), cli=False, uses_runtime=False),
)

KINDS: dict[str, JobKind] = {k.name: k for k in _ENTRIES}


def kind_names(*, cli: bool | None = None) -> tuple[str, ...]:
    return tuple(k.name for k in KINDS.values() if cli is None or k.cli == cli)


def get(name: str) -> JobKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown job kind {name!r}; valid kinds: {', '.join(KINDS)}") from None


def producing(product: str) -> tuple[str, ...]:
    """Kinds whose completed runs produce ``product``."""
    return tuple(k.name for k in KINDS.values() if product in k.produces)


def parent_kinds(name: str) -> tuple[str, ...]:
    return get(name).parent_kinds()


def config_class(name: str) -> Any:
    return get(name).config_class()
