"""Fidelity: how closely the synthetic table follows the training table (sdmetrics QualityReport)."""

from __future__ import annotations

import warnings
from typing import ClassVar

from suite.registry import checks
from suite.types import Context, Goal, Measurement


@checks.register("fidelity")
class FidelityMetric:
    """sdmetrics' QualityReport: column shapes, column pair trends and their mean, from 0 to 1."""

    name: ClassVar[str] = "fidelity"
    measures: ClassVar[tuple[str, ...]] = ("fidelity.quality", "fidelity.column_shapes", "fidelity.column_pairs")
    requires: ClassVar[tuple[str, ...]] = ("sdmetrics",)

    def __init__(self) -> None:
        pass

    def evaluate(self, ctx: Context) -> list[Measurement]:
        from sdmetrics.reports import QualityReport

        metadata = {"tables": {"table": ctx.metadata.to_sdv_dict()}, "relationships": []}
        report = QualityReport()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report.generate({"table": ctx.train}, {"table": ctx.synthetic}, metadata, verbose=False)
        properties = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"]))
        shapes = report.get_details("Column Shapes")
        pairs = report.get_details("Column Pair Trends")
        shape_scores = {str(r["Column"]): float(r["Score"]) for _, r in shapes.iterrows()}
        worst_pairs = pairs.sort_values("Score").head(10)
        pair_scores = [
            {
                "columns": [str(r["Column 1"]), str(r["Column 2"])],
                "metric": str(r["Metric"]),
                "score": float(r["Score"]),
            }
            for _, r in worst_pairs.iterrows()
        ]
        return [
            Measurement(
                "fidelity.quality",
                float(report.get_score()),
                Goal.MAXIMIZE,
                details={"properties": {k: float(v) for k, v in properties.items()}},
                meaning="sdmetrics quality score: mean of column shapes and column pair trends (1 = identical)",
            ),
            Measurement(
                "fidelity.column_shapes",
                float(properties["Column Shapes"]),
                Goal.MAXIMIZE,
                details={"by_column": shape_scores},
                meaning="how well each column's distribution is kept (KS / total variation complement)",
            ),
            Measurement(
                "fidelity.column_pairs",
                float(properties["Column Pair Trends"]),
                Goal.MAXIMIZE,
                details={"worst_pairs": pair_scores},
                meaning="how well correlations and contingency tables between column pairs are kept",
            ),
        ]
