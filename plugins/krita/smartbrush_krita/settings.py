"""The docker's settings, kept in kritarc (group "SmartBrush") between sessions."""

from __future__ import annotations

from krita import Krita

from smartbrush.wire import editing, protocol

GROUP = "SmartBrush"
DEFAULT_START_COMMAND = "smartbrush serve"


def load(docker) -> None:
    """Put the saved settings into the docker's widgets (defaults: the protocol's)."""
    app = Krita.instance()

    def read(key: str, default: str) -> str:
        return app.readSetting(GROUP, key, default)

    docker.negative.setText(read("negative_prompt", ""))
    docker.auto_precision.setChecked(read("precision_auto", "true") == "true")
    docker.precision.setValue(_int(read("precision", "0"), 0))
    docker.steps.setValue(_int(read("steps", ""), _default("steps")))
    docker.random_seed.setChecked(read("random_seed", "true") == "true")
    docker.seed.setValue(_int(read("seed", "0"), 0))
    docker.seed.setEnabled(not docker.random_seed.isChecked())
    docker.variations.setValue(_int(read("variations", ""), _default("variations")))
    detail = docker.detail.findData(read("detail", _default("detail")))
    docker.detail.setCurrentIndex(
        detail if detail >= 0 else docker.detail.findData(_default("detail"))
    )
    docker.endpoint.setText(read("endpoint", ""))
    docker.start_command.setText(read("start_command", DEFAULT_START_COMMAND))


def save(docker) -> None:
    """Keep the docker's settings (not the prompt) for the next session."""
    app = Krita.instance()
    values = {
        "negative_prompt": docker.negative.text(),
        "precision_auto": "true" if docker.auto_precision.isChecked() else "false",
        "precision": str(docker.precision.value()),
        "steps": str(docker.steps.value()),
        "random_seed": "true" if docker.random_seed.isChecked() else "false",
        "seed": str(docker.seed.value()),
        "variations": str(docker.variations.value()),
        "detail": docker.detail.currentData(),
        "start_command": docker.start_command.text().strip(),
    }
    endpoint = docker.endpoint.text().strip()
    if editing.endpoint_problem(endpoint) is None:  # a stray key typed there is not kept
        values["endpoint"] = endpoint
    for key, value in values.items():
        app.writeSetting(GROUP, key, value)


def _default(name: str):
    return protocol.FILL_OPTIONS[name].default


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default
