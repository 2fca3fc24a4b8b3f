import pytest

from mlejax_helpers import config

config.enable_x64()


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
