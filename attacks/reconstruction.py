"""Reconstruction of secrets from quasi-identifiers: does the release carry real people's secrets?

Two attackers know a target's quasi-identifiers (`dataset.roles.quasi_identifiers`) and want one
secret column (`dataset.roles.secrets`):

* ``exact`` (the NIST CRC red team's correct-attribution test, 2025): the target's exact
  quasi-identifier tuple appears in the synthetic table in a row carrying the target's true secret
  (a number within `tolerance` times its interquartile range, as in `attacks/inference.py`).
* ``ml``: a gradient-boosting model (sklearn's HistGradientBoosting) trained on the synthetic table
  to predict the secret from the quasi-identifiers, right as above (Annamalai et al. 2024).

Each is scored on training people and on control people (never shown to the generator); only the
excess on training people counts, since a good model of the population reconstructs anyone's secret
as well. Targets are people: one random row per entity, the same ones the anonymeter attacks use.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from suite.attacks._anonymeter import attack_data, check_columns
from suite.attacks.inference import correct_guesses, tolerance_for
from suite.metadata import Metadata
from suite.registry import checks
from suite.seeding import derive_seed
from suite.stats import cluster_bootstrap_ci, cluster_codes, newcombe_difference_ci
from suite.types import Context, Goal, Measurement, MeasurementSpec, Need, names, privacy, worst_of

#: A categorical quasi-identifier with more levels than this enters the model as an ordinal code.
_MAX_CATEGORIES = 250


def tuple_codes(*frames: pd.DataFrame, columns: list[str]) -> list[np.ndarray]:
    """One code per row of each frame: equal codes for equal tuples of `columns` (missing equals missing)."""
    joined = pd.concat([f[columns] for f in frames], ignore_index=True)
    codes = joined.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
    bounds = np.cumsum([0, *(len(f) for f in frames)])
    return [codes[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def exact_hits(
    target_codes: np.ndarray, secrets: np.ndarray, syn_codes: np.ndarray, syn_secrets: np.ndarray, tol: float | None
) -> np.ndarray:
    """Whether some synthetic row with the target's tuple carries its secret (categories: equal;
    numbers: within `tol`, a missing secret matched by a missing one)."""
    if tol is None:
        have = set(zip(syn_codes.tolist(), pd.Series(syn_secrets, dtype=object).tolist(), strict=True))
        return np.array([(c, s) in have for c, s in zip(target_codes.tolist(), secrets.tolist(), strict=True)])
    values = np.asarray(syn_secrets, dtype=float)
    wanted = np.asarray(secrets, dtype=float)
    missing_codes = set(syn_codes[np.isnan(values)].tolist())
    hits = np.isnan(wanted) & np.isin(target_codes, list(missing_codes))
    present, ok = ~np.isnan(values), ~np.isnan(wanted)
    if present.any() and ok.any():
        syn = pd.DataFrame({"code": syn_codes[present], "value": values[present]}).sort_values("value")
        tgt = pd.DataFrame({"code": target_codes[ok], "value": wanted[ok], "row": np.flatnonzero(ok)})
        matched = pd.merge_asof(
            tgt.sort_values("value"),
            syn.rename(columns={"value": "near"}),
            left_on="value",
            right_on="near",
            by="code",
            direction="nearest",
        )
        close = correct_guesses(matched["near"].to_numpy(), matched["value"].to_numpy(), tol)
        close &= matched["near"].notna().to_numpy()
        hits[matched["row"].to_numpy()[close]] = True
    return hits


def model_guesses(
    synthetic: pd.DataFrame, targets: list[pd.DataFrame], qi: list[str], secret: str, regression: bool, seed: int
) -> list[np.ndarray]:
    """A HistGradientBoosting model fitted on the synthetic rows (quasi-identifiers -> secret), its guess
    for every row of each of `targets`. Categories are coded by their synthetic levels (unseen: missing). A
    number the release sometimes leaves missing is guessed missing when a classifier says so; a number
    guessed is snapped to the nearest value the release holds (`_snap`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    def features(frame: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in qi:
            if c in levels:
                codes = levels[c].get_indexer(frame[c].astype(object))
                cols.append(np.where(codes < 0, np.nan, codes).astype(float))
            else:
                cols.append(pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float))
        return np.column_stack(cols)

    levels = {
        c: pd.Index(pd.unique(synthetic[c].astype(object)))
        for c in qi
        if synthetic[c].dtype == object or isinstance(synthetic[c].dtype, pd.CategoricalDtype)
    }
    categorical = [c in levels and len(levels[c]) <= _MAX_CATEGORIES for c in qi]
    y = synthetic[secret]

    def classify(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        if len(pd.unique(y)) < 2:
            return [np.full(len(t), y[0] if len(y) else None, dtype=object) for t in targets]
        model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed).fit(x, y)
        return [model.predict(features(t)) if len(t) else np.empty(0, dtype=object) for t in targets]

    with threadpool_limits(1):  # OpenMP threads on a shared machine cost far more than they save here
        x = features(synthetic)
        if not regression:
            return classify(x, y.astype(object).to_numpy())
        # a number: whether it is missing (a classifier, when the release has missing values), then its value
        values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
        keep = ~np.isnan(values)
        missing = classify(x, np.where(keep, "value", "missing").astype(object)) if not keep.all() else None
        if not keep.any():
            return [np.full(len(t), np.nan) for t in targets]
        model = HistGradientBoostingRegressor(categorical_features=categorical, random_state=seed)
        model.fit(x[keep], values[keep])
        grid = np.unique(values[keep])
        out = []
        for i, t in enumerate(targets):
            guess = _snap(model.predict(features(t)), grid) if len(t) else np.empty(0)
            if missing is not None:
                guess = np.where(missing[i] == "missing", np.nan, guess)
            out.append(guess)
        return out


def _snap(guesses: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Each guess moved to the nearest value of the sorted `grid` (the values the release holds): a model's
    average of 45 and 39.8 is no value anyone has, and a secret with an interquartile range of 0 is
    judged by exact match."""
    right = np.clip(np.searchsorted(grid, guesses), 1, max(len(grid) - 1, 1))
    left = right - 1
    pick = np.where(
        np.abs(guesses - grid[left]) <= np.abs(grid[np.minimum(right, len(grid) - 1)] - guesses), left, right
    )
    return grid[np.minimum(pick, len(grid) - 1)]


def excess_with_ci(
    hits_train: np.ndarray,
    hits_control: np.ndarray,
    clusters: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    confidence: float,
) -> tuple[float, tuple[float, float]]:
    """Training hit share minus control hit share, with a percentile bootstrap that resamples people by
    quasi-identifier tuple (people who share a tuple share their synthetic evidence), widened to hold
    Newcombe's interval. `clusters` gives each side's tuple codes in one code space: a tuple held by
    training and control people is one cluster, drawn with both sides together, so the evidence it
    shares with both cancels in the difference as it does in the point estimate (resampling the two
    sides' clusters independently counted it twice: on the quickstart's null about 1.7 times Newcombe's
    width, which no table of 2,000 control people could certify at 0.05)."""
    h_t, h_c = hits_train.astype(float), hits_control.astype(float)
    n_t = len(h_t)

    def stat(w: np.ndarray) -> np.ndarray:
        w_t, w_c = w[:, :n_t], w[:, n_t:]
        return (w_t @ h_t) / np.maximum(w_t.sum(1), 1e-12) - (w_c @ h_c) / np.maximum(w_c.sum(1), 1e-12)

    point = float(h_t.mean() - h_c.mean())
    joint = cluster_codes(np.concatenate([np.asarray(c) for c in clusters]), n_t + len(h_c))
    low, high = cluster_bootstrap_ci(stat, joint, rng=rng, confidence=confidence, cost=2)
    # never narrower than Newcombe's interval for independent people: a bootstrap of shares of 0 (or 1)
    # on both sides has no spread at all, which is no evidence of a small excess
    n_low, n_high = newcombe_difference_ci(h_t.sum(), len(h_t), h_c.sum(), len(h_c), confidence)
    return point, (min(low, n_low, point), max(high, n_high, point))


@checks.register("reconstruction")
class ReconstructionAttack:
    """Reconstruction: reading a real person's secret off the release from their quasi-identifiers.

    `reconstruction.<secret>.excess`: the share of training people whose exact quasi-identifier
    tuple appears in a synthetic row carrying their true secret, minus the same share for control
    people (exact tuples, as the NIST CRC red team matches them: a tuple nudged by one unit is not a
    match). `reconstruction.<secret>.ml_excess`: the same difference for a gradient-boosting model
    trained on the synthetic table to predict the secret. `reconstruction.max.excess`: the worst of
    all of these (the highest upper bound), with its interval; its details name the secret and the
    attacker. Numbers are right within `tolerance` times the secret's interquartile range in
    training data. Intervals are percentile bootstraps with people who share a quasi-identifier
    tuple resampled together (one cluster, training and control people alike).

    What it means: an excess above 0 says some training people's secrets travel with their
    quasi-identifiers into the release, the pattern of a partial copy. What it does not prove: an
    excess near 0 does not rule out reconstruction from other columns, a stronger model, or for
    a few people too few to move a share of thousands (the membership `local` attacker looks at
    them); control people's success (details) is what the population model reveals to anyone.
    """

    name: ClassVar[str] = "reconstruction"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "reconstruction.max.excess",
            Goal.MINIMIZE,
            "reconstruction",
            "secrets reconstructed from quasi-identifiers: the worst secret and attacker's excess",
            bounds=(-1, 1),
            attack="inference",  # secrets reconstructed from quasi-identifiers: attribute inference
            worst_case=True,  # exact tuples: the people a release exposes, not an average guess
        ),
        privacy(
            "reconstruction.*.excess",
            Goal.MINIMIZE,
            "reconstruction",
            "training people whose exact quasi-identifiers carry their true secret, minus unseen people's",
            bounds=(-1, 1),
            attack="inference",
            worst_case=True,
        ),
        privacy(
            "reconstruction.*.ml_excess",
            Goal.MINIMIZE,
            "reconstruction",
            "a model trained on the release predicts training people's secret better than unseen people's",
            bounds=(-1, 1),
            attack="inference",
            worst_case=True,
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    needs: ClassVar[tuple[Need, ...]] = (
        Need("secrets", unless="secrets"),
        Need("quasi_identifiers", unless="quasi_identifiers"),
    )

    def __init__(
        self,
        *,
        secrets: list[str] | None = None,
        quasi_identifiers: list[str] | None = None,
        tolerance: float = 0.05,
        attackers: tuple[str, ...] = ("exact", "ml"),
        max_fit_rows: int = 50_000,
    ) -> None:
        self.secrets = secrets
        self.quasi_identifiers = quasi_identifiers
        self.tolerance = tolerance
        self.attackers = attackers
        self.max_fit_rows = max_fit_rows

    def _columns(self, md: Metadata) -> tuple[list[str], list[str]]:
        secrets = list(self.secrets) if self.secrets is not None else list(md.roles.secrets)
        qi = list(self.quasi_identifiers) if self.quasi_identifiers is not None else list(md.roles.quasi_identifiers)
        if not secrets or not qi:
            raise ValueError(
                "reconstruction needs quasi-identifiers and secrets: declare `dataset.roles.quasi_identifiers` "
                "and `dataset.roles.secrets` (or pass `quasi_identifiers` and `secrets` in the check's params)"
            )
        check_columns(secrets, md, "reconstruction secrets")
        check_columns(qi, md, "reconstruction quasi_identifiers")
        if "max" in secrets:
            raise ValueError("reconstruction: a secret column named 'max' clashes with reconstruction.max.excess")
        if not (isinstance(self.tolerance, int | float) and 0 <= self.tolerance < 1):
            raise ValueError(f"reconstruction: tolerance is a fraction of the IQR in [0, 1), got {self.tolerance!r}")
        bad = [a for a in self.attackers if a not in ("exact", "ml")]
        if bad or not self.attackers:
            raise ValueError(f"reconstruction: attackers must be among ['exact', 'ml'], got {list(self.attackers)}")
        return secrets, qi

    def evaluate(self, ctx: Context) -> list[Measurement]:
        md = ctx.metadata
        secrets, all_qi = self._columns(md)
        data = attack_data(ctx)
        if len(data.train) == 0 or len(data.control) == 0 or len(data.synthetic) == 0:
            raise ValueError("reconstruction: no target left to attack: train, control or synthetic is empty")
        train, control, synthetic = data.train, data.control, data.synthetic
        if len(synthetic) > self.max_fit_rows:
            pick = np.random.default_rng(derive_seed(ctx.seed, self.name, "fit rows"))
            fit_rows = synthetic.iloc[np.sort(pick.choice(len(synthetic), self.max_fit_rows, replace=False))]
        else:
            fit_rows = synthetic
        continuous = set(md.continuous)
        out: list[Measurement] = []
        gated: list[Measurement] = []
        for secret in secrets:
            start = time.perf_counter()
            qi = [c for c in all_qi if c != secret]
            if not qi:
                raise ValueError(f"reconstruction: no quasi-identifier is left to reconstruct {secret!r} from")
            regression = secret in continuous
            tol = tolerance_for(data.train[secret], self.tolerance) if regression else None
            c_train, c_control, c_syn = tuple_codes(train, control, synthetic, columns=qi)
            base: dict[str, Any] = {
                "secret": secret,
                "quasi_identifiers": qi,
                "regression": regression,
                "tolerance_fraction_of_iqr": float(self.tolerance) if regression else None,
                "tolerance": tol,
                **data.details(),
                "interval": (
                    "percentile bootstrap, people sharing a quasi-identifier tuple resampled as one cluster "
                    "(training and control people together), widened to hold Newcombe's interval"
                ),
                "confidence": ctx.confidence,
            }
            for attacker in self.attackers:
                if attacker == "exact":
                    h_t = exact_hits(c_train, train[secret].to_numpy(), c_syn, synthetic[secret].to_numpy(), tol)
                    h_c = exact_hits(c_control, control[secret].to_numpy(), c_syn, synthetic[secret].to_numpy(), tol)
                    name, what = f"reconstruction.{secret}.excess", "exact quasi-identifier tuple carrying the secret"
                else:
                    seed = derive_seed(ctx.seed, self.name, secret, "model") % 2**32
                    g_t, g_c = model_guesses(fit_rows, [train, control], qi, secret, regression, seed)
                    h_t = _right(g_t, train[secret].to_numpy(), tol)
                    h_c = _right(g_c, control[secret].to_numpy(), tol)
                    name, what = f"reconstruction.{secret}.ml_excess", "gradient boosting on the synthetic table"
                rng = np.random.default_rng(derive_seed(ctx.seed, self.name, secret, attacker))
                value, ci = excess_with_ci(h_t, h_c, (c_train, c_control), rng, ctx.confidence)
                details = {
                    **base,
                    "attacker": attacker,
                    "attack": {"n_targets": int(len(h_t)), "n_success": int(h_t.sum()), "rate": float(h_t.mean())},
                    "control": {"n_targets": int(len(h_c)), "n_success": int(h_c.sum()), "rate": float(h_c.mean())},
                    "seconds": round(time.perf_counter() - start, 3),
                }
                m = Measurement(
                    name,
                    value,
                    Goal.MINIMIZE,
                    ci=ci,
                    baseline=0.0,
                    details=details,
                    meaning=f"reconstruction of {secret} ({what}): success share on training people minus on control",
                )
                out.append(m)
                gated.append(m)
        meaning = "reconstruction: the worst secret and attacker's excess (highest upper bound, its interval)"
        worst = worst_of(
            "reconstruction.max.excess",
            {m.name: m for m in gated},
            meaning,
            label="measurement",
            summary="measurements",
        )
        out.append(replace(worst, details={"column": worst.details["secret"], **worst.details}))
        return out


def _right(guesses: np.ndarray, secrets: np.ndarray, tol: float | None) -> np.ndarray:
    """Model guesses judged as `correct_guesses` judges them (a model never guesses a missing number)."""
    if tol is None:
        return correct_guesses(np.asarray(guesses, dtype=object), np.asarray(secrets, dtype=object), None)
    return correct_guesses(np.asarray(guesses, dtype=float), np.asarray(secrets, dtype=float), tol)
