"""benchmarks/compat_mode.py on a tiny random model without a mask head (the real numbers come from the
ablation's trained baseline)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

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
    for name in ("off", "on"):
        metrics = report[name]
        assert metrics["background_psnr"] > 0
        assert 0 <= metrics["predicted_mask_iou"] <= 1
        assert 0 < metrics["repainted_fraction"] <= 1
    # off: the whole box is regenerated and pasted; on: only the (dilated) mask estimate inside it
    assert report["off"]["repainted_fraction"] > 0.99
    assert report["on"]["repainted_fraction"] <= report["off"]["repainted_fraction"]

    assert compat_mode.main(argv[:2] + ["--n", "1", "--steps", "2", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("compat mode, ") and "1 test scenes" in lines[0]
    assert lines[1].startswith("  preserve_background off: background PSNR")
    assert lines[2].startswith("  preserve_background on : background PSNR")


def test_refuses_models_with_a_mask_head_and_missing_models(compat_mode, tmp_path, capsys):
    with_head = tmp_path / "with-head"
    tiny_pipeline(mask_head=True).save_pretrained(with_head)
    assert compat_mode.main(["--model", str(with_head)]) == 2
    assert "has a mask head" in capsys.readouterr().err

    assert compat_mode.main(["--model", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert "no model at" in error and "ablation" in error

    assert compat_mode.main(["--model", str(with_head), "--guidance", "1"]) == 2
    assert "guidance must be above 1" in capsys.readouterr().err
