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
