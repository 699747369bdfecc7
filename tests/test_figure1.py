"""Figure 1's check: the two models costed by hand, and the sentences chosen by what the check found."""

from dataclasses import replace

import pytest

from gqa import figure1
from gqa.shapes import paper_shape

T = 131072


def bytes_by_hand(shape, context=T):
    # bf16: 2 bytes per weight (tied embedding once) and per cached value; K and V per layer per KV head
    return 2 * shape.params().total + 2 * (2 * context * shape.layers * shape.head_dim * shape.n_kv_heads)


def test_the_savings_are_the_hand_costed_bytes_and_flops():
    base, ours = paper_shape("paper-1.2b", 32, 8), paper_shape("paper-1.8b", 8, 1)
    checked = figure1.check(base, ours, T)
    assert checked.memory_saving == pytest.approx(1 - bytes_by_hand(ours) / bytes_by_hand(base))
    # Eq. 3: 2N + 4·T·L·d_h·n_h per token (QKᵀ and AV, 2 FLOPs per multiply-add each)
    def flops(s):
        return 2 * s.params().total + 4 * T * s.layers * s.head_dim * s.n_heads

    assert checked.flops_saving == pytest.approx(1 - flops(ours) / flops(base))
    assert len(checked.rows) == 11  # 3 text claims and 8 bars
    assert [r["ours"] for r in checked.rows[:2]] == [round(checked.memory_saving, 4), round(checked.flops_saving, 4)]
    # the bars: GB, and PFLOPs over the whole context (per-token FLOPs × T / 1e15)
    assert checked.rows[3]["ours"] == round(bytes_by_hand(base) / 1e9, 4)
    assert checked.rows[7]["ours"] == round(flops(base) * T / 1e15, 4)


def test_words_count_text_and_bar_claims_apart():
    checked = figure1.check(paper_shape("paper-1.2b", 32, 8), paper_shape("paper-1.8b", 8, 1), T)
    said = figure1.words(checked)
    assert said["n_text_claims"] == 3 and said["n_bar_claims"] == 8
    assert said["n_bars_reproduced"] == sum(r["status"] == "reproduced" for r in checked.rows[3:])
    assert said["n_text_reproduced"] == sum(r["status"] == "reproduced" for r in checked.rows[:3])
    assert said["mem_saving"].endswith("% of the memory")


def _with_statuses(checked, statuses, memory=0.5, flops=0.5):
    rows = [dict(r, status=s) for r, s in zip(checked.rows, statuses)] + checked.rows[len(statuses):]
    return replace(checked, rows=rows, memory_saving=memory, flops_saving=flops)


@pytest.mark.parametrize("statuses, memory, expected", [
    (("reproduced", "reproduced"), 0.5, "Both savings agree"),
    (("reproduced", "not reproduced"), 0.5, "The direction of the saving agrees"),
    (("not reproduced", "not reproduced"), -0.1, "Here the (8, 1) model does not save both"),
])
def test_the_agreement_sentence_follows_the_first_two_rows(statuses, memory, expected):
    checked = figure1.check(paper_shape("paper-1.2b", 32, 8), paper_shape("paper-1.8b", 8, 1), T)
    assert figure1.words(_with_statuses(checked, statuses, memory))["saving_agreement"].startswith(expected)


def test_worked_numbers_and_the_table_row():
    from gqa.cost import inference_cost

    shape = paper_shape("paper-1.2b", 32, 8)
    c = inference_cost(shape, T)
    said = figure1.worked_numbers(shape, c)
    assert said["base_N"] == f"{shape.params().total:,}"  # Eq. 4's weights: every parameter but the norms
    # 2 (K, V) × 131,072 × 36 layers × 64 × 8 KV heads = 4,831,838,208 values
    assert said["base_M_var"] == "4.83 G"
    row = figure1.model_row("x", shape, c)
    assert row["L"] == 36 and row["(n_h, n_kv)"] == "(32, 8)" and row["memory, KV cache"] == said["base_kv_bytes"]


def test_the_two_accountings_are_named_apart():
    said = figure1.accounting_words()
    assert set(said) == {"fig2_mem_saving", "fig2_flops_saving", "fig2_kv_share", "eq_kv_share", "z_flops_eq_base",
                         "z_flops_eq_ours", "z_flops_fig2_base", "z_flops_fig2_ours"}
    assert all(v.endswith("%") for k, v in said.items() if k.startswith(("z_", "fig2_m", "fig2_f")))
    # Figure 2's accounting (N without embeddings, FLOPs per sequence, Z on bytes), the named shapes costed here
    from gqa import fig2, search
    from gqa.units import format_number

    ours, base = (search.cost_of_shape(s, 131072, fig2.FIG2_SETTING) for s in (fig2.PAPER_OPTIMUM, fig2.BASELINE))
    assert said["fig2_mem_saving"] == f"{format_number(100 * (1 - ours.memory_bytes / base.memory_bytes))}%"
    assert said["fig2_flops_saving"] == f"{format_number(100 * (1 - ours.flops / base.flops))}%"
    # 1B MHA, Figure 2's accounting: KV 2·T·36·64·24 values against N = 36·(1536·64·96 + 3·1536·4096) (BF16 both)
    kv, n = 2 * 131_072 * 36 * 64 * 24, 36 * (1536 * 64 * 96 + 3 * 1536 * 4096)
    assert said["fig2_kv_share"] == f"{kv / (kv + n):.4f}"
