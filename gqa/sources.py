"""Where fitted laws come from: a store of run records, a fits file, or the paper's digitised Figure 2.

Each source is a `FitSource`: the laws, the cost setting they belong to (head dim, vocabulary, aspect-
ratio anchors, how costs are counted) and, when fitted here, their bootstrap. `gqa plan`, `gqa fit`, the
benchmarks and the chapters take their fits from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gqa.runs import check_record
from gqa.scaling import Bootstrap, PowerLaw
from gqa.search import CostSetting, Heads, _json_safe
from gqa.shapes import PAPER_HEAD_DIM, PAPER_VOCAB


def fits_from_records(records: Sequence[dict]) -> tuple[dict[Heads, tuple[list, list]], dict]:
    """Group run records into fit inputs {H: (N_nonemb, val_loss)} and the setting they imply."""
    data: dict[Heads, tuple[list, list]] = {}
    head_dims, vocabs, sizes = set(), set(), set()
    for i, r in enumerate(records, 1):
        check_record(r, f"record {i} (run {r.get('run_id', '?')})")
        h = (int(r["n_heads"]), int(r["n_kv_heads"]))
        data.setdefault(h, ([], []))
        data[h][0].append(float(r["n_non_embedding"]))
        data[h][1].append(float(r["val_loss"]))
        head_dims.add(int(r["head_dim"]))
        vocabs.add(int(r["vocab"]))
        sizes.add((int(r["layers"]), int(r["d_model"])))
    if not data:
        raise ValueError("no run records to fit")
    if len(head_dims) != 1 or len(vocabs) != 1:
        raise ValueError(f"records mix head dims {sorted(head_dims)} or vocabularies {sorted(vocabs)}")
    return data, {"head_dim": head_dims.pop(), "vocab": vocabs.pop(), "sizes": sorted(sizes)}


@dataclass
class FitSource:
    """Fitted laws with the setting they belong to, and (optionally) their bootstrap."""

    description: str
    fits: dict[Heads, PowerLaw]
    setting: CostSetting
    boot: Bootstrap | None = None

    def to_json(self) -> dict:
        st = self.setting
        out = {"source": self.description, "head_dim": st.head_dim, "vocab": st.vocab,
               "anchors": [list(a) for a in st.anchors] if st.anchors else None,
               "cost_setting": {"params": st.params, "flops_per": st.flops_per, "z_memory": st.z_memory,
                                "dtype": st.dtype},
               "fits": [{"n_heads": h[0], "n_kv_heads": h[1], "a": f.a, "b": f.b, "e": f.e, "r2": f.r2,
                         "n_points": f.n_points, "n_range": f.n_range, "loss_range": f.loss_range}
                        for h, f in self.fits.items()]}
        if self.boot is not None:
            out["bootstrap"] = {"resamples": self.boot.resamples, "seed": self.boot.seed,
                                "shared_e": self.boot.shared_e,
                                "intervals_95": {f"{h[0]},{h[1]}": self.boot.interval(h) for h in self.fits}}
        return _json_safe(out)


def source_from_records(path_or_records, *, resamples: int = 1000, seed: int = 0, shared_e: bool = False,
                        label: str | None = None) -> FitSource:
    """Fit every head configuration of a run store, or of a list of records (N = non-embedding
    parameters, validation loss). `label` says where a list of records came from."""
    from gqa import runs
    from gqa.paths import display_path
    from gqa.scaling import bootstrap, fit_family
    from gqa.shapes import anchors_from_shapes

    if isinstance(path_or_records, list):
        records, where = path_or_records, label or "the given records"
    else:
        records, where = runs.read(path_or_records), display_path(path_or_records)
    if not records:
        raise ValueError(f"no run records in {where}")
    try:
        data, meta = fits_from_records(records)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    fits = fit_family(data, shared_e=shared_e)
    boot = bootstrap(data, resamples=resamples, seed=seed, shared_e=shared_e, point=fits) if resamples else None
    setting = CostSetting(head_dim=meta["head_dim"], vocab=meta["vocab"],
                          anchors=tuple(anchors_from_shapes(meta["sizes"], meta["head_dim"])))
    return FitSource(f"{len(records)} runs in {where}", fits, setting, boot)


def _whole(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and float(value).is_integer()


def _number(entry: dict, key: str, where: str, *, low: float | None = None, high: float | None = None,
            optional: bool = False) -> float | None:
    value = entry.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (low is not None and value <= low) or (high is not None and value > high):
        span = (f" in ({low:g}, {high:g}]" if low is not None and high is not None else
                f" > {low:g}" if low is not None else "")
        raise ValueError(f"{where}: {key} must be a finite number{span}, got {value!r}")
    return float(value)


def _fit_entry(entry, where: str) -> tuple[Heads, PowerLaw]:
    """One law of a fits file, checked for meaning: whole head counts with n_kv dividing n_h, a > 0,
    0 < b <= 5 (loss exponents of language models lie near 0.05-0.5), E >= 0, ranges low <= high."""
    from gqa.shapes import check_heads

    if not isinstance(entry, dict):
        raise ValueError(f"{where}: not a JSON object")
    for key in ("n_heads", "n_kv_heads"):
        if not (_whole(entry.get(key)) and entry[key] > 0):
            raise ValueError(f"{where}: {key} must be a positive whole number, got {entry.get(key)!r}")
    heads = (int(entry["n_heads"]), int(entry["n_kv_heads"]))
    try:
        check_heads(*heads)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    a = _number(entry, "a", where, low=0)
    b = _number(entry, "b", where, low=0, high=5)
    e = _number(entry, "e", where)
    if e < 0:
        raise ValueError(f"{where}: e must be >= 0 (an irreducible loss in nats/token), got {e!r}")
    r2 = _number(entry, "r2", where, optional=True)
    n_points = entry.get("n_points", 0)
    if not (_whole(n_points) and n_points >= 0):
        raise ValueError(f"{where}: n_points must be a whole number >= 0, got {n_points!r}")
    ranges = []
    for key in ("n_range", "loss_range"):
        value = entry.get(key)
        if value is None:
            ranges.append(None)
            continue
        if not (isinstance(value, list) and len(value) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in value)):
            raise ValueError(f"{where}: {key} must be [low, high] of two positive numbers, got {value!r}")
        if value[0] > value[1]:
            raise ValueError(f"{where}: {key} is inverted: low {value[0]:g} > high {value[1]:g}")
        ranges.append((float(value[0]), float(value[1])))
    return heads, PowerLaw(a, b, e, float("nan") if r2 is None else r2, int(n_points), *ranges)


def source_from_json(path) -> FitSource:
    """Fits written by `gqa fit` (or typed from elsewhere): a JSON object with a `fits` list."""
    import json
    from pathlib import Path

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a fits file (expected a JSON object with a `fits` list)")
    entries = raw.get("fits")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: not a fits file (`fits` must be a non-empty list)")
    fits = {}
    for i, entry in enumerate(entries):
        heads, law = _fit_entry(entry, f"{path}: fits[{i}]")
        if heads in fits:
            raise ValueError(f"{path}: fits[{i}]: a second fit for ({heads[0]}, {heads[1]}); each head "
                             "configuration has one law")
        fits[heads] = law
    for key in ("head_dim", "vocab"):
        if key in raw and not (_whole(raw[key]) and raw[key] > 0):
            raise ValueError(f"{path}: {key} must be a positive whole number, got {raw[key]!r}")
    anchors = raw.get("anchors")
    if anchors is not None and not (isinstance(anchors, list) and all(
            isinstance(a, list) and len(a) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and math.isfinite(v) and v > 0 for v in a) for a in anchors)):
        raise ValueError(f"{path}: anchors must be a list of [N, d/L] pairs of positive numbers, got {anchors!r}")
    anchors = tuple(tuple(a) for a in anchors) if anchors else None
    counted = raw.get("cost_setting") or {}
    if not isinstance(counted, dict):
        raise ValueError(f"{path}: cost_setting must be an object, got {counted!r}")
    try:
        setting = CostSetting(head_dim=int(raw.get("head_dim", PAPER_HEAD_DIM)),
                              vocab=int(raw.get("vocab", PAPER_VOCAB)), anchors=anchors,
                              **{k: counted[k] for k in ("params", "flops_per", "z_memory", "dtype") if k in counted})
    except ValueError as e:
        raise ValueError(f"{path}: cost_setting: {e}") from None
    return FitSource(raw.get("source", str(path)), fits, setting)


def figure2(resamples: int = 1000, seed: int = 0, shared_e: bool = False) -> FitSource:
    """The fits of the paper's Figure 2, digitised (data/paper/fig2_points.csv), with Figure 2's cost
    accounting: N without embeddings, FLOPs per sequence of T tokens, Z on bytes."""
    from gqa import fig2
    from gqa.scaling import bootstrap, fit_family

    fig_models = fig2.identify(fig2.models())
    data = fig2.fit_data(fig_models)
    fits = fit_family(data, shared_e=shared_e)
    boot = bootstrap(data, resamples=resamples, seed=seed, shared_e=shared_e, point=fits) if resamples else None
    e = "shared E" if shared_e else "E per configuration"
    return FitSource(f"the paper's Figure 2, digitised: {len(fig_models)} models of {len(fits)} head "
                     f"configurations (data/paper/fig2_points.csv), {e}; N without embeddings, FLOPs "
                     "per sequence of T tokens, Z on bytes", fits, fig2.FIG2_SETTING, boot)
