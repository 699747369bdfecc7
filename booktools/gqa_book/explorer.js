// The cost explorer of chapter 1: a model preset, a context, a batch and a KV-cache dtype in, the
// memory and FLOPs split out. The same arithmetic as gqa.cost (Eq. 3-4, weights in bf16, N = total
// parameters): a browser test checks it against `gqa cost --json` for every preset.
(function () {
  "use strict";
  const KV_BYTES = { bf16: 2, fp16: 2, fp8: 1, int8: 1, int4: 0.5, fp32: 4 };
  const WEIGHT_BYTES = 2; // bf16 weights, as the paper's figures

  // Per token at context T for `batch` sequences; memory in bytes, FLOPs per token (Eq. 3).
  function compute(p, context, batch, kvDtype) {
    if (!(kvDtype in KV_BYTES)) throw new Error("unknown KV dtype " + kvDtype);
    const flopsInvariant = 2 * p.matmul_params;
    const flopsVariant = 4 * context * p.layers * p.head_dim * p.n_heads;
    const weightBytes = p.params_total * WEIGHT_BYTES;
    const kvBytes = 2 * batch * context * p.layers * p.n_kv_heads * p.head_dim * KV_BYTES[kvDtype];
    return {
      flops_time_invariant: flopsInvariant, flops_time_variant: flopsVariant,
      flops_total: flopsInvariant + flopsVariant,
      weight_bytes: weightBytes, kv_bytes: kvBytes, total_bytes: weightBytes + kvBytes,
      kv_share: kvBytes / (weightBytes + kvBytes),
    };
  }

  // Three significant digits with SI prefixes, as gqa.units.format_count / format_bytes.
  function scaled(n, units) {
    for (const [factor, unit] of units) {
      if (Math.abs(n) >= factor) {
        const v = n / factor;
        const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(v))));
        return v.toFixed(digits) + (unit ? " " + unit : "");
      }
    }
    return String(n);
  }
  const fmtBytes = (n) => scaled(n, [[1e15, "PB"], [1e12, "TB"], [1e9, "GB"], [1e6, "MB"], [1e3, "kB"], [1, "B"]]);
  const fmtCount = (n) => scaled(n, [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""]]);
  const fmtTokens = (t) => (t >= 1048576 ? t / 1048576 + "M" : t / 1024 + "K");

  function render(root, data) {
    const get = (name) => root.querySelector("[data-gqa=" + name + "]");
    const preset = data.presets[get("preset").value];
    const context = Math.pow(2, Number(get("context").value));
    const typed = Number(get("batch").value);
    const valid = Number.isInteger(typed) && typed >= 1;
    const batch = valid ? typed : root.lastBatch || 1;  // an invalid entry keeps the last good batch, said below
    root.lastBatch = batch;
    const kvDtype = get("kv-dtype").value;
    const notices = [];
    if (!valid) notices.push("batch must be a whole number from 1; showing batch " + batch + ".");
    if (preset.max_position && context > preset.max_position) {
      notices.push(fmtTokens(context) + " is beyond the " + fmtTokens(preset.max_position) +
                   " context this model was built for: an extrapolation of its cost, not a model that works there.");
    }
    get("notice").textContent = notices.join(" ");
    get("batch").setAttribute("aria-invalid", valid ? "false" : "true");
    const r = compute(preset, context, batch, kvDtype);
    get("context-label").textContent = fmtTokens(context) + " tokens";
    get("shape").textContent = preset.describe;
    get("weights").textContent = fmtBytes(r.weight_bytes);
    get("kv").textContent = fmtBytes(r.kv_bytes);
    get("memory").textContent = fmtBytes(r.total_bytes);
    get("kv-share").textContent = (100 * r.kv_share).toFixed(1) + "%";
    get("flops-invariant").textContent = fmtCount(r.flops_time_invariant);
    get("flops-variant").textContent = fmtCount(r.flops_time_variant);
    get("flops").textContent = fmtCount(r.flops_total);
    get("attention-share").textContent = (100 * r.flops_time_variant / r.flops_total).toFixed(1) + "%";
    get("bar-kv").style.width = (100 * r.kv_share).toFixed(1) + "%";
    get("bar-attention").style.width = (100 * r.flops_time_variant / r.flops_total).toFixed(1) + "%";
  }

  function init() {
    document.querySelectorAll(".gqa-explorer").forEach((root) => {
      const data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
      root.querySelectorAll("select, input").forEach((el) => el.addEventListener("input", () => render(root, data)));
      window.gqaCostExplorer = { compute: compute, presets: data.presets, render: () => render(root, data) };
      render(root, data);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
