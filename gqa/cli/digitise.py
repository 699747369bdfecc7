"""`gqa digitise`: recover the points of the paper's Figure 2 from its image."""

from __future__ import annotations

import argparse


def cmd_digitise(args: argparse.Namespace) -> int:
    from gqa import digitise
    from gqa.cli._common import check_output

    if args.out:
        check_output(args.out)
    result = digitise.digitise(args.image)
    print(result.report())
    if args.out:
        csv_path, meta = digitise.write(result, args.image, args.out)
        print(f"wrote {len(result.points)} points to {csv_path} and provenance to {meta}")
    return 0


def add_digitise(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "digitise", help="recover the plotted points of the paper's Figure 2 from its image",
        description="Calibrate each panel's axes from its tick marks, find the markers of each series "
                    "by legend colour, match them across panels by loss, and print the calibration "
                    "residuals and the points per series and panel.",
        epilog="example: gqa digitise ../shared/paper/fig2.png --out data/paper/fig2_points.csv")
    p.add_argument("image", help="Figure 2 as PNG (fig2.png in the paper's repository)")
    p.add_argument("--out", metavar="CSV", help="write the points here, with provenance in a .json beside it")
    p.set_defaults(func=cmd_digitise)
