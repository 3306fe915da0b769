"""SDV's single-table synthesizers, behind the suite's generator interface.

SDV is imported inside `fit`, so listing and validating scenarios never loads it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pandas as pd

from suite.generators._columns import require_fit
from suite.metadata import Metadata
from suite.registry import generators
from suite.seeding import fit_seed, seeded


def _sdv_metadata(metadata: Metadata) -> Any:
    from sdv.metadata import Metadata as SDVMetadata

    return SDVMetadata.load_from_dict(
        {"tables": {"table": metadata.to_sdv_dict()}, "relationships": [], "METADATA_SPEC_VERSION": "V1"}
    )


@contextmanager
def _torch_for_fit(seed: int) -> Iterator[None]:
    """Torch seeded with `seed` and held to one thread for the fit.

    `seeded` seeds torch only if torch was already imported, and SDV imports it inside the first
    fit; multi-threaded reductions also vary run to run.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _rdt_fit_state(seed: int) -> Iterator[None]:
    """RDT's transformers share one class-level RandomState for fitting (`INITIAL_FIT_STATE`), so
    each fit in a process advances it and a second fit under the same seed differs. Reseed it
    with `seed` for this fit, and put it back afterwards."""
    from rdt.transformers.base import BaseTransformer

    shared = BaseTransformer.INITIAL_FIT_STATE
    saved = shared.get_state()
    shared.seed(seed % 2**32)
    try:
        yield
    finally:
        shared.set_state(saved)


def _sdv_constraints(rules: list[Any]) -> list[Any]:
    """The scenario's inequality and fixed-combination rules as SDV constraint objects (`sdv.cag`)."""
    from sdv.cag import FixedCombinations, Inequality

    out = []
    for rule in rules:
        if rule.kind == "inequality":
            out.append(Inequality(low_column_name=rule.low, high_column_name=rule.high, strict_boundaries=rule.strict))
        elif rule.kind == "fixed_combinations":
            out.append(FixedCombinations(column_names=list(rule.columns)))
        else:  # pragma: no cover - Processed hands over only the kinds in `native_constraints`
            raise ValueError(f"SDV has no constraint for {rule.kind!r}")
    return out


class _SDVGenerator:
    """Shared fit/sample for SDV synthesizers; subclasses name the class and its parameters."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ("sdv",)
    synthesizer: ClassVar[str]
    #: Constraint kinds SDV itself can enforce (`suite.processing.Processed` hands them over).
    native_constraints: ClassVar[frozenset[str]] = frozenset({"inequality", "fixed_combinations"})

    def use_constraints(self, rules: list[Any]) -> None:
        """Rules for SDV to enforce during the next `fit` (the training rows must already obey them)."""
        self._constraints = list(rules)

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> _SDVGenerator:
        """SDV reads global random state: the fit runs inside a local `seeded(seed)` block."""
        import sdv.single_table

        cls = getattr(sdv.single_table, self.synthesizer)
        seed = fit_seed(seed)
        with warnings.catch_warnings(), seeded(seed):
            warnings.simplefilter("ignore")
            self.model_ = cls(_sdv_metadata(metadata), **self._params())
            if getattr(self, "_constraints", None):
                self.model_.add_constraints(_sdv_constraints(self._constraints))
            with _rdt_fit_state(seed), _torch_for_fit(seed):
                self.model_.fit({"table": train})
        self.dtypes_ = train.dtypes.copy()
        return self

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "model_")
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


class _SDVNeuralGenerator(_SDVGenerator):
    """Shared parameters of SDV's neural synthesizers; always on the CPU (`enable_gpu=False`)."""

    requires: ClassVar[tuple[str, ...]] = ("sdv", "torch")

    def _params(self) -> dict[str, Any]:
        params = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        for key in ("generator_dim", "discriminator_dim", "compress_dims", "decompress_dims"):
            if key in params:
                params[key] = tuple(params[key])
        return {**params, "enable_gpu": False, "verbose": False}

    def fit_info(self) -> dict[str, Any]:
        losses = self.model_.get_loss_values() if hasattr(self.model_, "get_loss_values") else None
        info: dict[str, Any] = {"epochs": self.epochs}
        if losses is not None and len(losses):
            last = losses.iloc[-1].to_dict()
            info["final_loss"] = {str(k): float(v) for k, v in last.items() if k != "Epoch"}
        return info


@generators.register("sdv.ctgan")
class CTGANGenerator(_SDVNeuralGenerator):
    """SDV's CTGANSynthesizer: a conditional GAN with mode-specific normalisation (Xu et al. 2019)."""

    name: ClassVar[str] = "sdv.ctgan"
    synthesizer: ClassVar[str] = "CTGANSynthesizer"

    def __init__(
        self,
        *,
        epochs: int = 300,
        batch_size: int = 500,
        embedding_dim: int = 128,
        generator_dim: list[int] = (256, 256),  # type: ignore[assignment]
        discriminator_dim: list[int] = (256, 256),  # type: ignore[assignment]
        generator_lr: float = 2e-4,
        discriminator_lr: float = 2e-4,
        discriminator_steps: int = 1,
        pac: int = 10,
        enforce_min_max_values: bool = True,
        enforce_rounding: bool = True,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.embedding_dim = embedding_dim
        self.generator_dim = generator_dim
        self.discriminator_dim = discriminator_dim
        self.generator_lr = generator_lr
        self.discriminator_lr = discriminator_lr
        self.discriminator_steps = discriminator_steps
        self.pac = pac
        self.enforce_min_max_values = enforce_min_max_values
        self.enforce_rounding = enforce_rounding


@generators.register("sdv.copulagan")
class CopulaGANGenerator(CTGANGenerator):
    """SDV's CopulaGANSynthesizer: CTGAN on columns first mapped through fitted marginal distributions."""

    name: ClassVar[str] = "sdv.copulagan"
    synthesizer: ClassVar[str] = "CopulaGANSynthesizer"


@generators.register("sdv.tvae")
class TVAEGenerator(_SDVNeuralGenerator):
    """SDV's TVAESynthesizer: a variational autoencoder with mode-specific normalisation (Xu et al. 2019)."""

    name: ClassVar[str] = "sdv.tvae"
    synthesizer: ClassVar[str] = "TVAESynthesizer"

    def __init__(
        self,
        *,
        epochs: int = 300,
        batch_size: int = 500,
        embedding_dim: int = 128,
        compress_dims: list[int] = (128, 128),  # type: ignore[assignment]
        decompress_dims: list[int] = (128, 128),  # type: ignore[assignment]
        l2scale: float = 1e-5,
        loss_factor: float = 2.0,
        enforce_min_max_values: bool = True,
        enforce_rounding: bool = True,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.embedding_dim = embedding_dim
        self.compress_dims = compress_dims
        self.decompress_dims = decompress_dims
        self.l2scale = l2scale
        self.loss_factor = loss_factor
        self.enforce_min_max_values = enforce_min_max_values
        self.enforce_rounding = enforce_rounding
