"""benchmarks/gpu_check.py runs end to end on a tiny model on CPU (the same code path as on a GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def run_check(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_tiny_gpu_check_on_cpu_prints_one_summary(tmp_path):
    summary_file = tmp_path / "summary.json"
    result = run_check(
        "--tiny", "--device", "cpu", "--threads", "1", "--repeats", "1",
        "--train-steps", "2", "--batch-size", "2", "--json", str(summary_file),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[0])
    assert json.loads(summary_file.read_text()) == summary

    assert summary["model"] == "tiny" and summary["dtype"] == "float32"
    assert summary["steps"] == 25 and summary["resolution"] == 32
    assert 0 < summary["fill_s"] < 60
    assert summary["background_unchanged"]  # a real fill: pixels outside the selection are kept
    assert summary["train_steps"] == 2 and 0 < summary["s_per_step"] < 60
    assert summary["loss_finite"] and summary["loss"] > 0
    assert summary["optimizer"] == "AdamW" and summary["attention"] == "sdpa"
    assert summary["fill_peak_vram_gib"] is None  # no VRAM on CPU, and no goal verdict either
    assert summary["goals"] == {"fill_s": None, "fill_peak_vram_gib": None}
    assert lines[1].startswith("model tiny")
    assert lines[2].startswith("fill: 25 steps at 32x32")
    assert lines[3].startswith("training: batch 2")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here")
def test_cuda_requested_without_a_gpu_is_a_clear_error():
    result = run_check("--device", "cuda")
    assert result.returncode == 2
    assert result.stderr.strip() == "gpu_check: no CUDA device here; use --device cpu (with --tiny)"
