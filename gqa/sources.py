"""Where fitted laws come from: a store of run records, a fits file, or the paper's digitised Figure 2.

Each source is a `FitSource`: the laws, the cost setting they belong to (head dim, vocabulary, aspect-
ratio anchors, how costs are counted) and, when fitted here, their bootstrap. `gqa plan`, `gqa fit`, the
benchmarks and the chapters take their fits from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gqa import values
from gqa.runs import check_record
from gqa.scaling import Bootstrap, PowerLaw
from gqa.search import CostSetting, Heads, heads_text
from gqa.shapes import PAPER_HEAD_DIM, PAPER_VOCAB
from gqa.units import json_safe


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
                                "intervals_95": {heads_text(h): self.boot.interval(h) for h in self.fits}}
        return json_safe(out)


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


def _fit_entry(entry, where: str) -> tuple[Heads, PowerLaw]:
    """One law of a fits file, checked for meaning (`gqa.values`): whole head counts with n_kv dividing n_h,
    a > 0, 0 < b <= 5 (loss exponents of language models lie near 0.05-0.5), E >= 0, ranges low <= high."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: not a JSON object")
    for key in ("n_heads", "n_kv_heads"):
        values.check(entry.get(key), values.COUNT, f"{where}: {key}")
    heads = (int(entry["n_heads"]), int(entry["n_kv_heads"]))
    values.check(list(heads), values.heads, where)
    for key, rule in (("a", values.POSITIVE), ("b", values.number(above=0, at_most=5)),
                      ("e", values.number(at_least=0)), ("n_points", values.NON_NEGATIVE_COUNT)):
        values.check(entry.get(key, 0 if key == "n_points" else None), rule, f"{where}: {key}")
    if entry.get("r2") is not None:
        values.check(entry["r2"], values.number(), f"{where}: r2")
    ranges = []
    for key in ("n_range", "loss_range"):
        value = entry.get(key)
        if value is not None:
            values.check(value, values.low_high(values.POSITIVE, "positive numbers"), f"{where}: {key}")
        ranges.append((float(value[0]), float(value[1])) if value is not None else None)
    return heads, PowerLaw(float(entry["a"]), float(entry["b"]), float(entry["e"]),
                           float("nan") if entry.get("r2") is None else float(entry["r2"]),
                           int(entry.get("n_points", 0)), *ranges)


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
        if key in raw:
            values.check(raw[key], values.COUNT, f"{path}: {key}")
    anchors = raw.get("anchors")
    if anchors is not None:
        values.check(anchors, values.each(lambda a: None if isinstance(a, list) and len(a) == 2 else "a pair",
                                          "[N, d/L] pairs"), f"{path}: anchors")
        for pair in anchors:
            values.check(pair, values.each(values.POSITIVE, "positive numbers"), f"{path}: anchors")
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
