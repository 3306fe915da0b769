"""SDV's PARSynthesizer for longitudinal tables: whole patient histories, not rows.

A sequential generator (`sequential = True`) is fitted on the visits with the entity column
present (named by `metadata.roles.entity`, ordered by `metadata.roles.sequence_index`) and
`sample(n, seed=...)` returns the visits of `n` new entities, with that entity column holding
made-up ids. The runner turns them into one record per history before any check sees them
(`suite.histories`).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import pandas as pd

from suite.generators._columns import require_fit
from suite.generators.sdv_models import _rdt_fit_state, _torch_for_fit
from suite.histories import HistorySchema
from suite.metadata import ID, Metadata
from suite.registry import generators
from suite.seeding import fit_seed, seeded


@generators.register("sdv.par")
class PARGenerator:
    """SDV's PARSynthesizer (probabilistic autoregressive model, Zhang et al. 2022).

    Static columns (one value per entity in the training rows) become PAR's context columns
    unless `context_columns` names them; the visits are generated one after another by a
    recurrent network conditioned on them.
    """

    name: ClassVar[str] = "sdv.par"
    requires: ClassVar[tuple[str, ...]] = ("sdv", "torch")
    sequential: ClassVar[bool] = True

    def __init__(
        self,
        *,
        epochs: int = 128,
        context_columns: list[str] | None = None,
        segment_size: int | None = None,
        sample_size: int = 1,
        enforce_min_max_values: bool = True,
        enforce_rounding: bool = True,
    ) -> None:
        self.epochs = epochs
        self.context_columns = context_columns
        self.segment_size = segment_size
        self.sample_size = sample_size
        self.enforce_min_max_values = enforce_min_max_values
        self.enforce_rounding = enforce_rounding

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> PARGenerator:
        """SDV reads global random state: the fit runs inside a local `seeded(seed)` block."""
        from sdv.metadata import Metadata as SDVMetadata
        from sdv.sequential import PARSynthesizer

        entity, index = metadata.roles.entity, metadata.roles.sequence_index
        if not entity or not index or entity not in train.columns:
            raise ValueError(
                f"{self.name} models sequences: the dataset needs roles.entity and roles.sequence_index, "
                "and the generator is fitted on the visits with the entity column"
            )
        context = (
            list(self.context_columns)
            if self.context_columns is not None
            else list(HistorySchema.fit(train.drop(columns=[entity]), train[entity], metadata, index).static)
        )
        unknown = [c for c in context if c not in train.columns]
        if unknown:
            raise ValueError(f"{self.name}: context_columns {unknown} are not columns of the table")
        table = metadata.to_sdv_dict()
        table["columns"][entity] = {"sdtype": ID}
        table.pop("primary_key", None)
        table["sequence_key"] = entity
        table["sequence_index"] = index
        seed = fit_seed(seed)
        with warnings.catch_warnings(), seeded(seed):
            warnings.simplefilter("ignore")
            sdv_metadata = SDVMetadata.load_from_dict(
                {"tables": {"table": table}, "relationships": [], "METADATA_SPEC_VERSION": "V1"}
            )
            self.model_ = PARSynthesizer(
                sdv_metadata,
                epochs=self.epochs,
                context_columns=context,
                segment_size=self.segment_size,
                sample_size=self.sample_size,
                enforce_min_max_values=self.enforce_min_max_values,
                enforce_rounding=self.enforce_rounding,
                cuda=False,
                verbose=False,
            )
            with _rdt_fit_state(seed), _torch_for_fit(seed):
                self.model_.fit({"table": train})
        self.entity_ = entity
        self.context_ = context
        self.dtypes_ = train.dtypes.drop(entity)
        self.columns_ = list(train.columns)
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        """The visits of `n` new entities, the entity column holding `synthetic-<k>` ids."""
        require_fit(self, "model_")
        with warnings.catch_warnings(), seeded(seed), _torch_for_fit(seed):
            warnings.simplefilter("ignore")
            for model in (self.model_, getattr(self.model_, "_context_synthesizer", None)):
                if hasattr(model, "reset_sampling"):
                    model.reset_sampling()
                if hasattr(model, "_set_random_state"):
                    model._set_random_state(seed)
            out = self.model_.sample_sequences(num_sequences=n)
        frame = (out["table"] if isinstance(out, dict) else out).reset_index(drop=True)
        codes = pd.factorize(frame[self.entity_], use_na_sentinel=False)[0]
        frame[self.entity_] = [f"synthetic-{k}" for k in codes]
        frame = frame.astype(self.dtypes_.to_dict(), errors="ignore")
        return frame[self.columns_]

    def fit_info(self) -> dict[str, Any]:
        require_fit(self, "model_", "fit_info")
        return {"epochs": self.epochs, "context_columns": self.context_}
