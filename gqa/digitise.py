"""Recover the plotted points of the paper's Figure 2 from the published image.

The figure has three panels (loss against inference memory, FLOPs and Z at T = 128K, log x) and seven
series of filled circles, one colour each, with fitted lines of the same colour drawn over them.

Method, all in pixels of the image:
1. **Panels**: each panel's axes frame is found from long dark horizontal and vertical runs.
2. **Axes**: tick marks outside the frame are found as short dark runs; on the log x axis the long
   ones are the decades, whose exponents are read from the tick labels (given in `FigureSpec`), and
   the short ones are the minor ticks 2..9 × 10^e in order. Pixel = p0 + s·log10(x) and
   pixel = q0 + r·loss are fitted by least squares; the residuals (pixels) are reported, and the
   dashed gridlines are checked against the fitted decades.
3. **Colours**: the seven series colours are read from the legend's markers, top to bottom.
4. **Markers**: each pixel is classed as one series colour, background (white or gridline grey) or
   neutral (anti-aliased edges, black, unknown). For each series, a disk of the marker's radius is
   scored at every centre: series pixels inside minus 3 × background pixels inside. Lines of other
   series drawn over a marker are neutral, so an occluded marker still scores; a disk on a thin line
   catches background and does not. Local maxima above a threshold are the markers.
5. **Cross-panel matching**: a model has one loss, so its marker has the same y in all three panels.
   Markers found in one panel but hidden in another (the four n_h = 8 series overlap almost exactly in
   the FLOPs panel) are searched for along that row only; the ones that still cannot be found are
   reported as missing, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PANEL_X = ("memory_bytes", "flops", "z")


@dataclass(frozen=True)
class FigureSpec:
    """What a human reads off the figure: tick labels, series order in the legend, the layout."""

    panels: tuple[str, ...] = PANEL_X
    decades: tuple[tuple[int, ...], ...] = ((9, 10), (14, 15), (5,))  # x tick labels 10^e per panel
    y_ticks: tuple[float, ...] = (2.4, 2.6, 2.8, 3.0, 3.2)
    series: tuple[tuple[int, int], ...] = ((8, 8), (8, 4), (8, 2), (8, 1), (4, 1), (2, 1), (1, 1))


FIG2 = FigureSpec()


@dataclass
class Box:
    """An axes frame: the pixel columns of the left/right spines and rows of the top/bottom spines."""

    left: float
    right: float
    top: float
    bottom: float


@dataclass
class AxisFit:
    """pixel = offset + scale · t, where t = log10(value) (log axis) or value (linear axis)."""

    offset: float
    scale: float
    log: bool
    ticks_px: list[float] = field(default_factory=list)
    ticks_value: list[float] = field(default_factory=list)

    def value(self, pixel: float | np.ndarray) -> np.ndarray:
        t = (np.asarray(pixel, dtype=float) - self.offset) / self.scale
        return 10.0 ** t if self.log else t

    def pixel(self, value: float | np.ndarray) -> np.ndarray:
        t = np.log10(value) if self.log else np.asarray(value, dtype=float)
        return self.offset + self.scale * t

    @property
    def residuals_px(self) -> np.ndarray:
        return np.asarray(self.ticks_px) - self.pixel(np.asarray(self.ticks_value))


class DigitiseError(ValueError):
    """The image does not look like the figure the spec describes."""


def load_rgb(path: Path | str) -> np.ndarray:
    """The image as an (H, W, 3) int array, composited on white."""
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"figure image not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an image")
    try:
        image = Image.open(path)
        image.load()  # decode now: a truncated file fails here, not halfway through the analysis
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
        return np.asarray(image.convert("RGB")).astype(np.int32)
    except (OSError, SyntaxError, ValueError) as e:  # PIL: UnidentifiedImageError (an OSError), truncation
        raise ValueError(f"{path}: not a readable image ({e})") from None


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D mask."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2], edges[1::2]))


def find_panels(rgb: np.ndarray, n_panels: int) -> list[Box]:
    """Axes frames, left to right, from spines: dark lines longer than a third of the image height."""
    dark = rgb.sum(-1) < 200
    h, w = dark.shape
    col_len = np.array([max((b - a for a, b in _runs(dark[:, c])), default=0) for c in range(w)])
    spine_cols = [(a + b - 1) / 2 for a, b in _runs(col_len > h / 3)]
    if len(spine_cols) != 2 * n_panels:
        raise DigitiseError(f"found {len(spine_cols)} vertical spines, expected {2 * n_panels}")
    boxes = []
    for left, right in zip(spine_cols[::2], spine_cols[1::2]):
        c0, c1 = int(left) + 3, int(right) - 2
        row_len = dark[:, c0:c1].sum(1)
        rows = [(a + b - 1) / 2 for a, b in _runs(row_len > 0.9 * (c1 - c0))]
        if len(rows) < 2:
            raise DigitiseError(f"no top/bottom spines between columns {left} and {right}")
        boxes.append(Box(left, right, rows[0], rows[-1]))
    return boxes


def _tick_marks(strip: np.ndarray, min_len: int) -> list[tuple[float, int]]:
    """Tick marks in a strip whose first row touches a spine (ticks run along axis 0).

    A tick is a narrow run of dark columns in the first row; its length is how many rows it stays
    dark from there, so tick labels further out are not counted. Returns (centre, length) each.
    """
    marks = []
    for a, b in _runs(strip[0]):
        column = strip[:, a:b].any(1)
        length = int(np.argmin(column)) if not column.all() else len(column)
        if length >= min_len and b - a <= 8:
            marks.append(((a + b - 1) / 2, length))
    return marks


def _past_spine(dark_line_mask: np.ndarray) -> int:
    """Offset of the first line that is no longer part of the spine (mostly dark)."""
    i = 0
    while i < len(dark_line_mask) and dark_line_mask[i]:
        i += 1
    return i


def calibrate_x(rgb: np.ndarray, box: Box, decades: tuple[int, ...]) -> AxisFit:
    """Fit the log x axis to the tick marks below the bottom spine."""
    dark = rgb.sum(-1) < 300
    c0, c1 = int(box.left) - 1, int(box.right) + 3
    below = int(box.bottom)
    top = below + _past_spine(dark[below:below + 10, c0:c1].mean(1) > 0.9)
    strip = dark[top:top + 40, c0:c1]
    marks = [(c + c0, n) for c, n in _tick_marks(strip, 2)]
    if not marks:
        raise DigitiseError("no x tick marks below the axes")
    longest = max(n for _, n in marks)
    major = [c for c, n in marks if n >= 0.75 * longest]
    minor = [c for c, n in marks if n < 0.75 * longest]  # in column order, like `major`
    if len(major) != len(decades):
        raise DigitiseError(f"found {len(major)} major x ticks, the spec reads {len(decades)} labels")
    px, values = [], []
    for c in minor:
        i = int(np.searchsorted(major, c))  # majors to the left
        if i == 0:  # left of the first decade: 9, 8, ... × 10^(e-1) counting back
            between = np.searchsorted(minor, major[0]) - np.searchsorted(minor, c, side="right")
            mantissa, exp = 9 - int(between), decades[0] - 1
        else:  # right of decade i-1: 2, 3, ... × 10^e counting on
            between = np.searchsorted(minor, c) - np.searchsorted(minor, major[i - 1], side="right")
            mantissa, exp = 2 + int(between), decades[i - 1]
        if not 2 <= mantissa <= 9:
            raise DigitiseError(f"minor tick at column {c:.1f} does not fit the 2..9 pattern")
        px.append(c)
        values.append(mantissa * 10.0 ** exp)
    px += major
    values += [10.0 ** e for e in decades]
    t = np.log10(values)
    scale, offset = np.polyfit(t, px, 1)
    return AxisFit(offset, scale, True, list(px), list(values))


def calibrate_y(rgb: np.ndarray, box: Box, ticks: tuple[float, ...]) -> AxisFit:
    """Fit the linear y axis to the tick marks left of the left spine (top tick = largest value)."""
    dark = rgb.sum(-1) < 300
    r0, r1 = int(box.top) - 3, int(box.bottom) + 4
    left = int(box.left)
    right = left - _past_spine(dark[r0:r1, left - 10:left + 1][:, ::-1].mean(0) > 0.9) + 1
    strip = dark[r0:r1, right - 40:right][:, ::-1].T
    marks = [(r + r0, n) for r, n in _tick_marks(strip, 3)]
    longest = max((n for _, n in marks), default=0)
    rows = [r for r, n in marks if n >= 0.75 * longest]
    if len(rows) != len(ticks):
        raise DigitiseError(f"found {len(rows)} y ticks, the spec reads {len(ticks)} labels")
    values = sorted(ticks, reverse=True)
    scale, offset = np.polyfit(values, rows, 1)
    return AxisFit(offset, scale, False, list(rows), list(values))


def gridline_columns(rgb: np.ndarray, box: Box) -> list[float]:
    """Columns of the dashed vertical gridlines (light grey) inside a frame."""
    inner = rgb[int(box.top) + 3:int(box.bottom) - 2, int(box.left) + 3:int(box.right) - 2]
    grey = (np.abs(inner - inner.mean(-1, keepdims=True)).max(-1) < 6) & (inner.mean(-1) > 180) & \
        (inner.mean(-1) < 235)
    frac = grey.mean(0)
    return [(a + b - 1) / 2 + int(box.left) + 3 for a, b in _runs(frac > 0.25)]


def legend_colours(rgb: np.ndarray, right_of: float, n: int) -> list[np.ndarray]:
    """Colours of the legend's n markers (the saturated blobs right of the last panel), top to bottom."""
    from scipy import ndimage

    region = rgb[:, int(right_of) + 5:]
    coloured = (np.abs(region - 255).sum(-1) > 60) & (region.max(-1) - region.min(-1) > 25)
    labels, count = ndimage.label(coloured)
    blobs = []
    for i, sl in enumerate(ndimage.find_objects(labels)):
        pixels = region[sl][labels[sl] == i + 1]
        if len(pixels) < 100:
            continue
        colours, counts = np.unique(pixels, axis=0, return_counts=True)
        blobs.append((sl[0].start, colours[np.argmax(counts)]))
    if len(blobs) != n:
        raise DigitiseError(f"found {len(blobs)} legend markers, the spec names {n} series")
    return [c for _, c in sorted(blobs, key=lambda b: b[0])]


def legend_radius(rgb: np.ndarray, colour: np.ndarray, right_of: float) -> float:
    """Marker radius (pixels) from the area of the first legend marker."""
    region = rgb[:, int(right_of) + 5:]
    area = (np.abs(region - colour).sum(-1) < 30).sum()
    return float(np.sqrt(area / np.pi))


def _disk(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= radius * radius).astype(np.float32)


def classify(rgb: np.ndarray, colours: list[np.ndarray], tol: float = 40.0) -> np.ndarray:
    """Per pixel: series index, -1 background (white / gridline grey), -2 neutral."""
    refs = np.array(list(colours) + [[255, 255, 255]], dtype=float)
    dist = np.sqrt(((rgb[..., None, :] - refs) ** 2).sum(-1))
    nearest = dist.argmin(-1)
    ok = dist.min(-1) < tol
    out = np.where(ok, nearest, -2)
    out[out == len(colours)] = -1
    grey = (rgb.max(-1) - rgb.min(-1) < 8) & (rgb.mean(-1) > 170)
    out[grey & (out == -2)] = -1
    return out


def score_maps(classes: np.ndarray, box: Box, n_series: int, radius: float) -> np.ndarray:
    """(n_series, H, W): series pixels minus 3 × background pixels inside a disk centred there."""
    from scipy.signal import fftconvolve

    inside = np.zeros(classes.shape, bool)
    inside[int(box.top) + 2:int(box.bottom) - 1, int(box.left) + 2:int(box.right) - 1] = True
    kernel = _disk(radius - 1.5)
    bg = fftconvolve((classes == -1) & inside, kernel, mode="same")
    maps = np.stack([fftconvolve((classes == s) & inside, kernel, mode="same") - 3 * bg
                     for s in range(n_series)])
    maps[:, ~inside] = -np.inf
    return maps / kernel.sum()


def peaks(score: np.ndarray, threshold: float, min_distance: float) -> list[tuple[float, float]]:
    """(row, col) of local maxima above threshold, strongest first, no two closer than min_distance."""
    from scipy import ndimage

    size = int(2 * min_distance) | 1
    local = (score == ndimage.maximum_filter(score, size=size)) & (score > threshold)
    rows, cols = np.nonzero(local)
    order = np.argsort(-score[rows, cols])
    kept: list[tuple[float, float]] = []
    for r, c in zip(rows[order], cols[order]):
        if all((r - kr) ** 2 + (c - kc) ** 2 >= min_distance ** 2 for kr, kc in kept):
            kept.append((float(r), float(c)))
    return kept


@dataclass
class Digitised:
    points: pd.DataFrame
    boxes: list[Box]
    x_axes: list[AxisFit]
    y_axes: list[AxisFit]
    gridline_error_px: list[float]
    radius: float
    missing: list[str]
    panels: tuple[str, ...] = PANEL_X

    def report(self) -> str:
        lines = [f"marker radius {self.radius:.1f} px"]
        for name, xa, ya, grid in zip(self.panels, self.x_axes, self.y_axes, self.gridline_error_px):
            lines.append(
                f"{name:>13}: x from {len(xa.ticks_px)} ticks, residual max {np.abs(xa.residuals_px).max():.2f} px"
                f" ({np.abs(xa.residuals_px).max() / abs(xa.scale):.4f} decades); y from {len(ya.ticks_px)}"
                f" ticks, max {np.abs(ya.residuals_px).max():.2f} px; decade gridlines off by {grid:.2f} px")
        counts = self.points.pivot_table(index=["n_h", "n_kv"], columns="panel", values="loss",
                                         aggfunc="count").reindex(columns=list(self.panels)).fillna(0).astype(int)
        lines.append("points per series and panel:\n" + counts.to_string())
        lines += [f"missing: {m}" for m in self.missing] or ["missing: none"]
        return "\n".join(lines)


def digitise(path: Path | str, spec: FigureSpec = FIG2, *, min_score: float = 0.15, strong_score: float = 0.5,
             row_tol: float = 3.0) -> Digitised:
    """Digitise a Figure-2-like image: one row per (panel, marker) found.

    A marker is kept when its disk score reaches `strong_score` in some panel, or when it peaks in two
    panels on the same row (within `row_tol` pixels); panels where it did not peak are then searched
    along that row, accepting `min_score`.
    """
    rgb = load_rgb(path)
    boxes = find_panels(rgb, len(spec.panels))
    x_axes = [calibrate_x(rgb, b, d) for b, d in zip(boxes, spec.decades)]
    y_axes = [calibrate_y(rgb, b, spec.y_ticks) for b in boxes]
    grid_err = []
    for box, xa in zip(boxes, x_axes):
        cols = gridline_columns(rgb, box)
        majors = xa.pixel(np.array([v for v in xa.ticks_value if np.isclose(np.log10(v) % 1, 0)]))
        grid_err.append(max((min(abs(c - m) for c in cols) for m in majors), default=np.nan) if cols
                        else np.nan)
    colours = legend_colours(rgb, boxes[-1].right, len(spec.series))
    radius = legend_radius(rgb, colours[0], boxes[-1].right)
    classes = classify(rgb, colours)

    # Candidates: every peak of every series' score map, in every panel.
    maps = [score_maps(classes, box, len(spec.series), radius) for box in boxes]
    candidates: list[list[tuple[int, float, float, float]]] = []  # per panel: (series, row, col, score)
    for m in maps:
        panel = [(s, r, c, float(m[s, int(r), int(c)])) for s in range(len(spec.series))
                 for r, c in peaks(m[s], min_score, radius)]
        # Two series cannot both own a disk at (almost) one place: a line of one over a marker of the
        # other scores there too, but lower.
        panel.sort(key=lambda x: -x[3])
        kept: list[tuple[int, float, float, float]] = []
        for cand in panel:
            if all((cand[1] - k[1]) ** 2 + (cand[2] - k[2]) ** 2 >= (0.7 * radius) ** 2 for k in kept):
                kept.append(cand)
        candidates.append(kept)

    # One model has one loss, hence one row in every panel: cluster each series' candidates by row.
    found: list[tuple[int, int, float, float, float, str]] = []  # (panel, series, row, col, score, how)
    missing = []
    for s in range(len(spec.series)):
        mine = sorted((r, p, c, sc) for p in range(len(boxes)) for (t, r, c, sc) in candidates[p] if t == s)
        clusters: list[list[tuple[float, int, float, float]]] = []
        for cand in mine:
            if clusters and cand[0] - clusters[-1][-1][0] <= row_tol:
                clusters[-1].append(cand)
            else:
                clusters.append([cand])
        for cluster in clusters:
            best = {}
            for r, p, c, sc in cluster:
                if p not in best or sc > best[p][2]:
                    best[p] = (r, c, sc)
            if max(sc for _, _, sc in best.values()) < strong_score and len(best) < 2:
                continue  # weak and seen in one panel only: a line over another series' marker
            row = float(np.mean([r for r, _, _ in best.values()]))
            for p in range(len(boxes)):
                if p in best:
                    r, c, sc = best[p]
                    found.append((p, s, r, c, sc, "peak"))
                    continue
                lo = max(int(round(row - row_tol)), 0)
                band = maps[p][s, lo:int(round(row + row_tol)) + 1]
                r_off, c = np.unravel_index(np.argmax(band), band.shape)
                if band[r_off, c] >= min_score:
                    found.append((p, s, float(lo + r_off), float(c), float(band[r_off, c]), "row search"))
                else:
                    missing.append(f"{spec.panels[p]} panel, H={spec.series[s]}, loss "
                                   f"{float(y_axes[p].value(row)):.3f}: hidden under other markers")

    records = []
    for p, s, r, c, score, how in found:
        records.append({"panel": spec.panels[p], "n_h": spec.series[s][0], "n_kv": spec.series[s][1],
                        "x": float(x_axes[p].value(c)), "loss": float(y_axes[p].value(r)),
                        "pixel_x": c, "pixel_y": r, "score": round(score, 3), "found_by": how})
    points = pd.DataFrame(records).sort_values(["panel", "n_h", "n_kv", "loss"],
                                               ascending=[True, False, False, False]).reset_index(drop=True)
    return Digitised(points, boxes, x_axes, y_axes, grid_err, radius, missing, spec.panels)


def provenance(result: Digitised, image: Path | str) -> dict:
    """What made the CSV: the image (path, sha256), the method, the calibration and the counts."""
    import datetime

    from gqa.paths import file_sha256

    image = Path(image)
    return {
        "source": "Chen et al., Cost-Optimal Grouped-Query Attention for Long-Context Modeling, EMNLP 2025, "
                  "Figure 2 (fig2.png from github.com/THUNLP/cost-optimal-gqa)",
        "image": image.name, "image_sha256": file_sha256(image),
        "method": "gqa.digitise: axes calibrated from tick marks (log x, linear y), markers found by "
                  "disk scoring per legend colour and matched across panels by row",
        "date": datetime.date.today().isoformat(),
        "marker_radius_px": round(result.radius, 2),
        "x_residual_max_px": [round(float(np.abs(a.residuals_px).max()), 3) for a in result.x_axes],
        "y_residual_max_px": [round(float(np.abs(a.residuals_px).max()), 3) for a in result.y_axes],
        "gridline_error_px": [round(float(g), 3) for g in result.gridline_error_px],
        "points_per_panel": result.points.groupby("panel").size().to_dict(),
        "missing": result.missing,
    }


def write(result: Digitised, image: Path | str, out: Path | str) -> tuple[Path, Path]:
    """Write the points CSV and its provenance JSON beside it, atomically (temp file, then rename)."""
    import json

    from gqa.paths import write_text_atomic

    out = Path(out)
    meta = out.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = ["panel", "n_h", "n_kv", "x", "loss", "pixel_x", "pixel_y", "score", "found_by"]
    for path, text in ((out, result.points[columns].to_csv(index=False, float_format="%.6g")),
                       (meta, json.dumps(provenance(result, image), indent=2) + "\n")):
        write_text_atomic(path, text)
    return out, meta
