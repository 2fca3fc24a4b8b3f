"""The general panel mixed logit: special case, gradients, loader errors, recovery, peers."""

import math

import jax
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from mlejax_helpers import apartments as apt
from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.apartments.likelihood import ATTRIBUTES as APARTMENT_ATTRIBUTES
from mlejax_helpers.apartments.xlogit_bridge import to_xlogit_long
from mlejax_helpers.mixed_logit import panel as pn
from mlejax_helpers.mixed_logit import panel_data as pdata
from mlejax_helpers.mixed_logit.model import default_start

COLS = {"person": "person", "situation": "situation", "alternative": "alt", "choice": "choice"}


def test_chapter_6_model_is_a_special_case_to_1e_12():
    d = apt.simulate(300, 5, 7, seed=3)
    model, data, draws = apt.to_mixed_logit(d)  # the outside option added by from_long
    assert model.param_names == (*APARTMENT_ATTRIBUTES, "sd.outdoor")
    x, y, ids, alts = to_xlogit_long(d)  # the outside option as an explicit all-zero row
    df = pd.DataFrame(x, columns=model.attributes).assign(person=ids, situation=ids, alt=alts)
    explicit = pdata.from_long(df.assign(choice=y), model, **COLS)
    for theta in (apt.THETA_TRUE, apt.THETA_START + 0.1):
        ch6_value, ch6_grad = apt.value_and_grad_analytic(theta, d)
        for one in (data, explicit):
            value, grad = pn.value_and_grad(theta, model, one, draws)
            assert float(value) == pytest.approx(float(ch6_value), rel=1e-12)
            np.testing.assert_allclose(grad, ch6_grad, rtol=1e-10, atol=1e-10)


def _messy():
    """Normal, lognormal and fixed coefficients, unbalanced panels, an unavailable
    alternative and an outside option, rows of one person not contiguous."""
    model = ml.MixedLogit(("a", "b", "c"), {"a": "n", "b": "ln"})
    df = pdata.simulate_panel(model, [0.5, -0.3, -1.0, 0.7, 0.4], 40, 4, 3, seed=2)
    df = df[~((df.person % 3 == 0) & (df.situation % 4 == 3))]  # some persons have 3 situations
    df = df.assign(avail=1)
    df.loc[df.index[5], ["avail", "choice"]] = [0, False]  # unavailable; that situation: outside
    df.loc[df.situation == 9, "choice"] = False  # chose the outside option
    return model, df.sample(frac=1.0, random_state=0)  # shuffled: non-contiguous persons


@pytest.mark.parametrize("correlated", [False, True])
def test_analytic_gradient_equals_autodiff_and_central_differences(correlated):
    model, df = _messy()
    model = ml.MixedLogit(model.attributes, dict(model.random), correlated)
    data = pdata.from_long(df, model, availability="avail", outside_option=True, **COLS)
    draws = pdata.panel_draws(40, 30, 2, "pseudo", seed=1)
    theta = default_start(model) + np.linspace(-0.3, 0.4, len(model.param_names))
    value, grad = pn.value_and_grad(theta, model, data, draws)
    v_ad, g_ad = jax.value_and_grad(pn.neg_loglik)(theta, model, data, draws)
    np.testing.assert_allclose(value, v_ad, rtol=1e-13)
    np.testing.assert_allclose(grad, g_ad, rtol=1e-9, atol=1e-9)
    h = 1e-5
    central = [
        (
            pn.neg_loglik(theta + h * e, model, data, draws)
            - pn.neg_loglik(theta - h * e, model, data, draws)
        )
        / (2 * h)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(grad, central, rtol=1e-6, atol=1e-6)
    scores = pn.value_and_scores(theta, model, data, draws)[1]
    per_person = jax.jacobian(lambda t: pn.log_lik_persons(t, model, data, draws))(theta)
    np.testing.assert_allclose(scores, per_person, rtol=1e-9, atol=1e-10)


def test_shuffled_rows_give_the_same_likelihood():
    model, df = _messy()
    kw = {"availability": "avail", "outside_option": True}
    a = pdata.from_long(df, model, **kw, **COLS)
    b = pdata.from_long(df.sort_values(["person", "situation", "alt"]), model, **kw, **COLS)
    draws = pdata.panel_draws(40, 20, 2, "halton")
    theta = default_start(model) + 0.2
    assert float(pn.neg_loglik(theta, model, a, draws)) == pytest.approx(
        float(pn.neg_loglik(theta, model, b, draws)), rel=1e-13
    )


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda df: df.drop(columns="b"), r"no column\(s\) \['b'\]"),
        (lambda df: df.assign(choice=True), "situation 0 has 3 chosen alternatives"),
        (lambda df: df.assign(choice=False), "situation 0 has 0 chosen alternatives"),
        (lambda df: df.assign(a=df.a.where(df.index != 4, np.nan)), "'a' must be finite"),
        (lambda df: df.assign(c=df.c.where(df.index != 4, np.inf)), "'c' must be finite"),
        (lambda df: df.assign(b="x"), "'b' must be numeric"),
        (lambda df: df.assign(choice=2 * df.choice), "must hold 0/1 or booleans"),
        (lambda df: df.assign(person=np.arange(len(df))), "has rows of several persons"),
        (lambda df: df.assign(alt=0), "lists one 'alt' twice"),
    ],
)
def test_from_long_names_what_is_wrong(change, match):
    model = ml.MixedLogit(("a", "b", "c"), {"a": "n"})
    df = pdata.simulate_panel(model, [1.0, -1.0, 0.5, 0.5], 5, 2, 3)
    with pytest.raises((ValueError, TypeError), match=match):
        pdata.from_long(change(df), model, **COLS)


def test_bad_model_and_arguments_are_refused():
    with pytest.raises(ValueError, match="not one of attributes"):
        ml.MixedLogit(("a",), {"b": "n"})
    with pytest.raises(ValueError, match=r"random\['a'\] must be one of"):
        ml.MixedLogit(("a",), {"a": "lognormal"})
    model, df = _messy()
    data = pdata.from_long(df, model, outside_option=True, **COLS)
    with pytest.raises(ValueError, match="draws must have shape"):
        pn.neg_loglik(default_start(model), model, data, np.zeros((40, 5, 3)))
    with pytest.raises(ValueError, match="theta"):
        pn.neg_loglik(np.zeros(3), model, data, np.zeros((40, 5, 2)))
    with pytest.raises(ValueError, match="method must be one of"):
        ml.fit(model, data, draws=np.zeros((40, 5, 2)), method="CG")
    with pytest.raises(ValueError, match="n_draws is needed"):
        ml.fit(model, data)
    with pytest.raises(ValueError, match="start must be a vector, None or 'mnl'"):
        ml.fit(model, data, n_draws=5, start="zeros")


def test_estimates_recover_the_truth_within_3_standard_errors():
    model = ml.MixedLogit(("a", "b", "c", "d"), {"a": "n", "b": "n", "c": "ln"})
    truth = np.array([1.0, -0.5, -1.0, 0.5, 0.8, 0.6, 0.4])
    df = pdata.simulate_panel(model, truth, 400, 8, 3, seed=5)
    data = pdata.from_long(df, model, **COLS)
    draws = pdata.panel_draws(400, 200, 3, "halton", seed=9)
    for method in ("L-BFGS-B", "BFGS"):  # they may stop at different local optima; both good
        fit = ml.fit(model, data, draws=draws, method=method)
        assert fit.success, fit.message  # our convergence test, not scipy's flag
        table = fit.summary()  # sd rows as |sd|: a standard deviation's sign is not identified
        z = (table.estimate - truth) / table.se
        assert np.all(np.abs(z) < 3), (method, table.assign(truth=truth, z=z))


def _result(model, theta, hessian, bhhh, **kw):
    fields = {"success": True, "message": "", "loglik": -100.0, "n_obs": 50, "n_persons": 10}
    fields.update(nit=1, nfev=1, scaled_gradient=0.0, compile_s=0.0, run_s=0.0, se_s=0.0)
    fields.update(method="BFGS", draws={"kind": "halton", "n_draws": 5, "seed": 0})
    return ml.Result(
        model, np.asarray(theta, float), hessian=hessian, bhhh=bhhh, **{**fields, **kw}
    )


def test_wtp_delta_method_against_the_hand_formula():
    model = ml.MixedLogit(("p", "q"), {"q": "n"})
    theta, cov = np.array([-2.0, 1.0, 0.5]), np.diag([0.04, 0.01, 0.02])
    res = _result(model, theta, np.linalg.inv(cov), np.linalg.inv(cov))
    value, se = ml.willingness_to_pay(res, "q", "p", cov="hessian")
    grad = np.array([-1.0 / 4.0, 1.0 / 2.0, 0.0])  # d(-q/p): (q/p^2, -1/p, 0)
    assert value == pytest.approx(0.5)
    assert se == pytest.approx(np.sqrt(grad @ cov @ grad), rel=1e-12)


def test_result_covariances_summary_and_save_load_round_trip(tmp_path):
    model = ml.MixedLogit(("p", "q"), {"q": "n"})
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    h, bb = a @ a.T + 3 * np.eye(3), b @ b.T + 3 * np.eye(3)
    res = _result(model, [-2.0, 1.0, -0.5], h, bb)
    np.testing.assert_allclose(res.cov("robust"), np.linalg.solve(h, bb) @ np.linalg.inv(h))
    table = res.summary("bhhh")
    assert list(table.index) == ["p", "q", "sd.q"] and table.loc["sd.q", "estimate"] == 0.5
    se = np.sqrt(np.diag(np.linalg.inv(bb)))
    np.testing.assert_allclose(table.se, se)
    np.testing.assert_allclose(table.z, np.array([-2.0, 1.0, 0.5]) / se)
    assert table.loc["p", "p"] == pytest.approx(2 * scipy.stats.norm.cdf(-2.0 / se[0]))
    assert res.aic == 206.0 and res.bic == pytest.approx(3 * np.log(50) + 200.0)
    back = ml.Result.load(res.save(tmp_path / "fit"))
    assert back.model == model and back.draws == res.draws and back.loglik == res.loglik
    for name in ("theta", "hessian", "bhhh"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    with pytest.raises(ValueError, match="kind must be one of"):
        res.cov("sandwich")
    none = _result(model, [0.0, 0.0, 0.1], None, None, cov_error="not computed (se=False)")
    with pytest.raises(ValueError, match=r"no standard errors for this fit: not computed"):
        none.summary()


def test_lr_test_against_the_hand_computation():
    model = ml.MixedLogit(("p", "q"), {"q": "n"})
    small = _result(ml.MixedLogit(("p", "q")), [-2.0, 1.0], None, None, loglik=-110.0)
    big = _result(model, [-2.0, 1.0, 0.5], None, None, loglik=-107.0)
    test = ml.lr_test(small, big)
    assert (test.statistic, test.df) == (6.0, 1)
    assert test.p == pytest.approx(math.erfc(math.sqrt(3.0)), rel=1e-12)  # chi2(1): erfc
    with pytest.raises(ValueError, match="worse local optimum"):
        ml.lr_test(small, _result(model, [-2.0, 1.0, 0.5], None, None, loglik=-120.0))
    with pytest.raises(ValueError, match="unrestricted must nest restricted with more"):
        ml.lr_test(big, small)
    with pytest.raises(ValueError, match="did not converge"):
        ml.lr_test(small, _result(model, [0, 0, 1], None, None, success=False))


def test_conditional_means_average_to_the_population_mean():
    model = ml.MixedLogit(("a", "b"), {"a": "n"})
    df = pdata.simulate_panel(model, [1.0, -1.0, 1.0], 300, 10, 3, seed=4)
    data = pdata.from_long(df, model, **COLS)
    draws = pdata.panel_draws(300, 200, 1, "halton")
    fit = ml.fit(model, data, draws=draws)
    cond = ml.conditional_means(fit, data, draws)["a"]
    assert list(cond.index) == sorted(df.person.unique())
    assert cond.mean() == pytest.approx(fit.theta[0], abs=0.1)
    assert 0 < cond.std() < abs(fit.theta[2])  # shrunk toward the mean, not collapsed
    with pytest.raises(ValueError, match="pass them as draws="):
        ml.conditional_means(fit, data)
    again = ml.fit(model, data, n_draws=50, se=False)
    by_spec = ml.conditional_means(again, data)  # the draws made again from the spec
    spec_draws = pdata.panel_draws(300, 50, 1, "halton", seed=0)
    np.testing.assert_array_equal(by_spec, ml.conditional_means(again, data, spec_draws))


def test_random_coefficients_keep_attribute_order_so_xlogit_draws_match():
    """xlogit gives its k-th Halton prime to the k-th random coefficient in attribute
    order; a random dict in another order once gave each coefficient the other's prime."""
    from mlejax_helpers import peers as panel_peers

    shuffled = ml.MixedLogit(("a", "b", "c"), {"c": "n", "a": "ln"})
    in_order = ml.MixedLogit(("a", "b", "c"), {"a": "ln", "c": "n"})
    assert shuffled == in_order and shuffled.random_index == (0, 2)
    assert shuffled.param_names == ("a", "b", "c", "sd.a", "sd.c")
    df = pdata.simulate_panel(in_order, [0.2, -1.0, 0.5, 0.3, 0.8], 30, 3, 3, seed=4)
    data = pdata.from_long(df, in_order, **COLS)
    draws = pdata.panel_draws(30, 25, 2, "xlogit-halton")  # column 0: prime 2, column 1: 3
    theta = np.array([0.2, -1.0, 0.5, 0.3, 0.8])
    # the column of prime 2 drives a: swapping the columns changes the likelihood
    ours = float(pn.neg_loglik(theta, shuffled, data, draws))
    assert ours == float(pn.neg_loglik(theta, in_order, data, draws))
    assert ours != pytest.approx(float(pn.neg_loglik(theta, in_order, data, draws[..., ::-1])))
    np.testing.assert_array_equal(panel_peers.to_peer(theta, shuffled), theta)
    names = ["a", "b", "c", "sd.a", "sd.c"]
    np.testing.assert_array_equal(panel_peers.from_peer(theta, names, shuffled), theta)
    with pytest.raises(ValueError, match="independent coefficients only"):
        panel_peers.to_peer(np.zeros(6), ml.MixedLogit(("a", "b"), {"a": "n", "b": "n"}, True))


def test_xlogit_halton_draws_equal_xlogits_own():
    from xlogit import MixedLogit

    ours = pdata.panel_draws(7, 11, 3, "xlogit-halton")
    theirs = MixedLogit()._generate_halton_draws(7, 11, 3)  # uniform, (N, K_r, R)
    from scipy.stats import norm

    np.testing.assert_array_equal(ours, np.moveaxis(norm.ppf(theirs), 1, 2))


@pytest.mark.slow
def test_electricity_ours_equals_xlogit_on_identical_draws():
    from mlejax_helpers import peers as panel_peers

    df = pdata.load_electricity()
    attrs = pdata.ELECTRICITY_ATTRIBUTES
    model = ml.MixedLogit(attrs, {a: "n" for a in attrs})
    data = pdata.from_long(df, model, **pdata.ELECTRICITY_COLUMNS)
    assert data.x.shape == (361, 12, 4, 6) and len(data.persons) == 361
    assert data.n_situations == df.chid.nunique()
    draws = pdata.panel_draws(361, 25, 6, "xlogit-halton")
    start = default_start(model)
    ours = ml.fit(model, data, draws=draws, start=start, se=False)
    theirs = panel_peers.fit_xlogit_panel(df, model, start, n_draws=25, **pdata.ELECTRICITY_COLUMNS)
    at_theirs = float(pn.neg_loglik(theirs["theta"], model, data, draws))
    assert at_theirs == pytest.approx(theirs["neg_loglik"], rel=1e-12)  # the same objective
    assert -ours.loglik == pytest.approx(theirs["neg_loglik"], rel=1e-6)


def test_padding_to_whole_blocks_leaves_the_likelihood_unchanged(monkeypatch):
    from mlejax_helpers.mixed_logit import fitting
    from mlejax_helpers.mixed_logit.sharding import consumer_mesh

    monkeypatch.setattr(pn, "BLOCK_ELEMENTS", 7 * 4 * 4 * 30)  # blocks of 7: 40 -> 42 persons
    model, df = _messy()
    data = pdata.from_long(df, model, availability="avail", outside_option=True, **COLS)
    draws = pdata.panel_draws(40, 30, 2, "pseudo", seed=1)
    arrays, placed_draws, weight = fitting.place_persons(data.arrays, draws, consumer_mesh())
    block = pn.block_size(arrays.x.shape[0], 4, 4, 30)
    assert arrays.x.shape[0] % block == 0 and weight.sum() == 40 < arrays.x.shape[0]
    theta = default_start(model) + 0.1
    program = fitting.evaluation_program(model, consumer_mesh(), "analytic")
    value, grad, _ = program(theta, arrays, placed_draws, weight)
    ref_value, ref_grad = pn.value_and_grad(theta, model, data, draws)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-10)


def test_mode_canada_unequal_choice_sets_and_the_padding_for_xlogit():
    """ModeCanada offers 2-4 modes: from_long reads a missing row as unavailable, and the
    rows with_every_alternative adds for xlogit (availability 0) leave the likelihood as it
    was; each traveller chose exactly one available mode."""
    from mlejax_helpers import peers as panel_peers

    mc = ml.load_mode_canada()
    assert mc.shape == (15520, 11) and (mc.groupby("case").choice.sum() == 1).all()
    mc = mc[mc.case <= 300].assign(asc_air=lambda d: (d.alt == "air").astype(float))
    model = ml.MixedLogit(("asc_air", "cost", "ivt"), {"ivt": "n"})
    cols = {"person": "case", "situation": "case", "alternative": "alt", "choice": "choice"}
    data = pdata.from_long(mc, model, **cols)
    padded = panel_peers.with_every_alternative(mc, situation="case", alternative="alt",
                                                choice="choice")  # fmt: skip
    assert len(padded) == 4 * mc.case.nunique() and padded.avail.sum() == len(mc)
    assert (padded.groupby("case").income.nunique() == 1).all()  # person-level, copied
    full = pdata.from_long(padded, model, availability="avail", **cols)
    draws = pdata.panel_draws(data.n_persons, 7, 1, "pseudo", seed=0)
    theta = np.array([0.5, -0.02, -0.01, 0.005])
    assert float(pn.neg_loglik(theta, model, full, draws)) == pytest.approx(
        float(pn.neg_loglik(theta, model, data, draws)), rel=1e-13
    )
