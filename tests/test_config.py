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


def test_cpu_devices_refuses_once_jax_has_started_and_checks_its_argument():
    import jax

    jax.devices()  # JAX has started: the flag would be read never again
    with pytest.raises(RuntimeError, match="before JAX starts"):
        config.cpu_devices(2)
    for bad in (0, -1, 2.5, True, "2"):
        with pytest.raises(ValueError, match="positive whole number"):
            config.cpu_devices(bad)
