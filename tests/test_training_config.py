"""Every shipped training config loads, here and on Python 3.10 (tomli instead of tomllib)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

from smartbrush.research.autoencoder import build_autoencoder
from smartbrush.research.training import build_pipeline
from smartbrush.research.training_config import AUTOENCODER_DEFAULTS, DEFAULTS
from smartbrush.runtime.config import load_config

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs").glob("*.toml"))


def test_configs_are_shipped():
    assert {path.name for path in SHIPPED} >= {"tiny.toml", "demo.toml", "ablation.toml"}


AUTOENCODERS = [path for path in SHIPPED if path.stem.endswith("-autoencoder")]
MODELS = [path for path in SHIPPED if path not in AUTOENCODERS]


@pytest.mark.parametrize("path", MODELS, ids=[path.name for path in MODELS])
def test_every_shipped_config_loads_and_builds_its_model(path, tmp_path):
    config = load_config(path, defaults=DEFAULTS)
    assert set(config) == set(DEFAULTS)
    if config["model"]["vae"]:  # a latent model: its autoencoder (trained first) by its own config
        (autoencoder_config,) = [p for p in AUTOENCODERS if p.stem == f"{path.stem}-autoencoder"]
        vae = build_autoencoder(
            load_config(autoencoder_config, defaults=AUTOENCODER_DEFAULTS)["model"]
        )
        vae.save_pretrained(tmp_path / "vae")
        config["model"]["vae"] = str(tmp_path / "vae")
    pipe, noise_scheduler = build_pipeline(config)  # a real model of the config's architecture
    assert pipe.unet.config.sample_size * pipe.vae_scale_factor == config["model"]["resolution"]
    assert noise_scheduler.config.num_train_timesteps == 1000
    # x_0 clipped to [-1, 1] is right for pixels only: unit-variance latents reach +-4
    clip_range = pipe.scheduler.config.clip_sample_range
    # (a config that trains on from a model, model.init, has that model's autoencoder)
    assert clip_range >= 3 if pipe.vae is not None else clip_range == 1.0, clip_range
    if config["recipe"]["removal_fraction"]:
        assert pipe.config.removal_prompt


def _python_310() -> str | None:
    # pyenv's interpreter itself: its python3.10 shim on PATH refuses when 3.10 is not selected
    pyenv = Path.home() / ".pyenv" / "versions"
    found = sorted(pyenv.glob("3.10*/bin/python3.10")) if pyenv.is_dir() else []
    return str(found[-1]) if found else shutil.which("python3.10")


@pytest.mark.skipif(_python_310() is None, reason="no Python 3.10 interpreter on this machine")
def test_configs_load_on_python_310(tmp_path):
    venv = tmp_path / "py310"
    subprocess.run([_python_310(), "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # what pyproject.toml declares for Python < 3.11, and nothing else
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    below_311 = [d.split(";")[0] for d in dependencies if "python_version < '3.11'" in d]
    assert below_311, "pyproject.toml declares no dependency for Python 3.10"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *below_311],
        check=True,
    )
    check = (
        "import sys; sys.path.insert(0, sys.argv[1]); assert sys.version_info[:2] == (3, 10)\n"
        "from smartbrush.research.training_config import AUTOENCODER_DEFAULTS, DEFAULTS\n"
        "from smartbrush.runtime.config import load_config\n"
        "for path in sys.argv[2:]:\n"
        "    defaults = AUTOENCODER_DEFAULTS if path.endswith('-autoencoder.toml') else DEFAULTS\n"
        "    print(path, load_config(path, defaults=defaults)['train']['max_steps'])"
    )
    result = subprocess.run(
        [python, "-c", check, str(REPO), *map(str, SHIPPED)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(SHIPPED)
    assert f"{REPO / 'configs' / 'tiny.toml'} 4" in result.stdout


def test_the_loader_starts_from_the_defaults_and_checks_types(tmp_path):
    """The one loader (training and the daemon): no file is the defaults; overrides are typed by them."""
    defaults = {"run": {"name": "x", "steps": 1, "rate": 0.5, "fast": False}}
    assert load_config(None, defaults=defaults) == defaults
    config = load_config(None, ["run.name=123", "run.steps=2", "run.rate=1", "run.fast=true"],
                         defaults=defaults)  # fmt: skip
    assert config == {"run": {"name": "123", "steps": 2, "rate": 1.0, "fast": True}}
    assert defaults["run"]["steps"] == 1  # a copy
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "missing.toml", defaults=defaults)
    path = tmp_path / "c.toml"
    for text, message in [
        ("[run]\nsteps = 1.5\n", "c.toml: run.steps must be an integer, got 1.5"),
        ("[run]\nname = 5\n", "c.toml: run.name must be a string, got 5"),
        ("[run]\nfast = 1\n", "c.toml: run.fast must be true or false, got 1"),
        ("[run]\nspeed = 1\n", "c.toml: unknown config key run.speed; known keys: run.name"),
        ("[run\n", "c.toml: cannot parse config"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match=message.replace(".", r"\.")) as raised:
            load_config(path, defaults=defaults)
        assert "\n" not in str(raised.value)
