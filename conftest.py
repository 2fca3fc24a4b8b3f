"""Run every notebook small under pytest unless the caller chose a size.

Kernels started by nbmake inherit this environment, so `MLEJAX_SIZE=full pytest`
still runs the chapters at full size.
"""

import os

os.environ.setdefault("MLEJAX_SIZE", "small")


def pytest_collection_modifyitems(config, items):
    """Chapters run through nbmake count as slow: `pytest -m "not slow"` skips them."""
    import pytest

    for item in items:
        if item.nodeid.endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)
