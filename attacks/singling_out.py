"""Singling out (anonymeter): can the synthetic data be used to isolate one real person?"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.attacks._anonymeter import (
    attack_data,
    attack_measurements,
    captured_notes,
    pinned_randomness,
    unique_polars,
)
from suite.registry import checks
from suite.seeding import derive_seed
from suite.types import Context, Goal, Measurement, MeasurementSpec, privacy

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


def _unique(frame: pd.DataFrame) -> Any:
    """The frame as anonymeter queries it: polars, duplicate rows dropped (anonymeter drops them too)."""
    import polars as pl
    from anonymeter.evaluators import singling_out_evaluator as soe

    return pl.DataFrame(soe._safe_column_names(frame)).unique(maintain_order=True)


def _evaluator(train: Any, synthetic: Any, **kwargs: Any) -> Any:
    """anonymeter's `SinglingOutEvaluator` on train and synthetic frames already as it would make them
    (`unique_polars`): built on empty frames, then handed the prepared ones, so it holds no copy of its own."""
    import polars as pl
    from anonymeter.evaluators import SinglingOutEvaluator

    evaluator = SinglingOutEvaluator(ori=pd.DataFrame(), syn=pd.DataFrame(), **kwargs)
    if not all(isinstance(getattr(evaluator, a, None), pl.DataFrame) for a in ("_ori", "_syn")):
        raise RuntimeError("this anonymeter's SinglingOutEvaluator keeps its frames elsewhere (not _ori, _syn)")
    evaluator._ori, evaluator._syn = train, synthetic
    return evaluator


def _matches(frame: Any, queries: list[Any]) -> np.ndarray:
    """How many rows of the (deduplicated, polars) `frame` each query matches."""
    from anonymeter.evaluators import singling_out_evaluator as soe

    return np.asarray(soe._evaluate_queries(df=frame, queries=queries), dtype=np.int64).reshape(-1)


def chance_singled_out(
    train_matches: np.ndarray, control_matches: np.ndarray, n_train: int, n_control: int
) -> np.ndarray:
    """Each query's chance of matching exactly one training person if the generator learned nobody.

    Train and control are a random split of one pool of people. If the synthetic data (and
    so the queries) does not depend on who landed in train, then given the T people of the
    pool a query matches, the number in train is hypergeometric: T draws from n_train +
    n_control people of whom n_train are in train. This is the exact null of the attack's
    success on train, with no extrapolation between sizes.
    """
    from scipy.stats import hypergeom

    total = np.asarray(train_matches) + np.asarray(control_matches)
    chance = hypergeom(n_train + n_control, n_train, np.maximum(total, 1)).pmf(1)
    return np.where(total > 0, chance, 0.0)


@checks.register("singling_out")
class SinglingOutAttack:
    """Singling out: predicates learned from the synthetic data that match exactly one real person.

    The attacker reads the synthetic table and writes queries that match exactly one
    synthetic row ("age <= 3 and clinic is X and day >= 90"): from rare values alone
    (`univariate`) or from `n_cols` attributes of a synthetic row (`multivariate`). A query
    succeeds when it matches exactly one training person. The same queries run against the
    control people, who were never shown to the generator, to give the success a release that
    leaks nothing would have (its chance level, below); `risk` is the success on training
    people beyond it, scaled to the room left above it, (attack - chance) / (1 - chance), with
    anonymeter's interval. The `baseline` is a naive attacker whose queries are random;
    `attack_advantage` is the attack's success share minus the naive one's.

    With an entity column (one patient, many rows), train and control are reduced to one
    random row per entity before the attack (drawn from the scenario's seed), so each target
    is a distinct person; the synthetic table is used whole.

    Singling out depends on how many people a query is tried on, and the control holds fewer
    people than train (about a fifth with the default split), so the two success counts are
    not comparable as they are. The control's part is instead the number of training people
    the queries would single out by chance: train and control are a random split of one pool,
    so if the generator learned nobody, the training share of the people a query matches in
    the pool is hypergeometric (`chance_singled_out`), whatever the sizes. `control.n_success`
    in the details is that expected count; `control_success_at_control_size` is the raw count
    on the control. (anonymeter extrapolates the control's success to the training size with a
    fitted curve that underestimates it, which put real unseen rows at a floor of about 0.15;
    comparing control-sized subsets of train instead dilutes a leak by the size ratio: the
    identity canary then scored 0.04 [0, 0.09] on the quickstart table.) The interval is
    anonymeter's, which treats the expected count as a measured one (wider than needed).

    What it means: a risk near 0 says the queries built from this synthetic data isolate
    training people no more often than people the generator never saw. What it does not
    prove: that no stronger attacker (more queries, other predicates, outside knowledge)
    could single people out, nor anything about linkage or attribute inference. When
    `attack_advantage` is at or below 0 the attack did no better than random queries, and a
    low risk then shows only that this attack found nothing.
    """

    name: ClassVar[str] = "singling_out"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "singling_out.*.risk",
            Goal.MINIMIZE,
            "singling_out",
            "singling out people of the training data beyond unseen people (0 = no leak)",
            no_leak=0.0,
        ),
        privacy(
            "singling_out.*.attack_advantage",
            Goal.MINIMIZE,
            "singling_out",
            "singling-out success beyond random predicates",
            bounds=(-1, 1),
        ),
    )
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
        from anonymeter.stats.confidence import EvaluationResults

        modes = [self.modes] if isinstance(self.modes, str) else list(self.modes)
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes:
            raise ValueError(f"singling_out: modes must be among {list(MODES)}, got {list(modes)}")
        n_columns = len(ctx.metadata.columns)
        if "multivariate" in modes and not 1 <= self.n_cols <= n_columns:
            raise ValueError(f"singling_out: n_cols must be between 1 and the {n_columns} columns, got {self.n_cols}")
        data = attack_data(ctx, convert=False)  # converted once, straight to anonymeter's deduplicated frames
        n_attacks, cap = data.capped(self.n_attacks)
        train, control = unique_polars(data.train, ctx.metadata), unique_polars(data.control, ctx.metadata)
        synthetic = unique_polars(data.synthetic, ctx.metadata)
        out: list[Measurement] = []
        for mode in modes:
            seed = derive_seed(ctx.seed, self.name, mode)
            generated: list[list[Any]] = []
            with pinned_randomness(seed), captured_notes() as notes, _keeping_queries(generated):
                evaluator = _evaluator(
                    train,
                    synthetic,
                    n_attacks=n_attacks,
                    n_cols=self.n_cols,
                    max_attempts=self.max_attempts,
                    seed=seed,
                )
                evaluator.evaluate(mode=mode)
                queries = generated[0] if generated else []
                in_train, in_control = _matches(train, queries), _matches(control, queries)
                chance = chance_singled_out(in_train, in_control, len(train), len(control))
                results = EvaluationResults(
                    n_attacks=n_attacks,
                    n_success=int((in_train == 1).sum()),
                    n_baseline=evaluator.results().n_baseline,
                    n_control=float(chance.sum()),
                    confidence_level=ctx.confidence,
                )
            details = {
                "mode": mode,
                **({"n_cols": self.n_cols, "max_attempts": self.max_attempts} if mode == "multivariate" else {}),
                **data.details(),
                **cap,
                "queries_from_synthetic": len(queries),
                "train_people": len(train),
                "control_people": len(control),
                "control_success_at_control_size": int((in_control == 1).sum()),
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
