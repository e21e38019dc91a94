"""kernels.als_fit / als_fold_in / als_loss against numpy.

The oracle is the textbook solve per row in float64 (numpy.linalg.solve of
(Y'C_uY + reg I) x = Y'C_u p_u on the dense confidence row). Factors are
float32, so kernel and oracle agree to 1e-4 (relative, with an absolute
floor of 1e-5 for entries near zero); the loss is checked against the
dense formula to 1e-5 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels import als

DTYPES = (np.float32, np.float64)
SOLVERS = ("cg", "cholesky")
RTOL, ATOL = 1e-4, 1e-5


def confidence_matrix(
    n_users=60, n_items=40, density=0.15, *, dtype=np.float32, seed=0, empty=True
) -> sp.csr_matrix:
    """Random confidences 1 + 4 * count, a few below 1, with an empty user and item."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    values = 1.0 + 4.0 * rng.integers(0, 4, size=(n_users, n_items))
    values[rng.random((n_users, n_items)) < 0.1] = 0.5  # confidence below 1
    dense = np.where(mask, values, 0.0)
    if empty:
        dense[3] = 0.0  # a user with no interactions
        dense[:, 5] = 0.0  # an item nobody touched
    return sp.csr_matrix(dense.astype(dtype))


def initial_factors(seed, n_users, n_items, factors):
    """The documented initialisation: uniform [0, 0.01), users then items."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_users, factors), dtype=np.float32) * np.float32(0.01)
    Y = rng.random((n_items, factors), dtype=np.float32) * np.float32(0.01)
    return X, Y


def exact_solve(C: sp.csr_matrix, Y: np.ndarray, regularization: float) -> np.ndarray:
    """Every row's exact ALS solution against fixed Y, densely, in float64."""
    dense = C.toarray().astype(np.float64)
    Y = Y.astype(np.float64)
    confidence = np.where(dense > 0, dense, 1.0)
    preference = (dense > 0).astype(np.float64)
    out = np.empty((C.shape[0], Y.shape[1]))
    for u in range(C.shape[0]):
        A = Y.T @ (confidence[u][:, None] * Y) + regularization * np.eye(Y.shape[1])
        out[u] = np.linalg.solve(A, Y.T @ (confidence[u] * preference[u]))
    return out


def dense_loss(C, X, Y, regularization) -> float:
    """The loss straight from its definition, over the dense matrix."""
    dense = C.toarray().astype(np.float64)
    confidence = np.where(dense > 0, dense, 1.0)
    preference = (dense > 0).astype(np.float64)
    X, Y = X.astype(np.float64), Y.astype(np.float64)
    data = np.sum(confidence * (preference - X @ Y.T) ** 2)
    return float(data + regularization * (np.sum(X**2) + np.sum(Y**2)))


def fit(C, **kwargs):
    options = {"factors": 6, "regularization": 0.1, "random_state": 7, "num_threads": 1}
    options.update(kwargs)
    return kernels.als_fit(C, **options)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_exact_sweep_equals_the_numpy_solve(dtype):
    C = confidence_matrix(dtype=dtype)
    X, Y = fit(C, iterations=1, solver="cholesky")
    assert X.dtype == Y.dtype == np.float32
    _, Y0 = initial_factors(7, *C.shape, 6)
    np.testing.assert_allclose(X, exact_solve(C, Y0, 0.1), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(Y, exact_solve(C.T.tocsr(), X, 0.1), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cg_with_many_steps_converges_to_the_exact_solution(dtype):
    C = confidence_matrix(dtype=dtype)
    exact = fit(C, iterations=2, solver="cholesky")
    converged = fit(C, iterations=2, solver="cg", cg_steps=30)
    for ours, expected in zip(converged, exact):
        np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-4)
    # A few steps are close but not there yet: the steps are really taken.
    rough = fit(C, iterations=1, solver="cg", cg_steps=1)
    assert not np.allclose(rough[0], fit(C, iterations=1, solver="cholesky")[0], atol=1e-3)


@pytest.mark.parametrize("factors", (16, 64, 150))
def test_cg_converges_to_the_exact_solution_at_every_vector_width(factors):
    """The CG kernel has a register-resident loop per width up to 128 floats
    (16: rows copied as whole vectors; 64: four segments) and a generic one
    beyond (150 pads to 160). A strong regularization keeps these systems,
    with more factors than items, well conditioned enough for float32 CG to
    converge."""
    C = confidence_matrix(n_users=50, n_items=45)
    options = {"factors": factors, "regularization": 5.0, "iterations": 2}
    exact = fit(C, solver="cholesky", **options)
    converged = fit(C, solver="cg", cg_steps=40, **options)
    for ours, expected in zip(converged, exact):
        np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_never_rises_from_sweep_to_sweep(solver, dtype):
    C = confidence_matrix(n_users=80, n_items=50, dtype=dtype, seed=3)
    calls = []
    fit(C, iterations=8, solver=solver, compute_loss=True,
        callback=lambda *args: calls.append(args))
    assert [call[0] for call in calls] == list(range(8))
    assert all(seconds >= 0 for _, seconds, _ in calls)
    losses = np.array([loss for _, _, loss in calls])
    assert np.all(np.diff(losses) <= 1e-6 * losses[:-1])
    assert losses[-1] < 0.9 * losses[0]


def test_callback_gets_no_loss_unless_asked():
    calls = []
    fit(confidence_matrix(), iterations=2, callback=lambda *args: calls.append(args))
    assert [loss for _, _, loss in calls] == [None, None]


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_matches_the_dense_formula(dtype):
    C = confidence_matrix(dtype=dtype, seed=5)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((C.shape[0], 4)).astype(np.float32)
    Y = rng.standard_normal((C.shape[1], 4)).astype(dtype)
    loss = kernels.als_loss(C, X, Y, 0.3)
    assert isinstance(loss, float)
    assert loss == pytest.approx(dense_loss(C, X, Y.astype(np.float32), 0.3), rel=1e-5)
    assert kernels.als_loss(C, X, Y, 0.0) == pytest.approx(
        dense_loss(C, X, Y.astype(np.float32), 0.0), rel=1e-5
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_fold_in_of_an_existing_user_reproduces_its_vector(dtype):
    C = confidence_matrix(dtype=dtype, seed=2)
    X, _ = fit(C, iterations=3, solver="cholesky")
    # The last sweep solved users against the item factors of two sweeps.
    _, Y_before = fit(C, iterations=2, solver="cholesky")
    rows = [0, 3, 17, 42]
    folded = kernels.als_fold_in(C[rows], Y_before, regularization=0.1, solver="cholesky")
    assert folded.dtype == np.float32 and folded.shape == (4, 6)
    np.testing.assert_allclose(folded, X[rows], rtol=RTOL, atol=ATOL)
    assert not folded[1].any()  # user 3 has no interactions


def test_cg_fold_in_warm_starts_from_given_user_factors():
    C = confidence_matrix(seed=4)
    X, Y = fit(C, iterations=4, solver="cg")
    exact = kernels.als_fold_in(C, Y, regularization=0.1, solver="cholesky")
    many_steps = kernels.als_fold_in(C, Y, regularization=0.1, solver="cg", cg_steps=30)
    np.testing.assert_allclose(many_steps, exact, rtol=1e-3, atol=1e-4)
    cold = kernels.als_fold_in(C, Y, regularization=0.1, cg_steps=1)
    warm = kernels.als_fold_in(C, Y, regularization=0.1, cg_steps=1, user_factors=X)
    assert np.abs(warm - exact).max() < np.abs(cold - exact).max()
    # A new user with a history gets a vector that ranks that history highly.
    history = sp.csr_matrix(C[10].toarray())
    vector = kernels.als_fold_in(history, Y, regularization=0.1, solver="cholesky")[0]
    seen = history.indices
    unseen = np.setdiff1d(np.arange(C.shape[1]), seen)
    assert (Y[seen] @ vector).mean() > (Y[unseen] @ vector).mean()


def test_same_semantics_as_implicit():
    """Same matrix, seed and solver as implicit's AlternatingLeastSquares: same model.

    The exact solver agrees to float32 precision. Three CG steps from a warm
    start are a truncated iteration that amplifies rounding differences
    (dot-product order), so CG is compared on the loss and loosely on factors.
    """
    implicit_als = pytest.importorskip("implicit.cpu.als")
    from threadpoolctl import threadpool_limits

    C = confidence_matrix(n_users=70, n_items=45, seed=6)
    for solver in SOLVERS:
        with threadpool_limits(1, "blas"):
            model = implicit_als.AlternatingLeastSquares(
                factors=6, regularization=0.1, iterations=3, use_cg=solver == "cg",
                random_state=7, num_threads=1,
            )
            model.fit(C, show_progress=False)
        X, Y = fit(C, iterations=3, solver=solver)
        tolerance = {"rtol": 1e-3, "atol": 1e-4} if solver == "cholesky" else {"atol": 0.05}
        np.testing.assert_allclose(X, model.user_factors, **tolerance)
        np.testing.assert_allclose(Y, model.item_factors, **tolerance)
        assert kernels.als_loss(C, X, Y, 0.1) == pytest.approx(
            kernels.als_loss(C, model.user_factors, model.item_factors, 0.1), rel=1e-3
        )


def planted_implicit_data(seed=0):
    """Users and items in 5 hidden groups; users buy mostly within their group."""
    rng = np.random.default_rng(seed)
    n_users, n_items, groups = 300, 150, 5
    user_group = rng.integers(0, groups, n_users)
    item_group = rng.integers(0, groups, n_items)
    popularity = rng.pareto(1.5, n_items) + 1.0
    rows, cols = [], []
    for u in range(n_users):
        own = np.flatnonzero(item_group == user_group[u])
        p = popularity[own] / popularity[own].sum()
        liked = rng.choice(own, size=10, replace=False, p=p)
        noise = rng.choice(n_items, size=2, replace=False)
        items = np.unique(np.concatenate([liked, noise]))
        rows.extend([u] * len(items))
        cols.extend(items)
    rows, cols = np.array(rows), np.array(cols)
    test = rng.random(rows.size) < 0.25
    train = sp.csr_matrix((np.ones((~test).sum()), (rows[~test], cols[~test])),
                          shape=(n_users, n_items))
    held_out = sp.csr_matrix((np.ones(test.sum()), (rows[test], cols[test])),
                             shape=(n_users, n_items))
    return train, held_out


def precision_at(recommended: np.ndarray, held_out: sp.csr_matrix, k: int) -> float:
    hits = [np.isin(recommended[u, :k], held_out[u].indices).sum() / k
            for u in range(held_out.shape[0]) if held_out[u].nnz]
    return float(np.mean(hits))


@pytest.mark.parametrize("solver", SOLVERS)
def test_planted_low_rank_data_is_recovered(solver):
    train, held_out = planted_implicit_data()
    C = train.copy()
    C.data = 1.0 + 20.0 * C.data
    X, Y = kernels.als_fit(C, factors=8, regularization=1.0, iterations=10, solver=solver,
                           random_state=0)
    recommended, _ = kernels.top_n(X, Y, 10, exclude=train)
    popular = np.argsort(-np.asarray(train.sum(axis=0)).ravel(), kind="stable")
    baseline = np.array([
        popular[~np.isin(popular, train[u].indices)][:10] for u in range(train.shape[0])
    ])
    als_precision = precision_at(recommended, held_out, 10)
    popular_precision = precision_at(baseline, held_out, 10)
    assert als_precision > 0.15
    assert als_precision > 2.0 * popular_precision


@pytest.mark.parametrize("solver", SOLVERS)
def test_users_and_items_without_interactions_get_zero_vectors(solver):
    C = confidence_matrix()
    X, Y = fit(C, iterations=2, solver=solver)
    assert not X[3].any() and not Y[5].any()
    assert np.abs(X).sum(axis=1)[np.diff(C.indptr) > 0].min() > 0


@pytest.mark.parametrize("solver", SOLVERS)
def test_one_item(solver):
    C = sp.csr_matrix(np.array([[3.0], [0.0], [1.0], [5.0]]))
    X, Y = fit(C, factors=2, iterations=3, solver=solver)
    assert X.shape == (4, 2) and Y.shape == (1, 2)
    scores = (X @ Y.T).ravel()
    assert scores[1] == 0.0 and scores[3] > scores[0] > 0


@pytest.mark.parametrize("solver", SOLVERS)
def test_more_factors_than_items(solver):
    C = confidence_matrix(n_users=30, n_items=4, density=0.5, empty=False)
    calls = []
    X, Y = fit(C, factors=10, iterations=4, solver=solver, compute_loss=True,
               callback=lambda *args: calls.append(args[2]))
    assert X.shape == (30, 10) and Y.shape == (4, 10)
    assert np.isfinite(X).all() and np.isfinite(Y).all()
    assert np.all(np.diff(calls) <= 1e-6 * np.abs(calls[:-1]))
    if solver == "cholesky":
        _, Y_before = fit(C, factors=10, iterations=3, solver="cholesky")
        np.testing.assert_allclose(X, exact_solve(C, Y_before, 0.1), rtol=1e-3, atol=1e-4)


def test_empty_matrix_gives_zero_factors():
    X, Y = fit(sp.csr_matrix((5, 3), dtype=np.float32), iterations=2)
    assert X.shape == (5, 6) and Y.shape == (3, 6)
    assert not X.any() and not Y.any()


@pytest.mark.parametrize("solver", SOLVERS)
def test_deterministic_for_a_seed_and_independent_of_threads(solver):
    C = confidence_matrix(n_users=200, n_items=90, seed=8)
    first = fit(C, iterations=3, solver=solver, num_threads=1)
    again = fit(C, iterations=3, solver=solver, num_threads=1)
    threaded = fit(C, iterations=3, solver=solver, num_threads=2)
    for a, b, c in zip(first, again, threaded):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    other_seed = fit(C, iterations=3, solver=solver, random_state=8)
    assert not np.array_equal(first[1], other_seed[1])


def test_float64_and_float32_confidences_give_the_same_factors():
    C = confidence_matrix(dtype=np.float64)
    for a, b in zip(fit(C, iterations=2), fit(C.astype(np.float32), iterations=2)):
        np.testing.assert_array_equal(a, b)


def test_rows_longer_than_the_gather_buffer(monkeypatch):
    """Rows with more non-zeros than a thread's buffer are processed in chunks."""
    C = confidence_matrix(n_users=150, n_items=120, density=0.6, seed=9)
    reference_fit = fit(C, iterations=2, solver="cg")
    monkeypatch.setattr(als, "_GATHER_BYTES", 1)  # buffer of 64 rows
    for a, b in zip(fit(C, iterations=2, solver="cg"), reference_fit):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_reference_fallback_gives_the_same_factors(monkeypatch, solver):
    # CG run to convergence: truncated CG amplifies rounding-order differences.
    C = confidence_matrix(seed=10)
    native = fit(C, iterations=2, solver=solver, cg_steps=30)
    native_loss = kernels.als_loss(C, *native, 0.1)
    monkeypatch.setattr(als, "native_module", lambda name: None)
    fallback = fit(C, iterations=2, solver=solver, cg_steps=30)
    for a, b in zip(fallback, native):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert kernels.als_loss(C, *native, 0.1) == pytest.approx(native_loss, rel=1e-6)


def test_explicit_zeros_are_no_interaction_and_duplicates_are_summed():
    C = confidence_matrix(seed=11)
    coo = C.tocoo()
    with_zeros = sp.coo_matrix(
        (np.concatenate([coo.data, [0.0, 0.0]]),
         (np.concatenate([coo.row, [3, 4]]), np.concatenate([coo.col, [5, 5]]))),
        shape=C.shape,
    ).tocsr()
    for a, b in zip(fit(with_zeros, iterations=2), fit(C, iterations=2)):
        np.testing.assert_array_equal(a, b)
    halves = sp.coo_matrix(
        (np.concatenate([coo.data / 2, coo.data / 2]),
         (np.tile(coo.row, 2), np.tile(coo.col, 2))), shape=C.shape,
    )
    for a, b in zip(fit(halves, iterations=2), fit(C, iterations=2)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda C: fit(C.multiply(np.nan).tocsr()), "NaN"),
        (lambda C: fit(C.multiply(np.inf).tocsr()), "infinite"),
        (lambda C: fit(-C), "negative"),
        (lambda C: fit(C.toarray()), "scipy.sparse"),
        (lambda C: fit(C, factors=0), "factors"),
        (lambda C: fit(C, iterations=0), "iterations"),
        (lambda C: fit(C, cg_steps=0), "cg_steps"),
        (lambda C: fit(C, regularization=-1.0), "regularization"),
        (lambda C: fit(C, solver="lu"), "solver"),
        (lambda C: fit(C, random_state="seed"), "random_state"),
        (lambda C: fit(C, callback=3), "callback"),
        (lambda C: fit(C, num_threads=-1), "num_threads"),
        (lambda C: fit(sp.csr_matrix(np.array([[1e300]]))), "too large for float32"),
        (lambda C: kernels.als_loss(C, np.ones((2, 3)), np.ones((40, 3)), 0.1), "shapes"),
        (lambda C: kernels.als_loss(C, np.ones((60, 3)), np.ones((40, 2)), 0.1), "shapes"),
        (lambda C: kernels.als_loss(C, np.ones((60, 3)), np.full((40, 3), np.nan), 0.1),
         "item_factors contains NaN"),
        (lambda C: kernels.als_loss(C, np.ones(60), np.ones((40, 3)), 0.1), "2-D"),
        (lambda C: kernels.als_fold_in(C, np.ones((39, 3))), "columns"),
        (lambda C: kernels.als_fold_in(C, np.ones((40, 0))), "factor column"),
        (lambda C: kernels.als_fold_in(C, np.ones((40, 3)), user_factors=np.ones((5, 3))),
         "user_factors must have shape"),
        (lambda C: kernels.als_fold_in(C.multiply(-1).tocsr(), np.ones((40, 3))), "negative"),
        (lambda C: kernels.als_fold_in(C, np.ones((40, 3)), solver="exact"), "solver"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_problem(call, message):
    C = confidence_matrix()
    with pytest.raises(ValueError, match=message):
        call(C)

