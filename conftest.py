"""Run every notebook small under pytest unless the caller chose a size.

Kernels started by tests/test_chapters.py inherit this environment, so `MLEJAX_SIZE=full pytest`
still runs the chapters at full size.
"""

import os

os.environ.setdefault("MLEJAX_SIZE", "small")
