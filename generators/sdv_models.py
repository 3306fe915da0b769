"""SDV's single-table synthesizers, behind the suite's generator interface.

SDV is imported inside `fit`, so listing and validating scenarios never loads it.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import pandas as pd

from suite.metadata import Metadata
from suite.registry import generators
from suite.seeding import seeded


def _sdv_metadata(metadata: Metadata) -> Any:
    from sdv.metadata import Metadata as SDVMetadata

    return SDVMetadata.load_from_dict(
        {"tables": {"table": metadata.to_sdv_dict()}, "relationships": [], "METADATA_SPEC_VERSION": "V1"}
    )


class _SDVGenerator:
    """Shared fit/sample for SDV synthesizers; subclasses name the class and its parameters."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ("sdv",)
    synthesizer: ClassVar[str]

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, train: pd.DataFrame, metadata: Metadata) -> _SDVGenerator:
        import sdv.single_table

        cls = getattr(sdv.single_table, self.synthesizer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model_ = cls(_sdv_metadata(metadata), **self._params())
            self.model_.fit({"table": train})
        self.dtypes_ = train.dtypes.copy()
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        with warnings.catch_warnings(), seeded(seed):
            warnings.simplefilter("ignore")
            self.model_.reset_sampling()
            if hasattr(self.model_, "_set_random_state"):
                self.model_._set_random_state(seed)
            out = self.model_.sample(num_rows=n)
        frame = out["table"] if isinstance(out, dict) else out
        return frame.astype(self.dtypes_.to_dict(), errors="ignore").reset_index(drop=True)


@generators.register("sdv.gaussian_copula")
class GaussianCopulaGenerator(_SDVGenerator):
    """SDV's GaussianCopulaSynthesizer: marginals joined by a Gaussian copula."""

    name: ClassVar[str] = "sdv.gaussian_copula"
    synthesizer: ClassVar[str] = "GaussianCopulaSynthesizer"

    def __init__(
        self,
        *,
        default_distribution: str = "beta",
        numerical_distributions: dict[str, str] | None = None,
        enforce_min_max_values: bool = True,
        enforce_rounding: bool = True,
    ) -> None:
        self.default_distribution = default_distribution
        self.numerical_distributions = numerical_distributions
        self.enforce_min_max_values = enforce_min_max_values
        self.enforce_rounding = enforce_rounding

    def _params(self) -> dict[str, Any]:
        return {
            "default_distribution": self.default_distribution,
            "numerical_distributions": self.numerical_distributions,
            "enforce_min_max_values": self.enforce_min_max_values,
            "enforce_rounding": self.enforce_rounding,
        }
