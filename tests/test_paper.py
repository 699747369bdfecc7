import pytest

from gqa import paper


def test_claims_load_with_provenance():
    claims = paper.claims()
    c = claims["fig1_memory_saving"]
    assert c.value == 0.508 and c.unit == "fraction" and "Fig. 1" in c.source and c.label
    assert claims["fig1_flops_saving"].value == 0.578
    assert all(claim.source and claim.description for claim in claims.values())


def test_compare_and_check_claim():
    assert paper.compare(0.508, 0.52, abs_tol=0.02) == "reproduced"
    assert paper.compare(0.508, 0.66, abs_tol=0.02) == "differs"
    assert paper.compare(4.16, 4.3, rel_tol=0.05) == "reproduced"
    assert paper.compare(4.16, 4.5, rel_tol=0.05) == "differs"
    row = paper.check_claim(paper.claims()["fig1_flops_saving"], 0.694, how="per token")
    assert row["status"] == "differs" and row["paper"] == 0.578 and row["tolerance"] == "±0.05"
    assert paper.check_claim(paper.claims()["fig1_flops_saving"], 0.62)["status"] == "reproduced"


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="paper data not found"):
        paper.claims(tmp_path / "nope.csv")


def test_typed_tables_agree_with_the_shapes_the_package_uses():
    from gqa.shapes import PAPER_ANCHOR_SHAPES, PAPER_SCALING_SHAPES

    t9 = paper.table("table9")
    assert {r.label.lower(): (r.layers, r.d_model) for r in t9.itertuples()} == PAPER_SCALING_SHAPES
    t7 = paper.table("table7")
    # Table 7 restarts at 1.2B (36, 1536), which the package keeps with the Table 9 shapes.
    assert {r.label.lower(): (r.layers, r.d_model) for r in t7.itertuples()} == \
        {"1.2b": PAPER_SCALING_SHAPES["1.2b"], **PAPER_ANCHOR_SHAPES}
    t4 = paper.table("table4")
    assert len(t4) == 40 and t4.groupby("target_loss").size().eq(5).all()
    assert (t4.n_kv <= t4.n_h).all()
    with pytest.raises(FileNotFoundError, match="known: appendix_i_fits"):
        paper.table("table99")
