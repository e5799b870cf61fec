"""benchmarks/ablation.py shares its work between concurrent runs through lock files."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"


def load_runner():
    spec = importlib.util.spec_from_file_location("ablation_runner", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_live_holder_keeps_its_lock_and_a_dead_ones_is_taken_over(tmp_path: Path) -> None:
    runner = load_runner()
    lock = tmp_path / "eval" / "full-0000.lock"
    assert runner.claim(lock)
    assert lock.read_text() == str(os.getpid())
    assert not runner.claim(lock)  # held by a live process (this one)

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    lock.write_text(finished.stdout.strip())  # as left by a killed run
    assert runner.claim(lock)
    assert lock.read_text() == str(os.getpid())


def test_training_counts_as_done_only_for_the_same_budget(tmp_path: Path) -> None:
    runner = load_runner()
    assert not runner.is_trained(tmp_path, 800)
    (tmp_path / "done").write_text("trained 400\n")
    assert not runner.is_trained(tmp_path, 800)
    (tmp_path / "done").write_text("trained 800\n")
    assert runner.is_trained(tmp_path, 800)
