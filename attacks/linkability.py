"""Linkability (anonymeter): can the synthetic data join two partial records of one real person?"""

from __future__ import annotations

from typing import ClassVar

from suite.attacks._anonymeter import attack_data, attack_measurements, captured_notes, check_columns, pinned_randomness
from suite.metadata import Metadata
from suite.registry import checks
from suite.seeding import derive_seed
from suite.types import Context, Goal, Measurement, MeasurementSpec, Need, names, privacy


def default_aux_cols(metadata: Metadata) -> tuple[list[str], list[str]]:
    """The quasi-identifiers split in two, alternating, so each half gets a mix of them."""
    qis = list(metadata.roles.quasi_identifiers)
    if len(qis) < 2:
        raise ValueError(
            f"linkability needs two sets of auxiliary columns, and {len(qis)} quasi-identifier(s) are declared: "
            "declare at least 2 in `dataset.roles.quasi_identifiers`, or pass `aux_cols` "
            "(two lists of columns) in the check's params"
        )
    return qis[0::2], qis[1::2]


@checks.register("linkability")
class LinkabilityAttack:
    """Linkability: can an attacker holding two halves of a person's record join them through the synthetic data?

    The attacker knows the first set of auxiliary columns of a target from one source and
    the second set from another (by default the quasi-identifiers, split in two), and looks
    up the nearest synthetic row of each half (anonymeter's Gower-like distance). The two
    halves are linked when they share a synthetic row among their `n_neighbors` nearest.
    This runs for training people and for control people the generator never saw; `risk` is
    the success on training people beyond that on control people, scaled to the room left
    above it, (attack - control) / (1 - control), with anonymeter's interval. The `baseline` is
    a naive attacker who links through random synthetic rows; `attack_advantage` is the
    attack's success share minus the naive one's.

    With an entity column (one patient, many rows), train and control are reduced to one
    random row per entity before the attack (drawn from the scenario's seed), so each target
    is a distinct person; the synthetic table is used whole.

    What it means: a risk near 0 says the synthetic data links records of the people it was
    trained on no better than records of anyone else. What it does not prove: that other
    column splits, more neighbours or outside data could not link people, nor anything about
    singling out or attribute inference. When each half of the auxiliary columns is shared by
    many people (a few coarse quasi-identifiers), the nearest synthetic rows tie, anonymeter
    takes the first of them, and almost nobody is linked even through a copy of the training
    data: then a risk near 0 says these columns cannot link anyone, not that the data is
    safe. Run the `identity` canary to see whether the attack can fire on your columns.
    """

    name: ClassVar[str] = "linkability"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "linkability.risk",
            Goal.MINIMIZE,
            "linkability",
            "linking two halves of a training record beyond unseen people (0 = no leak)",
            no_leak=0.0,
        ),
        privacy(
            "linkability.attack_advantage",
            Goal.MINIMIZE,
            "linkability",
            "linking success beyond random guesses",
            bounds=(-1, 1),
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    needs: ClassVar[tuple[Need, ...]] = (Need("quasi_identifiers", at_least=2, unless="aux_cols"),)

    def __init__(
        self,
        *,
        aux_cols: tuple[list[str], list[str]] | None = None,
        n_attacks: int = 500,
        n_neighbors: int = 1,
    ) -> None:
        self.aux_cols = aux_cols
        self.n_attacks = n_attacks
        self.n_neighbors = n_neighbors

    def _aux(self, metadata: Metadata) -> tuple[list[str], list[str]]:
        if self.aux_cols is None:
            return default_aux_cols(metadata)
        if len(self.aux_cols) != 2 or not all(self.aux_cols):
            raise ValueError("linkability: aux_cols must be two non-empty lists of columns, one per data source")
        first, second = (list(cols) for cols in self.aux_cols)
        check_columns(first + second, metadata, "linkability aux_cols")
        return first, second

    def evaluate(self, ctx: Context) -> list[Measurement]:
        from anonymeter.evaluators import LinkabilityEvaluator

        aux = self._aux(ctx.metadata)
        if self.n_neighbors < 1:
            raise ValueError(f"linkability: n_neighbors must be at least 1, got {self.n_neighbors}")
        data = attack_data(ctx)
        if self.n_neighbors > len(data.synthetic):
            raise ValueError(
                f"linkability: n_neighbors {self.n_neighbors} exceeds the {len(data.synthetic)} synthetic rows"
            )
        n_attacks, cap = data.capped(self.n_attacks)
        with pinned_randomness(derive_seed(ctx.seed, self.name)), captured_notes() as notes:
            evaluator = LinkabilityEvaluator(
                ori=data.train,
                syn=data.synthetic,
                aux_cols=aux,
                n_attacks=n_attacks,
                n_neighbors=self.n_neighbors,
                control=data.control,
            )
            evaluator.evaluate()
            results = evaluator.results(confidence_level=ctx.confidence)
        details = {
            "aux_cols": [list(aux[0]), list(aux[1])],
            "n_neighbors": self.n_neighbors,
            **data.details(),
            **cap,
            **notes.as_details(),
        }
        return attack_measurements("linkability", results, ctx.confidence, what="linkability", details=details)
