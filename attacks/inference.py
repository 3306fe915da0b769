"""Attribute inference (anonymeter): can the synthetic data reveal a real person's secret column?"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pandas as pd

from attacks._anonymeter import attack_data, attack_measurements, captured_notes, check_columns, pinned_randomness
from suite.metadata import Metadata
from suite.registry import checks
from suite.seeding import derive_seed
from suite.types import Context, Goal, Measurement


@contextmanager
def positional_naive_guesses() -> Iterator[bool]:
    """Give anonymeter's naive attacker the guesses it draws (yields whether a fix was needed).

    anonymeter 1.1.0 draws the naive attacker's guesses as random synthetic rows and then
    aligns them to the targets by index label (`guesses.reindex_like(targets)`): a target gets
    a guess only when some drawn synthetic row happens to carry the same label, so nearly every
    guess is missing and the naive success rate collapses to about n_attacks / len(syn) of what
    it should be (which inflates `attack_advantage`; with missing secrets it can also inflate the
    naive rate, because anonymeter counts missing == missing as a hit). Later anonymeter versions
    assign the guesses by position; this does the same for 1.1.0, drawing the same random numbers
    in the same order. When the installed version does not use `reindex_like`, nothing is patched.
    """
    from anonymeter.evaluators import inference_evaluator as ie

    real = ie._run_attack
    try:
        misaligned = "reindex_like" in inspect.getsource(real)
    except (OSError, TypeError):  # no source shipped: judge by the version
        from importlib.metadata import version

        misaligned = version("anonymeter").startswith("1.1.")
    if not misaligned:
        yield False
        return

    def run_attack(target: pd.DataFrame, syn: pd.DataFrame, n_attacks: int, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(real).bind(target, syn, n_attacks, *args, **kwargs)
        if not bound.arguments["naive"]:
            return real(target, syn, n_attacks, *args, **kwargs)
        secret, regression = bound.arguments["secret"], bound.arguments["regression"]
        if regression is None:
            regression = pd.api.types.is_numeric_dtype(target[secret])
        targets = target.sample(n_attacks, replace=False)
        drawn = syn.sample(n_attacks)[secret]
        guesses = pd.Series(drawn.to_numpy(), index=targets.index, name=secret)
        hits = ie.evaluate_inference_guesses(guesses=guesses, secrets=targets[secret], regression=regression)
        return hits.sum(), guesses

    ie._run_attack = run_attack
    try:
        yield True
    finally:
        ie._run_attack = real


@checks.register("inference")
class InferenceAttack:
    """Attribute inference: guessing a person's secret column from the synthetic row most like them.

    For each secret column (`dataset.roles.secrets`), the attacker knows a target's
    auxiliary columns (by default the quasi-identifiers), finds the nearest synthetic row
    on them (anonymeter's Gower-like distance) and guesses that row's secret. A guess is
    right when it equals the secret (categories) or is within 5% of it (numbers and dates).
    This runs for training people and for control people the generator never saw; `risk`
    is the success on training people beyond that on control people, scaled to the room
    left above it, (attack - control) / (1 - control), with anonymeter's interval.
    Guessing well on control people is what any good model of the population does, so it
    is not counted as risk; only the excess on the people the generator was trained on is.
    The `baseline` is a naive attacker who guesses the secret of a random synthetic row
    (anonymeter 1.1.0 misaligns those guesses; `positional_naive_guesses` corrects it);
    `attack_advantage` is the attack's success share minus the naive one's.
    `inference.max.risk` is the column whose risk has the highest upper bound (so a
    threshold on it holds for every column); its details name the column.

    With an entity column (one patient, many rows), train and control are reduced to one
    random row per entity before the attack (drawn from the scenario's seed), so each target
    is a distinct person; the synthetic table is used whole.

    What it means: a risk near 0 says the synthetic data tells an attacker no more about the
    secrets of the people it was trained on than about anyone else's. What it does not
    prove: that the secret cannot be inferred at all (population-level inference is
    measured by the control success, not by the risk), nor that other auxiliary columns or a
    better model could not do more. For a secret with a dominant value (a test result that is
    almost always negative) the room above the control success is small and the interval wide.
    """

    name: ClassVar[str] = "inference"
    measures: ClassVar[tuple[str, ...]] = ("inference.max.risk", "inference.*.risk", "inference.*.attack_advantage")

    def __init__(
        self,
        *,
        secrets: list[str] | None = None,
        aux_cols: list[str] | None = None,
        n_attacks: int = 2000,
    ) -> None:
        self.secrets = secrets
        self.aux_cols = aux_cols
        self.n_attacks = n_attacks

    def _secrets(self, metadata: Metadata) -> list[str]:
        secrets = list(self.secrets) if self.secrets is not None else list(metadata.roles.secrets)
        if not secrets:
            raise ValueError(
                "inference needs at least one secret column: declare `dataset.roles.secrets` "
                "or pass `secrets` in the check's params"
            )
        check_columns(secrets, metadata, "inference secrets")
        reserved = [s for s in secrets if s == "max"]
        if reserved:
            raise ValueError("inference: a secret column named 'max' clashes with inference.max.risk; rename it")
        return secrets

    def _aux(self, metadata: Metadata, secret: str) -> list[str]:
        if self.aux_cols is not None:
            check_columns(list(self.aux_cols), metadata, "inference aux_cols")
            aux = [c for c in self.aux_cols if c != secret]
        else:
            aux = [c for c in metadata.roles.quasi_identifiers if c != secret]
            if not aux:
                aux = [c for c in metadata.columns if c != secret]
        if not aux:
            raise ValueError(f"inference: no auxiliary column is left to infer {secret!r} from")
        return aux

    def evaluate(self, ctx: Context) -> list[Measurement]:
        from anonymeter.evaluators import InferenceEvaluator

        md = ctx.metadata
        secrets = self._secrets(md)
        data = attack_data(ctx)
        n_attacks, cap = data.capped(self.n_attacks)
        out: list[Measurement] = []
        risks: dict[str, Measurement] = {}
        for secret in secrets:
            aux = self._aux(md, secret)
            regression = secret in md.continuous
            with (
                pinned_randomness(derive_seed(ctx.seed, self.name, secret)),
                captured_notes() as notes,
                positional_naive_guesses() as fixed,
            ):
                evaluator = InferenceEvaluator(
                    ori=data.train,
                    syn=data.synthetic,
                    aux_cols=aux,
                    secret=secret,
                    regression=regression,
                    n_attacks=n_attacks,
                    control=data.control,
                )
                evaluator.evaluate()
                results = evaluator.results(confidence_level=ctx.confidence)
            details = {
                "secret": secret,
                "regression": regression,
                "aux_cols": aux,
                "naive_guesses_realigned": fixed,
                **data.details(),
                **cap,
                **notes.as_details(),
            }
            risk, advantage = attack_measurements(
                f"inference.{secret}", results, ctx.confidence, what=f"inference of {secret}", details=details
            )
            risks[secret] = risk
            out += [risk, advantage]
        worst = max(risks, key=lambda s: (risks[s].conservative(), risks[s].value))
        top = risks[worst]
        out.append(
            Measurement(
                "inference.max.risk",
                top.value,
                Goal.MINIMIZE,
                ci=top.ci,
                baseline=top.baseline,
                meaning="attribute inference: the worst secret column's risk (highest upper bound)",
                details={
                    "column": worst,
                    "columns": {s: {"value": m.value, "ci": list(m.ci or ())} for s, m in risks.items()},
                    **dict(top.details),
                },
            )
        )
        return out
