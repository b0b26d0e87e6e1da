"""The command line: validated configs with errors by dotted path, and a full synth -> pretrain -> predict round."""

import json

from ml.cli import build_config, build_parser, main


def test_bad_config_values_are_reported_by_path(tmp_path, capsys):
    code = main(["pretrain", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--set", "optim.lr=-1", "--set", "model.backbone=resnet50", "--set", "optim.epoch=3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "optim.lr: Input should be greater than 0 (got -1)" in err
    assert "model.backbone" in err and "'r3d', 'c3d', 'r21d', 'r3d18', 'r21d18' or 'r3d_small'" in err
    assert "optim.epoch: Extra inputs are not permitted" in err


def test_yaml_config_file_with_overrides(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(f"data:\n  root: {tmp_path}\noptim:\n  epochs: 7\n  lr: 0.2\nmodel:\n  backbone: c3d\n")
    args = build_parser().parse_args(["distill", "--config", str(cfg_file), "--out", str(tmp_path / "o"),
                                      "--teacher", str(tmp_path / "t.pt"), "--set", "optim.lr=0.05"])
    cfg = build_config("distill", args)
    assert cfg.optim.epochs == 7 and cfg.optim.lr == 0.05 and cfg.model.backbone == "c3d"
    assert cfg.distill.alpha == 1.0 and cfg.distill.teacher_checkpoint == tmp_path / "t.pt"


def test_distill_without_teacher_is_refused(tmp_path, capsys):
    assert main(["distill", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "teacher_checkpoint is required" in capsys.readouterr().err


def test_cli_round_trip(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "teacher"
    assert main(["pretrain", "--recipe", "tiny", "--data-root", str(tiny_dataset), "--out", str(out),
                 "--set", "optim.epochs=1", "--set", "runtime.max_steps_per_epoch=2", "--set", "data.workers=0",
                 "--set", "optim.batch_size=4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "completed" and "retrieval" in printed
    assert (out / "results.json").is_file() and (out / "checkpoint.pt").is_file()
    ft = tmp_path / "ft"
    assert main(["finetune", "--recipe", "tiny", "--data-root", str(tiny_dataset), "--out", str(ft), "--source",
                 str(out / "checkpoint.pt"), "--set", "optim.epochs=1", "--set", "data.workers=0",
                 "--set", "optim.batch_size=4", "--set", "val_videos=0"]) == 0
    capsys.readouterr()
    video = next((tiny_dataset / "videos").rglob("*.avi"))
    assert main(["predict", str(video), "--checkpoint", str(ft / "checkpoint.pt"), "--top-k", "2", "--clips", "2"]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert len(prediction["top_k"]) == 2 and prediction["clips"] == 2
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 1000)
    assert main(["predict", str(bad), "--checkpoint", str(ft / "checkpoint.pt")]) == 2
    assert "bad.avi" in capsys.readouterr().err
