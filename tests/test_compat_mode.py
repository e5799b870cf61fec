"""benchmarks/compat_mode.py on a tiny random model without a mask head (the real numbers come from the
ablation's trained baseline)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from smartbrush.testing import tiny_pipeline

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compat_mode.py"


@pytest.fixture(scope="module")
def compat_mode():
    spec = importlib.util.spec_from_file_location("compat_mode", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def no_mask_head_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compat") / "model"
    tiny_pipeline(mask_head=False, precision_conditioning=False).save_pretrained(folder)
    return folder


def test_reports_both_ways_and_preservation_repaints_less(compat_mode, no_mask_head_model, capsys):
    argv = ["--model", str(no_mask_head_model), "--n", "3", "--steps", "4", "--threads", "1"]
    assert compat_mode.main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3 and report["steps"] == 4
    for name in ("compat, preservation on", "compat, preservation off"):
        metrics = report[name]
        assert metrics["background_psnr"] > 0
        assert 0 <= metrics["predicted_mask_iou"] <= 1
        assert 0 < metrics["repainted_fraction"] <= 1
    # off: the whole box is regenerated and pasted; on: only the (dilated) mask estimate inside it
    on, off = report["compat, preservation on"], report["compat, preservation off"]
    assert off["repainted_fraction"] > 0.99
    assert on["repainted_fraction"] <= off["repainted_fraction"]
    assert "mask head" not in report

    assert compat_mode.main(argv[:2] + ["--n", "1", "--steps", "2", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("compat mode, ") and "1 test scenes" in lines[0]
    assert lines[1].startswith("  compat, preservation on   background PSNR")
    assert lines[2].startswith("  compat, preservation off  background PSNR")


def test_drop_mask_head_measures_the_same_denoiser_three_ways(compat_mode, tmp_path, capsys):
    with_head = tmp_path / "with-head"
    pipe = tiny_pipeline(mask_head=True)
    pipe.save_pretrained(with_head)
    argv = ["--model", str(with_head), "--n", "2", "--steps", "3", "--threads", "1"]
    assert compat_mode.main(argv) == 2
    error = capsys.readouterr().err
    assert "has a mask head" in error and "--drop-mask-head" in error

    compat = compat_mode.without_mask_head(compat_mode.load_model(str(with_head)))
    assert compat.unet.config.out_channels == 3
    x = torch.randn(1, 7, 32, 32)
    text = torch.randn(1, 16, 32)
    labels = torch.tensor([400.0])
    with torch.no_grad():  # the noise prediction is the original's, only the mask logit is gone
        expected = pipe.unet(x, 10, text, class_labels=labels).sample[:, :3]
        assert torch.allclose(compat.unet(x, 10, text, class_labels=labels).sample, expected)

    assert compat_mode.main([*argv, "--drop-mask-head", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = ["mask head", "compat, preservation on", "compat, preservation off"]
    assert [key for key in report if key in rows] == rows
    assert report["mask head"]["repainted_fraction"] <= 1


def test_refuses_missing_models_and_unguided_runs(
    compat_mode, no_mask_head_model, tmp_path, capsys
):
    assert compat_mode.main(["--model", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert "no model at" in error and "ablation" in error

    assert compat_mode.main(["--model", str(no_mask_head_model), "--guidance", "1"]) == 2
    assert "guidance must be above 1" in capsys.readouterr().err
