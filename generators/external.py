"""`file`: a synthetic table made outside the suite (a vendor's, an R pipeline's), gated like any other.

Its maker must have been given only the training rows of a recorded split (`suite split`,
suite/handover.py); the runner refuses a scenario that names no record. Nothing can be refitted,
so checks that refit the generator (shadow attacks) do not apply to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd

from suite.coercion import read_external
from suite.generators._columns import require_fit
from suite.metadata import Metadata
from suite.registry import generators


@generators.register("file")
class FileGenerator:
    """Returns the rows of a table file (CSV, Parquet or Excel), checked against the training columns."""

    name: ClassVar[str] = "file"
    #: Made elsewhere: its output is the file, whatever n is asked; nothing can be refitted.
    external: ClassVar[bool] = True

    def __init__(self, *, path: str) -> None:
        self.path = path

    def preflight(self, train: pd.DataFrame, metadata: Metadata) -> None:
        """Read and check the file before the run makes any output: a wrong column is bad input (exit 2)."""
        read_external(Path(self.path), list(train.columns), metadata, "generator `file`")

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> FileGenerator:
        """The fit draws nothing at random: `seed` is accepted for the one idiom and unused."""
        self.rows_ = read_external(Path(self.path), list(train.columns), metadata, "generator `file`")
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "rows_")
        return self.rows_.copy()
