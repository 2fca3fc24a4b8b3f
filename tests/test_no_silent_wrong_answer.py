"""Bad or unusual input to the panel estimator: a clear error or a correct answer, never a
silent wrong one (issue 21's probes, one test each)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.mixed_logit import panel as pn
from mlejax_helpers.mixed_logit import panel_data as pdata
from mlejax_helpers.mixed_logit.diagnostics import GRAD_TOL, require_optimum, unidentified
from mlejax_helpers.mixed_logit.model import default_start

COLS = {"person": "person", "situation": "situation", "alternative": "alt", "choice": "choice"}


def _simulated(model, theta, persons=120, situations=4, alts=3, seed=1):
    df = pdata.simulate_panel(model, theta, persons, situations, alts, seed=seed)
    data = pdata.from_long(df, model, **COLS)
    return df, data


def test_data_built_in_another_attribute_order_is_refused():
    model = ml.MixedLogit(("a", "b"), {"a": "n"})
    df, _ = _simulated(model, [1.0, -1.0, 0.5], persons=10)
    swapped = pdata.from_long(df, ml.MixedLogit(("b", "a"), {"a": "n"}), **COLS)
    draws = pdata.panel_draws(10, 5, 1, "pseudo")
    with pytest.raises(ValueError, match=r"data's attributes \('b', 'a'\) are not the model's"):
        pn.neg_loglik(default_start(model), model, swapped, draws)
    with pytest.raises(ValueError, match="are not the model's"):
        ml.fit(model, swapped, draws=draws)


def test_a_large_attribute_scale_never_reports_success_away_from_an_optimum():
    model = ml.MixedLogit(("a", "b"), {"a": "n"})
    df, data = _simulated(model, [1.0, -1.0, 0.5], persons=100)
    draws = pdata.panel_draws(100, 50, 1, "halton", seed=3)
    for scale in (1.0, 1e4, 1e6):
        big = pdata.from_long(df.assign(b=df.b * scale), model, **COLS)
        fit = ml.fit(model, big, draws=draws, se=False)  # L-BFGS-B: once "success" 0.65 above
        assert fit.success == (fit.scaled_gradient <= GRAD_TOL)
        assert fit.success or scale > 1, fit.message  # in its own units it converges
        if not fit.success:
            assert "not converged: scaled gradient" in fit.message
            continue
        # the same point in b's own units: BFGS from there finds no lower -LL
        same = fit.theta * np.array([1.0, scale, 1.0])
        assert float(pn.neg_loglik(same, model, data, draws)) == pytest.approx(-fit.loglik)
        polished = ml.fit(model, data, draws=draws, start=same, method="BFGS", se=False)
        assert polished.loglik < fit.loglik + 1e-4


def test_utility_differences_past_700_give_the_exact_likelihood_and_gradient():
    model = ml.MixedLogit(("a", "b"), {"a": "n"})
    df, _ = _simulated(model, [1.0, -1.0, 0.5], persons=8, situations=2)
    df = df.assign(b=np.where(df.alt == 1, 900.0, df.b))  # v differs by about 900
    data = pdata.from_long(df, model, **COLS)
    draws = pdata.panel_draws(8, 6, 1, "pseudo", seed=2)
    theta = jnp.array([0.3, 1.0, 0.4])
    beta = np.asarray(pn.coefficients(theta, model, draws)[0])  # (P, R, K)
    v = np.einsum("ptjk,prk->ptjr", data.x, beta)
    chosen = np.take_along_axis(v, data.chosen[:, :, None, None], 2)[:, :, 0]
    log_p = chosen - logsumexp(v, axis=2)  # (P, T, R), every alternative available
    exact = -np.sum(logsumexp(log_p.sum(axis=1), axis=1) - np.log(draws.shape[1]))
    value, grad = pn.value_and_grad(theta, model, data, draws)
    assert float(value) == pytest.approx(exact, rel=1e-12)
    np.testing.assert_allclose(grad, jax.grad(pn.neg_loglik)(theta, model, data, draws), 1e-9)


@pytest.mark.parametrize(
    "change, lost",
    [
        (lambda df: df.assign(c=1.0), ["c"]),  # the same in every alternative
        (lambda df: df.assign(c=2.0 * df.b), ["b", "c"]),  # collinear with b
    ],
)
def test_a_parameter_that_is_not_identified_is_named(change, lost):
    model = ml.MixedLogit(("a", "b", "c"), {"a": "n"})
    df, _ = _simulated(ml.MixedLogit(("a", "b", "c")), [1.0, -1.0, 0.5], persons=60)
    data = pdata.from_long(change(df), model, **COLS)
    draws = pdata.panel_draws(60, 20, 1, "halton")
    fit = ml.fit(model, data, draws=draws)
    assert not fit.success and f"not identified: parameter(s) {lost}" in fit.message
    with pytest.raises(ValueError, match="no standard errors for this fit: the fit did not"):
        fit.summary()
    h = jax.hessian(pn.neg_loglik)(fit.theta, model, data, draws)
    with pytest.raises(ValueError, match=rf"parameter\(s\) {lost!r}".replace("[", r"\[")):
        require_optimum(np.zeros(len(fit.theta)), h, model.param_names)
    with pytest.raises(ValueError, match="BHHH start needs a nonsingular"):
        ml.fit(model, data, draws=draws, method="BFGS")


def test_unidentified_is_scale_free_and_names_only_the_culprits():
    h = np.diag([1e12, 1.0, 3.0])  # a parameter of large scale is still identified
    assert unidentified(h, ["a", "b", "c"]) == []
    h[2, 2] = 0.0
    assert unidentified(h, ["a", "b", "c"]) == ["c"]


def test_no_standard_errors_away_from_an_optimum():
    model = ml.MixedLogit(("a", "b"), {"a": "n"})
    _, data = _simulated(model, [1.0, -1.0, 0.5], persons=80)
    draws = pdata.panel_draws(80, 20, 1, "halton")
    fit = ml.fit(model, data, draws=draws, method="BFGS")
    assert fit.success, fit.message
    assert np.all(np.isfinite(fit.summary().to_numpy()))
    near = fit.theta + np.array([0.05, -0.05, 0.02])  # the Hessian is still positive definite
    grad = jax.grad(pn.neg_loglik)(near, model, data, draws)
    h = jax.hessian(pn.neg_loglik)(near, model, data, draws)
    assert np.linalg.eigvalsh(h)[0] > 0
    with pytest.raises(ValueError, match="is not an optimum: the scaled gradient"):
        require_optimum(grad, h, model.param_names)
    stopped = ml.fit(model, data, draws=draws, method="BFGS", maxiter=1)
    assert not stopped.success and "not converged: scaled gradient" in stopped.message
    with pytest.raises(ValueError, match="no standard errors for this fit: the fit did not"):
        stopped.cov("robust")


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: ml.MixedLogit("price"), TypeError, "got the string 'price'"),
        (lambda: ml.MixedLogit(("price", 3)), TypeError, "must hold strings"),
        (
            lambda: ml.MixedLogit(("price", "sd.price"), {"price": "n"}),
            ValueError,
            r"parameter name\(s\) \['sd.price'\] would appear twice",
        ),
        (
            lambda: ml.MixedLogit(("a", "b"), [("a", "n"), ("a", "ln")]),
            ValueError,
            r"random names \['a'\] more than once",
        ),
        (lambda: ml.MixedLogit(("a",), "a"), TypeError, "random must be a dict"),
    ],
)
def test_model_names_are_checked(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_delta_method_refuses_float32():
    g = lambda theta: -theta[1] / theta[0]  # noqa: E731
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(RuntimeError, match="jax_enable_x64 is off"):
            pn.delta_method(g, [-2.0, 1.0], np.eye(2))
    finally:
        jax.config.update("jax_enable_x64", True)
    value, _ = pn.delta_method(g, [-2.0, 1.0], np.eye(2))
    assert value == 0.5


def test_willingness_to_pay_names_what_is_wrong():
    model = ml.MixedLogit(("p", "q"), {"p": "ln"})
    _, data = _simulated(model, [-1.0, 1.0, 0.3], persons=40)
    res = ml.fit(model, data, n_draws=10, se=False)
    with pytest.raises(ValueError, match="attribute 'r' is not one of the model's"):
        ml.willingness_to_pay(res, "r", "p")
    with pytest.raises(ValueError, match="price 'p' has a lognormal coefficient"):
        ml.willingness_to_pay(res, "q", "p")


def test_draws_and_long_data_errors_are_clear():
    assert pdata.panel_draws(5, 10, 0, kind="xlogit-halton").shape == (5, 10, 0)
    model = ml.MixedLogit(("a", "b"), {"a": "n"})
    df, data = _simulated(model, [1.0, -1.0, 0.5], persons=6)
    with pytest.raises(ValueError, match="df has no rows"):
        pdata.from_long(df.iloc[:0], model, **COLS)
    mixed = df.assign(person=[str(p) if p % 2 else p for p in df.person])
    with pytest.raises(TypeError, match=r"column 'person' mixes types \['int', 'str'\]"):
        pdata.from_long(mixed, model, **COLS)
    draws = pdata.panel_draws(6, 4, 1, "pseudo")
    draws[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="draws must be finite: 1 NaN"):
        pn.neg_loglik(default_start(model), model, data, draws)
    with pytest.raises(ValueError, match="n_random must be an integer >= 0"):
        pdata.panel_draws(5, 10, -1)


@pytest.fixture(scope="module")
def small_fit():
    model = ml.MixedLogit(("a", "b"), {"a": "n"})
    df, data = _simulated(model, [1.0, -1.0, 0.5], persons=60)
    return model, df, data, ml.fit(model, data, n_draws=10)


def test_results_refuse_other_data_unnested_models_and_unconverged_fits(small_fit):
    model, df, data, res = small_fit
    assert res.success, res.message
    fixed = ml.MixedLogit(("a", "b"))
    logit = ml.fit(fixed, data, n_draws=10, se=False)
    assert ml.lr_test(logit, res).df == 1  # nested: a fixed coefficient is a zero sd
    only_a = ml.MixedLogit(("a",), {"a": "n"})  # b dropped: data built for it, same choices
    dropped = ml.fit(only_a, pdata.from_long(df, only_a, **COLS), n_draws=10, se=False)
    assert ml.lr_test(dropped, res).df == 1
    with pytest.raises(ValueError, match="simulated with other draws"):
        ml.lr_test(dropped, ml.fit(model, data, n_draws=10, seed=3, se=False))
    rescaled = pdata.from_long(df.assign(b=df.b * 2.0), fixed, **COLS)  # same choices
    with pytest.raises(ValueError, match=r"attribute\(s\) \['b'\] hold other values"):
        ml.lr_test(ml.fit(fixed, rescaled, n_draws=10, se=False), res)
    _, data2 = _simulated(fixed, [1.0, -1.0], persons=60, seed=2)
    with pytest.raises(ValueError, match="fitted to different choices"):
        ml.lr_test(ml.fit(fixed, data2, n_draws=10, se=False), res)
    other_model = ml.MixedLogit(("a", "b"), {"a": "ln", "b": "n"})  # a lognormal, not normal
    with pytest.raises(ValueError, match="unrestricted must nest restricted"):
        ml.lr_test(res, ml.fit(other_model, data, n_draws=10, se=False))
    with pytest.raises(ValueError, match="attribute and price must differ"):
        ml.willingness_to_pay(res, "a", "a")
    with pytest.raises(ValueError, match="other persons than the fit's"):
        ml.conditional_means(res, pdata.from_long(df[df.person < 30], model, **COLS))
    stopped = ml.fit(model, data, n_draws=10, maxiter=1, se=False)
    with pytest.raises(ValueError, match="the fit did not converge, so its estimate is no optimum"):
        ml.predict(stopped, data)
    with pytest.raises(TypeError, match="result must be a Result"):
        ml.conditional_means(None, data)


def test_save_keeps_dotted_names_apart_and_load_names_a_bad_file(small_fit, tmp_path):
    _, _, _, res = small_fit
    one, two = res.save(tmp_path / "run.v1"), res.save(tmp_path / "run.v2")
    assert one != two and ml.Result.load(tmp_path / "run.v1").loglik == res.loglik
    (tmp_path / "bad.json").write_text("{not json")
    np.savez(tmp_path / "bad.npz", theta=res.theta)
    with pytest.raises(ValueError, match=r"bad.json \(and its .npz\) is not a saved Result"):
        ml.Result.load(tmp_path / "bad")
    with pytest.raises(ValueError, match="path must name a file to write"):
        res.save(tmp_path)


def test_fit_arguments_are_checked_by_their_own_names(small_fit):
    model, df, data, res = small_fit
    with pytest.raises(TypeError, match="correlated must be True or False"):
        ml.MixedLogit(("a", "b"), {"a": "n"}, correlated="no")
    with pytest.raises(ValueError, match=r"theta must have shape \(3,\)"):
        ml.simulate_panel(model, [1.0, 2.0], 5, 2, 3)
    with pytest.raises(ValueError, match="theta must be finite"):
        ml.simulate_panel(model, [np.nan, 1.0, 0.5], 5, 2, 3)
    with pytest.raises(TypeError, match="data must be a PanelData"):
        ml.fit(model, df, n_draws=5)
    with pytest.raises(TypeError, match="draws must be a numeric array"):
        ml.fit(model, data, draws=None)
    with pytest.raises(ValueError, match="draws must be one of"):
        ml.fit(model, data, n_draws=5, draws="sobol")
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        ml.fit(model, data, n_draws=5, seed=None)
    with pytest.raises(ValueError, match="seed=4 has no use with draws given as an array"):
        ml.fit(model, data, draws=np.zeros((60, 5, 1)), seed=4)
    with pytest.raises(ValueError, match="cov must be one of"):
        res.summary(cov="sandwich")
    with pytest.raises(TypeError, match="outside_option must be True or False"):
        pdata.from_long(df, model, outside_option="yes", **COLS)
    by_name = {"sd.a": 0.5, "b": -1.0, "a": 1.0}  # a start by name, in any order
    again = ml.fit(model, data, n_draws=10, start=by_name, se=False)
    np.testing.assert_allclose(again.theta, res.theta, atol=1e-5)
    with pytest.raises(ValueError, match=r"missing: a start by name needs exactly"):
        ml.fit(model, data, n_draws=10, start={"a": 1.0})
