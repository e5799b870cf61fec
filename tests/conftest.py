import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)  # tests run beside daemons and editors: oversubscribed threads crawl


@pytest.fixture(scope="session")
def tiny_pixel_pipeline():
    from smartbrush.testing import tiny_pipeline

    pipe = tiny_pipeline(latent=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_latent_pipeline():
    from smartbrush.testing import tiny_pipeline

    pipe = tiny_pipeline(latent=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A model folder holding tiny_pipeline() (the weights of tiny_pixel_pipeline): what `--model`
    takes wherever a test needs a real random model by name (daemons started as processes included)."""
    from smartbrush.testing import save_tiny_pipeline

    return str(save_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny"))


@pytest.fixture(scope="module")
def daemon(tiny_pixel_pipeline):
    """An in-process daemon serving tiny_pixel_pipeline on a free loopback port, one per test module
    (the editor tests have their own: a daemon process for the editor to reach)."""
    from daemon_helpers import running_daemon

    with running_daemon(tiny_pixel_pipeline) as running:
        yield running
