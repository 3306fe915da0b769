"""Diagnostic: does the synthetic table obey the basic rules of the real one (sdmetrics DiagnosticReport)?"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np

from suite.metrics._tabular import subsample
from suite.metrics.fidelity import sdv_metadata
from suite.registry import checks
from suite.types import Context, Goal, Measurement, MeasurementSpec, names, utility


@checks.register("diagnostic")
class DiagnosticMetric:
    """Validity (values inside the real ranges and categories, keys unique) and structure (same columns).

    A score below 1 means the synthetic data holds values the real data never had: numbers
    outside the real range, unknown categories. Some generators do this by design (uniform
    noise, a VAE's tails); a report reader sees which columns.
    """

    name: ClassVar[str] = "diagnostic"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        utility(
            "diagnostic.validity",
            Goal.MAXIMIZE,
            "synthetic values inside the real ranges and categories",
            bounds=(0, 1),
        ),
        utility("diagnostic.structure", Goal.MAXIMIZE, "same columns as the real table (1)", bounds=(0, 1)),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    requires: ClassVar[tuple[str, ...]] = ("sdmetrics",)

    def __init__(self, *, max_rows: int = 200_000) -> None:
        self.max_rows = max_rows

    def evaluate(self, ctx: Context) -> list[Measurement]:
        from sdmetrics.reports import DiagnosticReport

        rng = np.random.default_rng(ctx.seed)
        train, synthetic = subsample(ctx.train, self.max_rows, rng), subsample(ctx.synthetic, self.max_rows, rng)
        report = DiagnosticReport()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report.generate({"table": train}, {"table": synthetic}, sdv_metadata(ctx.metadata), verbose=False)
        properties = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"]))
        validity = report.get_details("Data Validity")
        by_column = {
            str(r["Column"]): {"metric": str(r["Metric"]), "score": float(r["Score"])} for _, r in validity.iterrows()
        }
        worst = sorted((c for c, v in by_column.items() if v["score"] < 1.0), key=lambda c: by_column[c]["score"])
        return [
            Measurement(
                "diagnostic.validity",
                float(properties["Data Validity"]),
                Goal.MAXIMIZE,
                details={"by_column": by_column, "columns_below_1": worst},
                meaning="share of synthetic values inside the real ranges and categories, averaged over columns",
            ),
            Measurement(
                "diagnostic.structure",
                float(properties["Data Structure"]),
                Goal.MAXIMIZE,
                meaning="whether the synthetic table has the real table's columns (1 = same columns)",
            ),
        ]
