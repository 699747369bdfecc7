"""Chapter 1's live cost explorer: markup, the presets' constants and a small script, as one HTML output.

The reader picks a model preset, a context, a batch and a KV-cache dtype; the page shows the memory split
(weights, KV cache), the FLOPs split (time-invariant, time-variant) and the KV share, recomputed in the
browser by `explorer.js` with Eq. 3-4 (bf16 weights, N = total parameters, as `gqa cost`). Python fills
in the first values, so a page without scripts (or printed) still shows a worked case. No server, no
network: the script is inlined.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from gqa import cost
from gqa.shapes import PUBLIC_MODELS, get_preset, preset_names
from gqa.units import format_bytes, format_count

SCRIPT = Path(__file__).with_name("explorer.js")
KV_DTYPES = ("bf16", "fp8", "int4", "fp32")
CONTEXT_EXPONENTS = range(10, 21)  # 1K to 1M tokens, powers of two


def preset_constants() -> dict[str, dict]:
    """Per preset, what the explorer's arithmetic needs that does not depend on the reader's choices."""
    out = {}
    for name in preset_names():
        shape = get_preset(name)
        stored, matmul = cost.cost_params(shape, "total")
        public = PUBLIC_MODELS.get(name)
        out[name] = {"layers": shape.layers, "n_heads": shape.n_heads, "n_kv_heads": shape.n_kv_heads,
                     "head_dim": shape.head_dim, "params_total": stored, "matmul_params": matmul,
                     "describe": f"{name}: {shape.describe()}",
                     "max_position": public.max_position if public else None}
    return out


def _row(label: str, key: str, value: str) -> str:
    return f'<tr><th scope="row">{label}</th><td data-gqa="{key}">{value}</td></tr>'


def cost_explorer_html(preset: str = "llama-3.1-8b", context: int = 131072, batch: int = 1,
                       kv_dtype: str = "bf16") -> str:
    """The explorer's HTML, its first view computed here by gqa.cost for the given choices."""
    exponent = context.bit_length() - 1
    if preset not in preset_names() or context != 1 << exponent or exponent not in CONTEXT_EXPONENTS:
        raise ValueError(f"the explorer starts at a preset ({', '.join(preset_names())}) and a power-of-two "
                         f"context from 1K to 1M tokens, got {preset!r} at {context}")
    if kv_dtype not in KV_DTYPES or batch < 1:
        raise ValueError(f"kv_dtype must be one of {', '.join(KV_DTYPES)} and batch >= 1")
    shape = get_preset(preset)
    c = cost.inference_cost(shape, context, kv_dtype=kv_dtype, batch=batch)
    per_token_flops = c.flops / batch
    options = "".join(f'<option value="{n}"{" selected" if n == preset else ""}>{n}</option>' for n in preset_names())
    dtypes = "".join(f'<option value="{d}"{" selected" if d == kv_dtype else ""}>{d}</option>' for d in KV_DTYPES)
    data = html.escape(json.dumps({"presets": preset_constants()}), quote=False)
    attention_share = c.flops_time_variant / c.flops
    return f"""<div class="gqa-explorer">
<div class="gqa-explorer-controls">
<label>model <select data-gqa="preset" aria-label="model preset">{options}</select></label>
<label>context <input data-gqa="context" type="range" min="{min(CONTEXT_EXPONENTS)}" max="{max(CONTEXT_EXPONENTS)}"
 step="1" value="{exponent}" aria-label="context length, powers of two">
 <span data-gqa="context-label">{context // 1024}K tokens</span></label>
<label>batch <input data-gqa="batch" type="number" min="1" max="4096" value="{batch}" aria-label="batch"></label>
<label>KV cache <select data-gqa="kv-dtype" aria-label="KV-cache dtype">{dtypes}</select></label>
</div>
<p class="gqa-explorer-shape" data-gqa="shape">{html.escape(preset)}: {html.escape(shape.describe())}</p>
<div class="gqa-explorer-tables">
<table><caption>Memory</caption>
{_row("weights (bf16)", "weights", format_bytes(c.bytes_weights))}
{_row("KV cache", "kv", format_bytes(c.bytes_kv_cache))}
{_row("total", "memory", format_bytes(c.bytes_total))}
{_row("KV share", "kv-share", f"{100 * c.kv_share_of_memory:.1f}%")}
</table>
<table><caption>FLOPs per token</caption>
{_row("weights", "flops-invariant", format_count(c.flops_time_invariant / batch))}
{_row("attention (4TLd<sub>h</sub>n<sub>h</sub>)", "flops-variant", format_count(c.flops_time_variant / batch))}
{_row("total", "flops", format_count(per_token_flops))}
{_row("attention share", "attention-share", f"{100 * attention_share:.1f}%")}
</table>
</div>
<div class="gqa-explorer-bar" aria-hidden="true"><span>memory</span><div><div class="gqa-bar-kv" data-gqa="bar-kv"
 style="width: {100 * c.kv_share_of_memory:.1f}%"></div></div></div>
<div class="gqa-explorer-bar" aria-hidden="true"><span>FLOPs</span><div><div class="gqa-bar-attention"
 data-gqa="bar-attention" style="width: {100 * attention_share:.1f}%"></div></div></div>
<p class="gqa-explorer-shape" data-gqa="notice" role="status"></p>
<p class="gqa-explorer-shape">Orange: the KV cache and the attention operator, which grow with the context;
blue: the weights, the same at every context. A weight costs 2 FLOPs a token when the token multiplies by
it: an untied input embedding (Llama-3.1-8B's, say) is a lookup and costs none.</p>
<script type="application/json">{data}</script>
<script>{SCRIPT.read_text(encoding="utf-8")}</script>
</div>"""


def cost_explorer(**choices):
    """The explorer as a notebook output (IPython's HTML display object)."""
    from IPython.display import HTML

    return HTML(cost_explorer_html(**choices))
