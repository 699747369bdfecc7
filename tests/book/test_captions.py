"""A figure's caption describes each of its panels: checked against what the figure's axes show."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gqa_book import plots  # noqa: E402


def two_panels(left: str, right: str, *, twin: str | None = None, split: bool = False):
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([1, 2], [1, 2])
    a.set_ylabel(left)
    a.set_xlabel("context length T")
    if split:
        plots.stacked_cost_bars(b, ["x", "y"], [1, 2], [3, 4], right)
        b.legend()
    else:
        b.bar(["x", "y"], [1, 2])
        b.set_ylabel(right)
    b.set_xlabel("context length T")
    if twin:
        a.twinx().set_ylabel(twin)
    shown = plots.panels(fig)
    plt.close(fig)
    return shown


def test_panels_are_read_in_order_with_twins_folded_in():
    shown = two_panels("prefill time (ms)", "peak extra memory (MB)", twin="learning rate")
    assert [p["ylabel"] for p in shown] == ["prefill time (ms)", "peak extra memory (MB)"]
    assert shown[0]["twin_ylabels"] == ["learning rate"] and shown[1]["twin_ylabels"] == []
    assert shown[0]["position"][0] < shown[1]["position"][0]


def test_a_fig6_class_caption_fails_and_the_true_one_passes():
    shown = two_panels("prefill time (ms)", "peak extra memory (MB)")
    wrong = plots.caption_problems("Prefill: achieved GFLOP/s (left) and peak extra memory (right).", shown)
    assert any("prefill time" in p for p in wrong) and any("(left)" in p for p in wrong)
    assert plots.caption_problems("Prefill time (left) and peak extra memory (right) against context.", shown) == []
    swapped = plots.caption_problems("Peak extra memory (left) and prefill time (right).", shown)
    assert len(swapped) == 2


def test_a_fig12_class_caption_fails_when_the_bars_are_not_split():
    caption = "Inference memory (left) and inference FLOPs (right), split into time-invariant and time-variant parts."
    unsplit = two_panels("inference memory (bytes)", "inference FLOPs")
    assert any("time-invariant" in p for p in plots.caption_problems(caption, unsplit))
    split = two_panels("inference memory (bytes)", "inference FLOPs", split=True)
    assert plots.caption_problems(caption, split) == []


def test_a_twin_axis_must_be_named():
    shown = two_panels("loss (nats/token)", "loss (nats/token)", twin="learning rate")
    assert any("learning rate" in p for p in plots.caption_problems("Loss against tokens.", shown))
    assert plots.caption_problems("Loss against tokens with the learning rate on a second axis.", shown) == []


def test_head_sharing_draws_one_line_per_query_head_to_its_group():
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots()
    plots.head_sharing(ax, 8, 2, "GQA")
    lines = [line.get_xydata() for line in ax.get_lines()]
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(lines) == 8 and len(boxes) == 8 + 2
    # query heads 0-3 go to the first KV head, 4-7 to the second (x of the line's lower end)
    assert len({tuple(line[1]) for line in lines[:4]}) == 1 and len({tuple(line[1]) for line in lines[4:]}) == 1
    assert lines[0][1][0] < lines[4][1][0]
    assert plots.panels(fig) == []  # a diagram: no data panel for the caption check to read
    with pytest.raises(ValueError):
        plots.head_sharing(ax, 8, 3, "not a grouping")
    plt.close(fig)


def test_kv_against_weights_marks_the_balance_context():
    fig, ax = plt.subplots()
    plots.kv_against_weights(ax, [1024, 65536], [("m", 2e9, 1e5)])  # balance at 2e9 / 1e5 = 20,000 tokens
    (dot,) = ax.collections
    assert dot.get_offsets()[0][0] == pytest.approx(20_000) and dot.get_offsets()[0][1] == pytest.approx(2.0)
    assert plots.panels(fig)[0]["ylabel"] == "memory (GB)"
    plt.close(fig)


def test_side_by_side_panels_are_cut_out_one_by_one_in_reading_order():
    import io

    from PIL import Image

    fig, axes, spare = plots.panel_grid(3)
    for i, ax in enumerate(axes):
        ax.plot([0, 1], [0, i], label=f"line {i}", color=["#ff0000", "#0000ff", "#00ff00"][i], lw=3)
        ax.set_title(f"panel {i}")
    axes[0].set_ylabel("time (ms)")
    fig.canvas.draw()
    assert not any(t.get_visible() and t.get_text() for t in axes[1].get_yticklabels())  # shared y: hidden
    spare.legend(*axes[0].get_legend_handles_labels(), loc="center")  # the spare slot's legend is cut out too
    assert plots.side_by_side(fig)
    crops = plots.panel_images(fig)
    sizes = [Image.open(io.BytesIO(c)).size for c in crops]
    full = fig.get_size_inches() * fig.dpi
    assert len(crops) == 4 and all(w < 0.6 * full[0] for w, _ in sizes)  # one panel each, not the row
    second = Image.open(io.BytesIO(crops[1])).convert("RGB")
    colours = {second.getpixel((x, y)) for x in range(second.width) for y in range(second.height)}
    assert (0, 0, 255) in colours and (255, 0, 0) not in colours  # its own line, none of its neighbour's
    fig.canvas.draw()  # each panel, standing alone, has its own y numbers and label
    assert any(t.get_visible() and t.get_text() for t in axes[1].get_yticklabels())
    assert axes[1].get_ylabel() == "time (ms)"
    plt.close(fig)
    tall, (top, bottom) = plt.subplots(2, 1)
    assert not plots.side_by_side(tall)  # already a column: a phone shows it as it is
    plt.close(tall)


def test_responsive_figures_stack_side_by_side_panels_and_scroll_wide_ones():
    import base64
    import io

    from gqa_book.book import WIDE_FIGURE_PX, responsive_figures

    def png(width, height):
        fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        return base64.b64encode(buf.getvalue()).decode()

    p1, p2 = png(760, 400), png(760, 300)

    def cell(metadata, size, panels=None):
        extra = {"gqa_size": size, **({"gqa_panels": panels, "gqa_panel_density": 2} if panels else {})}
        return {"cell_type": "code", "metadata": {"mystnb": metadata}, "source": "",
                "outputs": [{"output_type": "display_data", "data": {"image/png": "WIDE", "text/plain": "<Figure>"},
                             "metadata": extra}]}

    figure = {"figure": {"name": "fig-a", "caption": "A caption"}, "image": {"alt": 'Two "bar" charts side by side'}}
    nb = {"cells": [cell(figure, [990, 380], [p1, p2]), cell(figure, [WIDE_FIGURE_PX + 200, 500]),
                    cell(figure, [500, 300]), cell({}, [990, 380], [p1, p2])]}
    assert responsive_figures(nb) == 2
    stacked, wide, small, uncaptioned = (c["outputs"][0]["data"] for c in nb["cells"])
    assert 'class="gqa-wide" src="data:image/png;base64,WIDE"' in stacked["text/html"]
    assert stacked["text/html"].count('alt="Two &quot;bar&quot; charts side by side (panel') == 2
    # panels drawn at twice the resolution declare their size in CSS pixels, half their pixels
    assert 'width="380" height="200"' in stacked["text/html"] and 'width="380" height="150"' in stacked["text/html"]
    assert 'class="gqa-scroll"' in wide["text/html"] and "text/html" not in small and "text/html" not in uncaptioned
