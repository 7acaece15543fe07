"""LIME's surrogates: weighted ridge fits from moments, batched across instances.

Private kernels of :mod:`engine.explain.lime`: samples are reduced to weighted
moments, then every surrogate is solved in one stacked ``numpy.linalg.solve``,
after lime's feature selection (forward selection or highest weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ALPHA = 1.0  # lime's default Ridge(alpha=1)
_HIGHEST_WEIGHTS_ALPHA = 0.01  # lime's ridge for the "highest_weights" ranking


# -- weighted ridge, batched ---------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    coef: np.ndarray  # (c, F)
    intercept: np.ndarray  # (c,)
    r2: np.ndarray  # (c,)
    local: np.ndarray  # (c,) surrogate prediction at the instance (sample 0)
    # (c,) standard deviation of the model's output over each instance's samples (set by _explain_all)
    output_sd: np.ndarray | None = None


@dataclass(frozen=True)
class _Moments:
    """Everything a weighted linear fit needs, for a stack of ``c`` problems with ``F`` features.

    Once these are formed the samples are no longer needed, so they are built
    block by block and all instances are solved together.
    """

    sw: np.ndarray  # (c,) sum of weights
    mu: np.ndarray  # (c, F) weighted feature means
    ybar: np.ndarray  # (c,) weighted target mean
    G: np.ndarray  # (c, F, F) centred Gram Zc' W Zc
    b: np.ndarray  # (c, F) Zc' W yc
    syy: np.ndarray  # (c,) yc' W yc
    z0: np.ndarray  # (c, F) interpretable instance (sample 0)

    @staticmethod
    def empty(c: int, f: int) -> _Moments:
        return _Moments(
            sw=np.empty(c),
            mu=np.empty((c, f)),
            ybar=np.empty(c),
            G=np.empty((c, f, f)),
            b=np.empty((c, f)),
            syy=np.empty(c),
            z0=np.empty((c, f)),
        )

    def put(self, at: int, part: _Moments) -> None:
        """Copy ``part``'s problems into positions ``[at, at + len(part))``."""
        rows = slice(at, at + part.sw.shape[0])
        for name in ("sw", "mu", "ybar", "G", "b", "syy", "z0"):
            getattr(self, name)[rows] = getattr(part, name)


def _moments(Zt: np.ndarray, w: np.ndarray, y: np.ndarray, *, consume: bool = False) -> _Moments:
    """Moments of feature-major samples ``Zt`` ``(c, F, N)``, weights and targets ``(c, N)``.

    Products are formed on ``A = Zt * sqrt(w)`` (``A A'`` runs as a symmetric
    rank-k update) and centred afterwards (``Z'WZ - sw mu mu'``): the same
    numbers as centring the data first.  With ``consume`` the caller hands
    ``Zt`` over and ``A`` is formed in its place, saving the largest temporary.
    """
    sw = w.sum(axis=1)
    root = np.sqrt(w)
    z0 = Zt[:, :, 0].copy()
    if consume:
        A = Zt
        A *= root[:, None, :]
    else:
        A = Zt * root[:, None, :]
    mu = (A @ root[:, :, None])[:, :, 0] / sw[:, None]
    ybar = (w * y).sum(axis=1) / sw
    G = A @ np.swapaxes(A, 1, 2) - sw[:, None, None] * mu[:, :, None] * mu[:, None, :]
    b = (A @ (root * y)[:, :, None])[:, :, 0] - sw[:, None] * mu * ybar[:, None]
    syy = (w * (y - ybar[:, None]) ** 2).sum(axis=1)
    return _Moments(sw=sw, mu=mu, ybar=ybar, G=G, b=b, syy=syy, z0=z0)


def _masked_system(G: np.ndarray, b: np.ndarray, mask: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``G + alpha I`` and ``b`` restricted to ``mask``; unselected features get an identity row, so coef 0.

    ``G`` is ``(c, F, F)``, ``b`` and ``mask`` ``(c, F)``.
    """
    both = mask[:, :, None] & mask[:, None, :]
    A = np.where(both, G, 0.0)
    diagonal = np.arange(G.shape[-1])
    A[:, diagonal, diagonal] += np.where(mask, alpha, 1.0)
    return A, np.where(mask, b, 0.0)


def _solve(m: _Moments, *, alpha: float = _ALPHA, mask: np.ndarray | None = None) -> _Fit:
    """scikit-learn's ``Ridge(alpha, fit_intercept=True)`` with sample weights, from moments.

    One ``numpy.linalg.solve`` on the ``(c, F, F)`` stack of normal equations
    ``(Zc' W Zc + alpha I) beta = Zc' W yc``; the intercept is
    ``ybar - mu . beta``.  The weighted R² (``r2_score`` with weights: 1 for a
    perfectly fitted constant target, 0 for an imperfect one) uses
    ``SSE = syy - 2 beta . b + beta' G beta``.  ``mask`` ``(c, F)`` restricts
    each problem to its chosen features; the others get coefficient 0.
    """
    if mask is None:
        A = m.G.copy()
        diagonal = np.arange(A.shape[-1])
        A[:, diagonal, diagonal] += alpha
        b = m.b
    else:
        A, b = _masked_system(m.G, m.b, mask, alpha)
    coef = np.linalg.solve(A, b[:, :, None])[:, :, 0]
    intercept = m.ybar - (m.mu * coef).sum(axis=1)
    sse = m.syy - 2.0 * (coef * b).sum(axis=1) + (coef[:, None, :] @ m.G @ coef[:, :, None])[:, 0, 0]
    sse = np.maximum(sse, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(m.syy > 0, 1.0 - sse / m.syy, np.where(sse > 1e-12 * (m.sw + 1.0), 0.0, 1.0))
    local = (m.z0 * coef).sum(axis=1) + intercept
    return _Fit(coef=coef, intercept=intercept, r2=r2, local=local)


def _weighted_ridge(
    Zt: np.ndarray, w: np.ndarray, y: np.ndarray, *, alpha: float = _ALPHA, mask: np.ndarray | None = None
) -> _Fit:
    """Weighted ridge for a stack of problems given as samples.

    Parameters
    ----------
    Zt: ``(c, F, N)`` interpretable samples per instance, feature-major (sample 0 is the instance).
    w: ``(c, N)`` sample weights.
    y: ``(c, N)`` model outputs.
    alpha: ridge penalty on the (unnormalised) weighted sum of squares.
    mask: ``(c, F)`` features each surrogate may use.
    """
    return _solve(_moments(Zt, w, y), alpha=alpha, mask=mask)


def _forward_selection(m: _Moments, k: int) -> np.ndarray:
    """lime's greedy forward selection (least squares, best weighted R² first), batched.

    At step ``t`` every instance tries every candidate: the ``(t+1)``-feature
    normal equations are gathered from the centred Gram into one
    ``(c, F, t+1, t+1)`` stack and solved at once.  Returns the ``(c, F)`` mask
    of the ``k`` chosen features.
    """
    c, f = m.b.shape
    used = np.zeros((c, f), dtype=bool)
    chosen = np.zeros((c, 0), dtype=np.int64)
    # lime uses alpha=0; a whisper of ridge keeps collinear subsets (and a candidate
    # already chosen, scored -inf below) solvable and moves R² by ~1e-10.
    jitter = 1e-10 * (np.trace(m.G, axis1=1, axis2=2) / f + 1.0)
    inst = np.arange(c)
    for t in range(min(k, f)):
        idx = np.concatenate(
            [np.broadcast_to(chosen[:, None, :], (c, f, t)), np.broadcast_to(np.arange(f)[None, :, None], (c, f, 1))],
            axis=2,
        )  # (c, candidate, t+1): the chosen features plus the candidate
        A = m.G[inst[:, None, None, None], idx[..., :, None], idx[..., None, :]]
        A = A + jitter[:, None, None, None] * np.eye(t + 1)
        bs = m.b[inst[:, None, None], idx]
        beta = np.linalg.solve(A, bs[..., None])[..., 0]
        explained = (beta * bs).sum(axis=-1)  # b_S' G_S^-1 b_S, the weighted sum of squares explained
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(m.syy[:, None] > 0, explained / m.syy[:, None], 0.0)
        score[used] = -np.inf
        # argmax keeps the first best, as lime's strict ">" scan does.
        best = np.argmax(score, axis=1)
        used[inst, best] = True
        chosen = np.concatenate([chosen, best[:, None]], axis=1)
    return used


def _highest_weights(m: _Moments, k: int) -> np.ndarray:
    """lime's "highest_weights": the ``k`` largest ``|coef * z0|`` of an ``alpha=0.01`` ridge; ``(c, F)`` mask."""
    fit = _solve(m, alpha=_HIGHEST_WEIGHTS_ALPHA)
    score = np.abs(fit.coef * m.z0)
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    mask = np.zeros(score.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def _fit_surrogates(m: _Moments, *, num_features: int, feature_selection: str) -> _Fit:
    """lime's feature selection, then the ``alpha = 1`` ridge on the chosen features."""
    f = m.b.shape[1]
    method = feature_selection
    if method == "auto":
        method = "forward_selection" if num_features <= 6 else "highest_weights"
    # Choosing all F features (or "none") leaves the ridge on every feature, whatever the ranking.
    if method == "none" or num_features >= f:
        return _solve(m)
    if method == "forward_selection":
        mask = _forward_selection(m, num_features)
    else:
        mask = _highest_weights(m, num_features)
    return _solve(m, mask=mask)
