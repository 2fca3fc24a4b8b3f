import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mlejax_helpers.plotting import contour_with_paths  # noqa: E402


def test_log_levels_cover_negative_values():
    def f(x):
        return x[0] ** 2 + x[1] ** 2 - 1.0  # negative inside the unit circle

    ax = contour_with_paths(f, (-2, 2), (-2, 2), levels=12, log_levels=True)
    levels = np.concatenate([np.atleast_1d(c.levels) for c in ax.collections])
    assert levels.min() < 0 < levels.max()
    plt.close("all")
