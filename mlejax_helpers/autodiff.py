r"""Automatic differentiation by hand: forward mode (dual numbers) and reverse mode (a tape).

Write a scalar function of scalar arguments with ``+ - * / **`` and this
module's :func:`sin`, :func:`cos`, :func:`exp`, :func:`log`; then

>>> from mlejax_helpers import autodiff as ad
>>> f = lambda x1, x2: x1 * x2 + ad.sin(x1)
>>> ad.forward_grad(f, [1.0, 2.0])   # n forward passes, one per input
array([2.54030231, 1.        ])
>>> ad.reverse_grad(f, [1.0, 2.0])   # one forward pass + one backward sweep
array([2.54030231, 1.        ])

Forward mode carries a tangent :math:`\dot w = \partial w / \partial x \cdot v` with every
value (a :class:`Dual`). Reverse mode records every operation on a :class:`Tape`
(a Wengert list) and sweeps it backwards accumulating adjoints
:math:`\bar w = \partial y / \partial w`.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validate import as_vector, check_callable


class _Node:
    """Arithmetic shared by Dual and Var; subclasses supply ``_unary`` and ``_binary``."""

    __array_ufunc__ = None  # np.sin(dual) raises TypeError instead of looping over objects

    def __add__(self, o):
        return self._binary(o, lambda a, b: a + b, lambda a, b: (1.0, 1.0))

    def __sub__(self, o):
        return self._binary(o, lambda a, b: a - b, lambda a, b: (1.0, -1.0))

    def __mul__(self, o):
        return self._binary(o, lambda a, b: a * b, lambda a, b: (b, a))

    def __truediv__(self, o):
        return self._binary(o, lambda a, b: a / b, lambda a, b: (1.0 / b, -a / b**2))

    def __radd__(self, o):
        return self + o

    def __rmul__(self, o):
        return self * o

    def __rsub__(self, o):
        return self._lift(o) - self

    def __rtruediv__(self, o):
        return self._lift(o) / self

    def __neg__(self):
        return self._unary(lambda a: -a, lambda a: -1.0)

    def __pow__(self, p):
        if not isinstance(p, numbers.Real):
            raise TypeError(f"only constant real exponents are supported, got {type(p).__name__}")
        return self._unary(lambda a: a**p, lambda a: p * a ** (p - 1))


class Dual(_Node):
    """A value ``val`` with its tangent ``dot`` (floats, or NumPy arrays of one shape)."""

    def __init__(self, val, dot=0.0):
        self.val, self.dot = val, dot

    def __repr__(self):
        return f"Dual(val={self.val!r}, dot={self.dot!r})"

    def _lift(self, o):
        return o if isinstance(o, Dual) else Dual(_const(o), 0.0)

    def _unary(self, fn, dfn):
        return Dual(fn(self.val), dfn(self.val) * self.dot)

    def _binary(self, o, fn, dfn):
        o = self._lift(o)
        da, db = dfn(self.val, o.val)
        return Dual(fn(self.val, o.val), da * self.dot + db * o.dot)


class Tape:
    """A Wengert list: ``nodes[k] = (value, ((parent_index, local_partial), ...))``."""

    def __init__(self):
        self.nodes = []

    def var(self, value, parents=()):
        self.nodes.append((value, tuple(parents)))
        return Var(self, len(self.nodes) - 1, value)

    def backward(self, out):
        """One reverse sweep from ``out``: returns the adjoint of every node."""
        adjoint = np.zeros(len(self.nodes))
        adjoint[out.index] = 1.0
        for k in range(out.index, -1, -1):
            for parent, partial in self.nodes[k][1]:
                adjoint[parent] += partial * adjoint[k]
        return adjoint


class Var(_Node):
    """A scalar recorded on a :class:`Tape` at position ``index``."""

    def __init__(self, tape, index, value):
        self.tape, self.index, self.value = tape, index, value

    def __repr__(self):
        return f"Var(w{self.index}={self.value!r})"

    def _lift(self, o):
        if isinstance(o, Var):
            if o.tape is not self.tape:
                raise ValueError("cannot combine variables recorded on different tapes")
            return o
        return self.tape.var(_const(o))

    def _unary(self, fn, dfn):
        return self.tape.var(fn(self.value), [(self.index, dfn(self.value))])

    def _binary(self, o, fn, dfn):
        o = self._lift(o)
        da, db = dfn(self.value, o.value)
        return self.tape.var(fn(self.value, o.value), [(self.index, da), (o.index, db)])


def _const(o):
    if isinstance(o, _Node):
        raise TypeError(f"cannot mix {type(o).__name__} with another kind of AD value")
    if not isinstance(o, (numbers.Real, np.ndarray)):
        raise TypeError(f"unsupported operand: {type(o).__name__}; expected a real number")
    return o


def elementary(name, np_fn, derivative, domain=None):
    """Build ``name`` for floats, arrays, Dual and Var; ``derivative`` uses this module's ops,
    so duals of duals (second derivatives) work too."""

    def op(x):
        if domain is not None:
            value = x
            while isinstance(value, _Node):
                value = value.val if isinstance(value, Dual) else value.value
            if np.any(~domain(np.asarray(value, dtype=float))):
                raise ValueError(f"{name} is undefined at {value}")
        if isinstance(x, _Node):
            return x._unary(op, derivative)
        return np_fn(_const(x))

    op.__name__ = name
    op.__doc__ = f"``{name}`` for floats, arrays, :class:`Dual` and :class:`Var`."
    return op


sin = elementary("sin", np.sin, lambda a: cos(a))
cos = elementary("cos", np.cos, lambda a: -sin(a))
exp = elementary("exp", np.exp, lambda a: exp(a))
log = elementary("log", np.log, lambda a: 1.0 / a, domain=lambda a: a > 0)


def _output(y, kind):
    if isinstance(y, numbers.Real):
        return None  # f does not depend on its inputs
    if not isinstance(y, kind):
        raise TypeError(f"f must return a scalar built from its arguments, got {type(y).__name__}")
    return y


def forward_jvp(f, x, v):
    """Directional derivative ``grad f(x) . v`` in one forward pass."""
    x, v = as_vector(x, "x"), as_vector(v, "v", len(as_vector(x, "x")))
    y = _output(check_callable(f, "f")(*[Dual(a, b) for a, b in zip(x, v, strict=True)]), Dual)
    return 0.0 if y is None else float(y.dot)


def forward_grad(f, x):
    """Gradient of ``f(*x)`` by forward mode: ``len(x)`` passes, seeds ``e_1, ..., e_n``."""
    x = as_vector(x, "x")
    return np.array([forward_jvp(f, x, np.eye(len(x))[j]) for j in range(len(x))])


def reverse_grad(f, x):
    """Gradient of ``f(*x)`` by reverse mode: one recorded pass, one backward sweep."""
    x = as_vector(x, "x")
    tape = Tape()
    inputs = [tape.var(float(a)) for a in x]
    y = _output(check_callable(f, "f")(*inputs), Var)
    if y is None:
        return np.zeros(len(x))
    adjoint = tape.backward(y)
    return np.array([adjoint[v.index] for v in inputs])
