"""Singling out (anonymeter): can the synthetic data be used to isolate one real person?"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pandas as pd

from attacks._anonymeter import attack_data, attack_measurements, captured_notes, pinned_randomness
from suite.registry import checks
from suite.seeding import derive_seed
from suite.types import Context, Measurement

MODES = ("univariate", "multivariate")


@contextmanager
def _keeping_queries(sink: list[list[Any]]) -> Iterator[None]:
    """Keep the singling-out queries anonymeter builds from the synthetic data (to count them; never reported)."""
    from anonymeter.evaluators import singling_out_evaluator as soe

    real = soe._generate_singling_out_queries

    def counted(*args: Any, **kwargs: Any) -> Any:
        queries = real(*args, **kwargs)
        sink.append(list(queries))
        return queries

    soe._generate_singling_out_queries = counted
    try:
        yield
    finally:
        soe._generate_singling_out_queries = real


def _singled_out(frame: pd.DataFrame, queries: list[Any]) -> int:
    """How many of the queries match exactly one row of `frame` (duplicates dropped, as anonymeter does)."""
    import polars as pl
    from anonymeter.evaluators import singling_out_evaluator as soe

    counts = soe._evaluate_queries(df=pl.DataFrame(frame).unique(maintain_order=True), queries=queries)
    return int(sum(1 for c in counts if c == 1))


@checks.register("singling_out")
class SinglingOutAttack:
    """Singling out: predicates learned from the synthetic data that match exactly one real person.

    The attacker reads the synthetic table and writes queries that match exactly one
    synthetic row ("age <= 3 and clinic is X and day >= 90"): from rare values alone
    (`univariate`) or from `n_cols` attributes of a synthetic row (`multivariate`). A query
    succeeds when it matches exactly one training person. The same queries run against the
    control people, who were never shown to the generator (corrected for the two sizes);
    `risk` is the success on training people beyond that on control people, scaled to the
    room left above it, (attack - control) / (1 - control), with anonymeter's interval. The
    `baseline` is a naive attacker whose queries are random; `attack_advantage` is the
    attack's success share minus the naive one's.

    With an entity column (one patient, many rows), train and control are reduced to one
    random row per entity before the attack (drawn from the scenario's seed), so each target
    is a distinct person; the synthetic table is used whole.

    The control holds fewer people than train (with the default split, about a fifth), and
    singling out depends on how many people a query is tried on: anonymeter extrapolates the
    control's success to the training set's size with a fitted curve (`control.n_success` in
    the details is that extrapolation; `control_success_at_control_size` is the raw count).
    On the shipped COVID table that curve underestimates the chance level, so real rows no
    generator saw (the `holdout` generator) score about 0.1 to 0.2 rather than 0: read a
    generator's risk against the holdout's, and set thresholds above it.

    What it means: a risk near 0 says the queries built from this synthetic data isolate
    training people no more often than people the generator never saw. What it does not
    prove: that no stronger attacker (more queries, other predicates, outside knowledge)
    could single people out, nor anything about linkage or attribute inference. When
    `attack_advantage` is at or below 0 the attack did no better than random queries, and a
    low risk then shows only that this attack found nothing.
    """

    name: ClassVar[str] = "singling_out"
    measures: ClassVar[tuple[str, ...]] = tuple(
        f"singling_out.{mode}.{quantity}" for mode in MODES for quantity in ("risk", "attack_advantage")
    )

    def __init__(
        self,
        *,
        modes: tuple[str, ...] = ("univariate", "multivariate"),
        n_attacks: int = 500,
        n_cols: int = 3,
        max_attempts: int = 10_000_000,
    ) -> None:
        self.modes = modes
        self.n_attacks = n_attacks
        self.n_cols = n_cols
        self.max_attempts = max_attempts

    def evaluate(self, ctx: Context) -> list[Measurement]:
        from anonymeter.evaluators import SinglingOutEvaluator

        modes = [self.modes] if isinstance(self.modes, str) else list(self.modes)
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes:
            raise ValueError(f"singling_out: modes must be among {list(MODES)}, got {list(modes)}")
        n_columns = len(ctx.metadata.columns)
        if "multivariate" in modes and not 1 <= self.n_cols <= n_columns:
            raise ValueError(f"singling_out: n_cols must be between 1 and the {n_columns} columns, got {self.n_cols}")
        data = attack_data(ctx)
        n_attacks, cap = data.capped(self.n_attacks)
        # anonymeter drops duplicate rows, then extrapolates the control's success to the train's size
        resized = len(data.control.drop_duplicates()) != len(data.train.drop_duplicates())
        out: list[Measurement] = []
        for mode in modes:
            seed = derive_seed(ctx.seed, self.name, mode)
            generated: list[list[Any]] = []
            with pinned_randomness(seed), captured_notes() as notes, _keeping_queries(generated):
                evaluator = SinglingOutEvaluator(
                    ori=data.train,
                    syn=data.synthetic,
                    control=data.control,
                    n_attacks=n_attacks,
                    n_cols=self.n_cols,
                    max_attempts=self.max_attempts,
                    seed=seed,
                )
                evaluator.evaluate(mode=mode)
                results = evaluator.results(confidence_level=ctx.confidence)
                queries = generated[0] if generated else []
                raw_control = _singled_out(data.control, queries)
            details = {
                "mode": mode,
                **({"n_cols": self.n_cols, "max_attempts": self.max_attempts} if mode == "multivariate" else {}),
                **data.details(),
                **cap,
                "queries_from_synthetic": len(queries),
                "control_success_size_corrected": resized,
                "control_success_at_control_size": raw_control,
                **notes.as_details(),
            }
            out += attack_measurements(
                f"singling_out.{mode}",
                results,
                ctx.confidence,
                what=f"{mode} singling out",
                details=details,
            )
        return out
