"""Scaling-law fits: loss against model size per head configuration, and loss against head count.

L(N; H) = (a/N)^b + E, with N the non-embedding parameters (as in the paper). Following Epoch AI's
Chinchilla replication, a fit minimises by default a Huber loss (δ = 1e-3) on log-space residuals
log L_pred − log L_obs, by damped Gauss-Newton from a grid of starting points; `residuals="linear"`
fits L_pred − L_obs instead, and `delta=math.inf` makes either plain least squares (the paper names
no method, so `gqa readings` tries each). Uncertainty comes from a seeded bootstrap over runs. E is either
one per configuration or one shared by all (`shared_e`).
The head-count law of the paper's Appendix I is L(n_h) = a·n_h^b + c.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

Heads = tuple[int, int]  # (n_h, n_kv): the key of every fit, search result and share in the package
HUBER_DELTA = 1e-3
RESIDUALS = ("log", "linear")  # log L_pred − log L_obs, or L_pred − L_obs (nats/token)


@dataclass(frozen=True)
class PowerLaw:
    """L(N) = (a/N)^b + E. `a` is in parameters, E in the loss's units (nats/token)."""

    a: float
    b: float
    e: float
    r2: float = float("nan")
    n_points: int = 0
    # what the fit saw: the range of sizes N and of losses (None when unknown, e.g. a typed fit)
    n_range: tuple[float, float] | None = None
    loss_range: tuple[float, float] | None = None

    def extrapolation(self, n: float) -> float:
        """How far N lies outside the sizes the fit saw, as a factor >= 1 (1: inside; nan: unknown)."""
        if self.n_range is None:
            return float("nan")
        low, high = self.n_range
        return float(max(1.0, n / high, low / n))

    def predict(self, n) -> np.ndarray:
        n = np.asarray(n, dtype=float)
        return (self.a / n) ** self.b + self.e

    def params_for_loss(self, loss: float) -> float:
        """N* = a / (L* − E)^(1/b); ValueError when L* <= E (no size reaches it)."""
        if not loss > self.e:
            raise ValueError(f"target loss {loss} is not above this fit's irreducible loss E = {self.e:.4f}")
        return self.a / (loss - self.e) ** (1 / self.b)


def _check_points(n: np.ndarray, loss: np.ndarray, free_e: bool) -> None:
    if n.shape != loss.shape or n.ndim != 1:
        raise ValueError("sizes and losses must be 1-D arrays of the same length")
    if not np.all(np.isfinite(loss)) or np.any(loss <= 0):
        raise ValueError(f"losses must be finite and positive, got {loss[~(np.isfinite(loss) & (loss > 0))][:3]}")
    if np.any(n <= 0):
        raise ValueError("parameter counts must be positive")
    distinct = len(np.unique(n))
    needed = 3 if free_e else 2
    if distinct < 2:
        raise ValueError(f"a fit needs runs at several sizes, got a single size (N = {n[0]:.3g})")
    if distinct < needed:
        raise ValueError(f"a fit with a free E needs runs at >= {needed} sizes, got {distinct}")


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals and its derivative (δ = inf: half the squared residual)."""
    if np.isinf(delta):
        return 0.5 * r**2, r
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    grad = np.where(small, r, delta * np.sign(r))
    return value, grad


def _r2(loss: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination of predictions against observed losses (NaN if all are equal)."""
    ss_res = float(np.sum((loss - predicted) ** 2))
    ss_tot = float(np.sum((loss - loss.mean()) ** 2))
    return 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _model(theta: np.ndarray, log_n: np.ndarray, shared_e: bool):
    """Residual-model pieces for a batch: log L_pred (B, k, P) and its Jacobian (B, k, P, m).

    theta is (B, m): per group (log a, b), then log E (one shared, or one per group).
    With u = b·(log a − log N), log L_pred = logaddexp(u, log E).
    """
    n_batch, k, points = log_n.shape
    m = theta.shape[1]
    log_a, b = theta[:, 0:2 * k:2], theta[:, 1:2 * k:2]
    log_e = np.repeat(theta[:, 2 * k:2 * k + 1], k, axis=1) if shared_e else theta[:, 2 * k:]
    u = b[..., None] * (log_a[..., None] - log_n)
    pred = np.logaddexp(u, log_e[..., None])
    w_u = np.exp(u - pred)
    jac = np.zeros((n_batch, k, points, m))
    groups = np.arange(k)
    jac[:, groups, :, 2 * groups] = np.moveaxis(w_u * b[..., None], 1, 0)
    jac[:, groups, :, 2 * groups + 1] = np.moveaxis(w_u * (log_a[..., None] - log_n), 1, 0)
    if shared_e:
        jac[..., 2 * k] = 1 - w_u
    else:
        jac[:, groups, :, 2 * k + groups] = np.moveaxis(1 - w_u, 1, 0)
    return pred, jac


def _residuals(theta: np.ndarray, log_n: np.ndarray, log_loss: np.ndarray, shared_e: bool,
               residuals: str) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (B, k, P) in log or linear space and their Jacobian (B, k, P, m)."""
    pred, jac = _model(theta, log_n, shared_e)
    if residuals == "log":
        return pred - log_loss, jac
    predicted = np.exp(pred)
    return predicted - np.exp(log_loss), jac * predicted[..., None]


def _fit_batch(log_n: np.ndarray, log_loss: np.ndarray, weight: np.ndarray, theta0: np.ndarray,
               shared_e: bool, delta: float, iterations: int = 300,
               residuals: str = "log") -> tuple[np.ndarray, np.ndarray]:
    """Minimise the Huber loss of B independent problems at once, by damped Gauss-Newton steps on
    Huber-reweighted least squares (IRLS with Levenberg-Marquardt damping, per problem).

    Arrays are (B, k, P): B problems (bootstrap resamples or starting points), k head configurations,
    P points (padding has `weight` 0). Residuals are log or linear (`residuals`); δ is in their units.
    Returns the fitted thetas (B, m) and each problem's objective.
    """
    if residuals not in RESIDUALS:
        raise ValueError(f"residuals must be one of {RESIDUALS}, got {residuals!r}")
    if not delta > 0:
        raise ValueError(f"the Huber delta must be positive, got {delta!r}")
    k = log_n.shape[1]
    m = theta0.shape[1]
    lower = np.array([-50.0, 1e-3] * k + [-20.0] * (m - 2 * k))
    upper = np.array([100.0, 5.0] * k + [10.0] * (m - 2 * k))

    def objective(theta, rows):
        r, _ = _residuals(theta, log_n[rows], log_loss[rows], shared_e, residuals)
        return np.sum(_huber(r, delta)[0] * weight[rows], axis=(1, 2))

    theta = np.clip(theta0.astype(float), lower, upper)
    everything = np.arange(len(theta))
    value = objective(theta, everything)
    damping = np.full(len(theta), 1e-3)
    active = everything  # problems still being improved
    for _ in range(iterations):
        if active.size == 0:
            break
        th = theta[active]
        r, jac = _residuals(th, log_n[active], log_loss[active], shared_e, residuals)
        w = weight[active] * np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))  # Huber IRLS
        jw = (jac * w[..., None]).reshape(len(th), -1, m)
        normal = np.einsum("bpi,bpj->bij", jw, jac.reshape(len(th), -1, m))
        grad = np.einsum("bpi,bp->bi", jw, r.reshape(len(th), -1))
        diag = np.einsum("bii->bi", normal)
        lhs = normal + (damping[active, None] * (diag + 1e-12))[:, :, None] * np.eye(m)
        trial = np.clip(th - np.linalg.solve(lhs, grad[..., None])[..., 0], lower, upper)
        trial_value = objective(trial, active)
        better = trial_value < value[active]
        gain = np.where(better, value[active] - trial_value, 0.0)
        theta[active] = np.where(better[:, None], trial, th)
        value[active] = np.where(better, trial_value, value[active])
        damping[active] = np.where(better, damping[active] / 3, damping[active] * 4).clip(1e-12, 1e12)
        done = (better & (gain <= 1e-13 * np.maximum(value[active], 1e-30))) | (damping[active] >= 1e8)
        active = active[~done]
    return theta, value


def _pack(groups: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """(k, P) padded log N, log L and weights from per-group point arrays."""
    width = max(len(n) for n, _ in groups)
    log_n, log_loss, weight = (np.zeros((len(groups), width)) for _ in range(3))
    for g, (n, loss) in enumerate(groups):
        log_n[g, :len(n)], log_loss[g, :len(n)], weight[g, :len(n)] = np.log(n), np.log(loss), 1.0
        log_n[g, len(n):], log_loss[g, len(n):] = np.log(n[0]), np.log(loss[0])  # harmless padding
    return log_n, log_loss, weight


def _start_grid(groups, shared_e: bool) -> np.ndarray:
    """Starting points: b, a placing the power-law term at e^-3..e^3 of the smallest model, E as a
    fraction of the lowest loss."""
    min_loss = min(float(loss.min()) for _, loss in groups)
    rows = []
    for b, shift, e_frac in itertools.product((0.1, 0.3, 0.6, 1.0), (-3.0, 0.0, 3.0), (0.2, 0.5, 0.8)):
        theta = []
        for n, _ in groups:
            theta += [float(np.log(n.min())) + shift / b, b]
        theta += [float(np.log(e_frac * min_loss))] * (1 if shared_e else len(groups))
        rows.append(theta)
    return np.array(rows)


def _fit_groups(groups, shared_e: bool, delta: float, starts: np.ndarray, residuals: str = "log") -> np.ndarray:
    """Best of several starting points for one family of groups: returns theta of width 2k(+1 or +k)."""
    log_n, log_loss, weight = _pack(groups)
    n_starts = len(starts)
    tile = lambda a: np.broadcast_to(a, (n_starts, *a.shape)).copy()  # noqa: E731
    theta, values = _fit_batch(tile(log_n), tile(log_loss), tile(weight), starts, shared_e, delta,
                               residuals=residuals)
    return theta[int(np.argmin(values))]


def fit_family(data: Mapping[Heads, tuple[Sequence[float], Sequence[float]]], *, shared_e: bool = False,
               delta: float = HUBER_DELTA, residuals: str = "log") -> dict[Heads, PowerLaw]:
    """Fit L(N; H) for every head configuration: data maps H -> (N values, losses).

    With a free E the configurations are independent and each is fitted on its own; with a shared E
    they are fitted jointly. `delta` is the Huber threshold in the units of `residuals` ("log" or
    "linear"); math.inf gives least squares.
    """
    if not data:
        raise ValueError("nothing to fit: no head configuration given")
    keys = list(data)
    arrays = [(np.asarray(data[h][0], float), np.asarray(data[h][1], float)) for h in keys]
    for (n, loss), h in zip(arrays, keys):
        try:
            _check_points(n, loss, free_e=not shared_e)
        except ValueError as e:
            raise ValueError(f"H = {h}: {e}") from None
    thetas = {}
    if shared_e:
        theta = _fit_groups(arrays, True, delta, _start_grid(arrays, True), residuals)
        k = len(keys)
        for g, h in enumerate(keys):
            thetas[h] = (theta[2 * g], theta[2 * g + 1], theta[2 * k])
    else:  # independent configurations: every (configuration, starting point) in one batch
        packed = [_pack([group]) for group in arrays]
        width = max(p[0].shape[1] for p in packed)
        starts = [_start_grid([group], False) for group in arrays]
        n_starts = len(starts[0])
        log_n, log_loss, weight = (np.zeros((len(keys) * n_starts, 1, width)) for _ in range(3))
        for g, (ln, ll, w) in enumerate(packed):
            rows = slice(g * n_starts, (g + 1) * n_starts)
            log_n[rows], log_loss[rows] = ln[0, 0], ll[0, 0]  # padding value, weight 0
            log_n[rows, 0, :ln.shape[1]], log_loss[rows, 0, :ln.shape[1]] = ln[0], ll[0]
            weight[rows, 0, :ln.shape[1]] = w[0]
        theta, values = _fit_batch(log_n, log_loss, weight, np.concatenate(starts), False, delta,
                                   residuals=residuals)
        for g, h in enumerate(keys):
            rows = slice(g * n_starts, (g + 1) * n_starts)
            thetas[h] = tuple(theta[rows][int(np.argmin(values[rows]))])
    fits = {}
    for h, (n, loss) in zip(keys, arrays):
        log_a, b, log_e = thetas[h]
        law = PowerLaw(float(np.exp(log_a)), float(b), float(np.exp(log_e)))
        fits[h] = PowerLaw(law.a, law.b, law.e, _r2(loss, law.predict(n)), len(n),
                           (float(n.min()), float(n.max())), (float(loss.min()), float(loss.max())))
    return fits


def fit_power_law(n: Sequence[float], loss: Sequence[float], **kw) -> PowerLaw:
    """L(N) = (a/N)^b + E for one head configuration."""
    return fit_family({(0, 0): (n, loss)}, **kw)[(0, 0)]


@dataclass
class Bootstrap:
    """Bootstrap refits: samples[H] is an array of (a, b, E) rows, one per resample."""

    point: dict[Heads, PowerLaw]
    samples: dict[Heads, np.ndarray]
    shared_e: bool
    seed: int
    resamples: int = field(init=False)

    def __post_init__(self) -> None:
        self.resamples = len(next(iter(self.samples.values())))

    def laws(self, i: int) -> dict[Heads, PowerLaw]:
        return {h: PowerLaw(*s[i], n_range=self.point[h].n_range, loss_range=self.point[h].loss_range)
                for h, s in self.samples.items()}

    def interval(self, h: Heads, level: float = 0.95) -> dict[str, tuple[float, float]]:
        lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
        s = self.samples[h]
        return {name: (float(np.percentile(s[:, j], lo)), float(np.percentile(s[:, j], hi)))
                for j, name in enumerate(("a", "b", "e"))}

    def predict_interval(self, h: Heads, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        n = np.asarray(n, float)
        s = self.samples[h]
        preds = (s[:, :1] / n[None, :]) ** s[:, 1:2] + s[:, 2:3]
        return (np.percentile(preds, (1 - level) / 2 * 100, axis=0),
                np.percentile(preds, (1 + level) / 2 * 100, axis=0))


def _draw(rng: np.random.Generator, n: np.ndarray, resamples: int, needed: int) -> np.ndarray:
    """(resamples, len(n)) indices drawn with replacement, redrawing rows with too few distinct sizes."""
    needed = min(needed, len(np.unique(n)))
    idx = rng.integers(0, len(n), (resamples, len(n)))
    while True:
        sizes = np.sort(n[idx], axis=1)
        distinct = 1 + np.sum(sizes[:, 1:] != sizes[:, :-1], axis=1)
        bad = distinct < needed
        if not bad.any():
            return idx
        idx[bad] = rng.integers(0, len(n), (int(bad.sum()), len(n)))


def bootstrap(data: Mapping[Heads, tuple[Sequence[float], Sequence[float]]], *, resamples: int = 1000,
              seed: int = 0, shared_e: bool = False, delta: float = HUBER_DELTA,
              point: dict[Heads, PowerLaw] | None = None, residuals: str = "log") -> Bootstrap:
    """Seeded bootstrap over runs, resampled within each configuration (a draw with too few distinct
    sizes is redrawn); every refit starts at the point fit and all run as one batch, with the point
    fit's objective (`delta`, `residuals`)."""
    def draw(rng, h, n, loss):
        idx = _draw(rng, n, resamples, 2 if shared_e else 3)
        return n[idx], loss[idx]

    return _resampled(data, draw, resamples, seed, shared_e, delta, point, residuals)


def seed_bootstrap(data: Mapping[Heads, tuple[Sequence[float], Sequence[float]]], sigma: float, *,
                   resamples: int = 1000, seed: int = 0, shared_e: bool = False, delta: float = HUBER_DELTA,
                   point: dict[Heads, PowerLaw] | None = None, residuals: str = "log",
                   scale: Mapping[Heads, Sequence[float]] | None = None) -> Bootstrap:
    """A parametric bootstrap for seed noise: every run is kept and its loss moved by a normal draw of
    standard deviation `sigma` (nats per token, the seed spread of one run measured by a pilot), then the
    laws are refitted as `bootstrap` refits them. `scale[H]` multiplies σ point by point (1/√k for a point
    that is the mean of k seeds; 1 where not given). Its intervals say how far the fits would move had every
    run been trained with another seed; unlike resampling runs, it needs no more sizes than parameters."""
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma (the seed noise, nats) must be finite and >= 0, got {sigma}")

    def draw(rng, h, n, loss):
        factor = np.ones(len(loss)) if scale is None or h not in scale else np.asarray(scale[h], float)
        noisy = loss[None, :] + rng.normal(0.0, sigma, (resamples, len(loss))) * factor[None, :]
        if np.any(noisy <= 0):
            raise ValueError(f"{h}: seed noise of {sigma} nats drives a loss to zero or below")
        return np.tile(n, (resamples, 1)), noisy

    return _resampled(data, draw, resamples, seed, shared_e, delta, point, residuals)


def _resampled(data: Mapping[Heads, tuple[Sequence[float], Sequence[float]]], draw, resamples: int, seed: int,
               shared_e: bool, delta: float, point: dict[Heads, PowerLaw] | None, residuals: str) -> Bootstrap:
    """The refits of `resamples` draws of every configuration's runs: `draw(rng, H, sizes, losses)` returns
    (resamples, points) arrays of sizes and losses, from one seeded generator, configurations in order."""
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    point = point or fit_family(data, shared_e=shared_e, delta=delta, residuals=residuals)
    rng = np.random.default_rng(seed)
    drawn = {h: draw(rng, h, np.asarray(n, float), np.asarray(loss, float)) for h, (n, loss) in data.items()}
    return _refit(drawn, point, resamples, seed, shared_e, delta, residuals)


def _refit(drawn: Mapping[Heads, tuple[np.ndarray, np.ndarray]], point: dict[Heads, PowerLaw], resamples: int,
           seed: int, shared_e: bool, delta: float, residuals: str) -> Bootstrap:
    """Refit every resample of every configuration as one batch, starting at the point fit. `drawn[H]` holds
    (resamples, points) arrays of sizes and losses."""
    keys = list(drawn)
    k = len(keys)
    width = max(n.shape[1] for n, _ in drawn.values())
    log_n, log_loss, weight = (np.zeros((resamples, k, width)) for _ in range(3))
    for g, h in enumerate(keys):
        n, loss = drawn[h]
        log_n[:, g], log_loss[:, g] = np.log(n[0, 0]), np.log(loss[0, 0])  # padding, weight 0
        log_n[:, g, :n.shape[1]], log_loss[:, g, :n.shape[1]] = np.log(n), np.log(loss)
        weight[:, g, :n.shape[1]] = 1.0
    samples = {}
    if shared_e:
        start = [v for h in keys for v in (np.log(point[h].a), point[h].b)] + [np.log(point[keys[0]].e)]
        theta, _ = _fit_batch(log_n, log_loss, weight, np.tile(start, (resamples, 1)), True, delta,
                              residuals=residuals)
        for g, h in enumerate(keys):
            samples[h] = np.column_stack([np.exp(theta[:, 2 * g]), theta[:, 2 * g + 1], np.exp(theta[:, 2 * k])])
    else:  # independent configurations: one problem per (resample, configuration)
        flat = lambda a: a.reshape(resamples * k, 1, width)  # noqa: E731
        start = np.array([[np.log(point[h].a), point[h].b, np.log(point[h].e)] for h in keys])
        theta, _ = _fit_batch(flat(log_n), flat(log_loss), flat(weight), np.tile(start, (resamples, 1)),
                              False, delta, residuals=residuals)
        theta = theta.reshape(resamples, k, 3)
        for g, h in enumerate(keys):
            samples[h] = np.column_stack([np.exp(theta[:, g, 0]), theta[:, g, 1], np.exp(theta[:, g, 2])])
    return Bootstrap(point, samples, shared_e, seed)


def ols_check(law: PowerLaw, n: Sequence[float], loss: Sequence[float]) -> dict:
    """statsmodels cross-check: OLS of log(L − E) on log N, with E fixed at the fitted value.

    log(L − E) = b·log a − b·log N, so slope = −b and intercept = b·log a.
    """
    import statsmodels.api as sm

    n, loss = np.asarray(n, float), np.asarray(loss, float)
    excess = loss - law.e
    if np.any(excess <= 0):
        raise ValueError("some losses are not above the fitted E; the log-linear check is undefined")
    model = sm.OLS(np.log(excess), sm.add_constant(np.log(n))).fit()
    intercept, slope = model.params
    b = -slope
    return {"b": float(b), "a": float(np.exp(intercept / b)), "r2_log": float(model.rsquared),
            "b_stderr": float(model.bse[1])}


@dataclass(frozen=True)
class HeadLaw:
    """Appendix I: L(n_h) = a·n_h^b + c (b < 0)."""

    a: float
    b: float
    c: float
    r2: float = float("nan")

    def predict(self, n_heads) -> np.ndarray:
        return self.a * np.asarray(n_heads, float) ** self.b + self.c


def fit_head_law(n_heads: Sequence[float], loss: Sequence[float], c: float | None = None) -> HeadLaw:
    """Least-squares fit of L(n_h) = a·n_h^b + c; pass `c` to hold the constant fixed (as the paper
    does when comparing context lengths).

    Bounded as the law means it: a > 0, -5 <= b < 0, and 0 <= c <= min(loss) (c is the loss with
    unlimited heads). Without the bounds, a few noisy points let the fit run off to b -> 0 with a huge a
    and a negative c, a logarithm in disguise.
    """
    from scipy.optimize import curve_fit

    h, y = np.asarray(n_heads, float), np.asarray(loss, float)
    if len(np.unique(h)) < (2 if c is not None else 3):
        raise ValueError(f"a head-count fit needs >= {2 if c is not None else 3} distinct head counts")
    if not np.all(y > 0):
        raise ValueError(f"losses must be positive, got {y.min()!r}")
    span = y.max() - y.min() + 1e-6
    if c is None:
        (a, b, c_fit), _ = curve_fit(lambda x, a, b, c: a * x**b + c, h, y,
                                     p0=(span, -0.3, max(y.min() - span, 0.0)),
                                     bounds=([1e-12, -5.0, 0.0], [np.inf, -1e-6, y.min()]), maxfev=20000)
    else:
        (a, b), _ = curve_fit(lambda x, a, b: a * x**b + c, h, y, p0=(max(y.max() - c, 1e-6), -0.1),
                              bounds=([1e-12, -5.0], [np.inf, -1e-6]), maxfev=20000)
        c_fit = c
    law = HeadLaw(float(a), float(b), float(c_fit))
    return HeadLaw(law.a, law.b, law.c, _r2(y, law.predict(h)))


def log_curvature(n_heads: Sequence[float], loss: Sequence[float]) -> float:
    """The second-order coefficient of log L against log2 n_h (least squares over >= 3 head counts).

    Positive when the points bend up toward a floor, the diminishing returns that let `fit_head_law` find
    c > 0; negative when the gain per doubling of n_h grows, where no floor can be estimated and the bounded
    fit returns c = 0 (the loss looks like a power law or steeper)."""
    h, y = np.asarray(n_heads, float), np.asarray(loss, float)
    if len(np.unique(h)) < 3:
        raise ValueError("a curvature needs >= 3 distinct head counts")
    return float(np.polyfit(np.log2(h), np.log(y), 2)[0])
