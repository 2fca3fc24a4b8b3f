"""Helpers for *Speeding up maximum likelihood estimation with JAX and JIT*.

Small modules, each named for what it holds:

- :mod:`mlejax_helpers.config`: the size knob (``MLEJAX_SIZE``) and float64 set-up
- :mod:`mlejax_helpers.timing`: compile time vs run time, honestly measured
- :mod:`mlejax_helpers.plotting`: contour plots with optimiser paths, log-log plots
- :mod:`mlejax_helpers.convex`: test functions and optimality checks
- :mod:`mlejax_helpers.logit`: plain (binary and multinomial) logit data and likelihoods
- :mod:`mlejax_helpers.quasi_newton`: gradient descent, Newton, BFGS and SR1
- :mod:`mlejax_helpers.findiff`: finite-difference derivatives
- :mod:`mlejax_helpers.autodiff`: forward (dual numbers) and reverse (tape) mode AD
- :mod:`mlejax_helpers.mixed_logit`: the mixed logit model by simulated ML
"""

from .config import enable_x64, pick, size

__all__ = ["enable_x64", "pick", "size"]
__version__ = "0.1.0"
