import pytest

from mlejax_helpers import config


def test_pick_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MLEJAX_SIZE", "small")
    assert config.size() == "small"
    assert config.pick(1, 2) == 1
    monkeypatch.setenv("MLEJAX_SIZE", "full")
    assert config.pick(1, 2) == 2


def test_default_is_full(monkeypatch):
    monkeypatch.delenv("MLEJAX_SIZE", raising=False)
    assert config.size() == "full"


def test_unknown_size_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MLEJAX_SIZE", "huge")
    with pytest.raises(ValueError, match="MLEJAX_SIZE must be one of"):
        config.size()


def test_x64_is_enabled():
    import jax.numpy as jnp

    config.enable_x64()
    assert jnp.zeros(1).dtype == jnp.float64
