r"""The EASE item-item weights (Steck 2019), with LAPACK through scipy.

For the Gram matrix :math:`G = X^\top X` of the n items kept and
:math:`\lambda` = ``l2``:

.. math::

    P = (G + \lambda I)^{-1}, \qquad B = I - P \,\mathrm{diag}(1 / \mathrm{diag}\, P)

so :math:`B_{ij} = -P_{ij} / P_{jj}` off the diagonal and :math:`B_{ii} = 0`.
:math:`G + \lambda I` is symmetric positive definite for :math:`\lambda > 0`,
so the inverse is a Cholesky factorisation and its inverse (LAPACK
``potrf`` then ``potri``), both in place in one n x n array: the Gram
matrix, its factor, P and B are the same memory. See docs/ease.md.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from ._threads import limit_blas_threads, resolve_num_threads
from ._validation import as_csr

__all__ = ["ease_weights", "gram_matrix"]

#: Rows of the symmetrising copy at a time (one strip of the upper triangle).
_STRIP = 1024

#: Arrays of this many bytes or more are factorised on one BLAS thread: the
#: threaded Cholesky (potrf) of the OpenBLAS that scipy bundles (32-bit
#: indices) segfaults on them (measured: float64 at 17,000 items, 2.3 GB,
#: crashes with 2 threads and works with 1; float32 at 20,000, 1.6 GB, works
#: threaded). Slower, never a crashed worker.
SINGLE_THREAD_BYTES = 2**31


def gram_matrix(X, *, dtype=np.float32) -> np.ndarray:
    """``X.T @ X`` as a dense, Fortran-ordered ``dtype`` array (n_items x n_items).

    Raises ValueError if X has a negative, NaN or infinite weight.
    """
    X = as_csr(X, "X")
    n = X.shape[1]
    gram = np.zeros((n, n), dtype=dtype, order="F")
    if X.nnz:
        # Column strips: the sparse product is never held whole.
        Xc = X.astype(np.float64).tocsc()
        rows = Xc.T.tocsr()
        for start in range(0, n, _STRIP):
            stop = min(n, start + _STRIP)
            gram[:, start:stop] = (rows @ Xc[:, start:stop]).toarray()
    return gram


def ease_weights(gram: np.ndarray, l2: float, *, num_threads: int = 0) -> np.ndarray:
    """EASE weights B from a Gram matrix, in place.

    Parameters
    ----------
    gram : ndarray, shape (n, n), float32 or float64
        ``X.T @ X`` (see :func:`gram_matrix`); symmetric. It is overwritten
        (Fortran order avoids a copy) and its memory returned as B.
    l2 : float > 0
        The ridge penalty :math:`\\lambda`.
    num_threads : int, 0 = all available cores
        BLAS/LAPACK threads (one for arrays of 2 GiB or more, see
        SINGLE_THREAD_BYTES).

    Returns
    -------
    ndarray, shape (n, n), the dtype of ``gram``, C-contiguous (the memory
    of ``gram``): B with a zero diagonal, ``B[i, j]`` the weight of item i
    in the score of item j.

    Raises
    ------
    ValueError
        ``l2`` is not a finite number > 0, ``gram`` is not square or holds
        NaN or infinity, or the factorisation fails (not positive definite:
        a Gram matrix with negative entries on its diagonal).
    """
    if isinstance(l2, bool) or not isinstance(l2, int | float | np.integer | np.floating) \
            or not np.isfinite(l2) or l2 <= 0:
        raise ValueError(f"l2 must be a finite number > 0, got {l2!r}")
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"gram must be a square matrix, got shape {gram.shape}")
    if gram.dtype not in (np.float32, np.float64):
        gram = gram.astype(np.float64)
    n = gram.shape[0]
    if n == 0:
        return gram
    if not np.isfinite(np.diag(gram)).all() or not np.isfinite(gram.sum()):
        raise ValueError("gram: entries must be finite (found NaN or infinity)")
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    diagonal = np.einsum("ii->i", gram)  # a view
    diagonal += l2
    threads = resolve_num_threads(num_threads)
    if gram.nbytes >= SINGLE_THREAD_BYTES:
        threads = 1
    with limit_blas_threads(threads):
        factor, info = potrf(gram, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise ValueError(
                f"EASE: the Gram matrix plus l2 is not positive definite (LAPACK potrf info={info})"
            )
        inverse, info = potri(factor, lower=False, overwrite_c=True)
        if info != 0:
            raise ValueError(f"EASE: the inverse failed (LAPACK potri info={info})")
    symmetrise_from_upper(inverse)
    # P is symmetric, so its transpose (a view) is P in C order: rows of B
    # are then contiguous for the scores x_u B, without a copy.
    P = inverse.T if inverse.flags.f_contiguous else inverse
    diagonal = np.einsum("ii->i", P).copy()
    P /= -diagonal[None, :]
    np.einsum("ii->i", P)[:] = 0.0
    return P


def symmetrise_from_upper(A: np.ndarray) -> None:
    """Copy the upper triangle of square ``A`` onto its lower one, in place, strip by strip."""
    n = A.shape[0]
    for start in range(0, n, _STRIP):
        stop = min(n, start + _STRIP)
        # Rows start:stop, columns before start: the transposed upper strip.
        A[start:stop, :start] = A[:start, start:stop].T
        block = A[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        block[lower] = block.T[lower]
