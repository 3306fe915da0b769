"""DP claim audit: does the generator keep the differential-privacy promise it declares?

For a generator that declares a claim (`privacy_claim()`, `suite.types.PrivacyClaim`), one refit on
the training rows plus m canary records, each put in with probability 1/2 (replaced by a copy of a
random training row when the claim's neighbours are "replace", so n stays fixed), one large sample,
and an attacker that guesses which canaries were in: the one-run audit of Steinke, Nasr and
Jagielski (NeurIPS 2023). Its correct guesses give an empirical epsilon lower bound
(`suite.attacks._membership_features.one_run_epsilon`); the claim is violated when that bound exceeds
the claimed epsilon. A generator without a claim is not audited: no measurement, neither pass nor block.
"""

from __future__ import annotations

import sys
import time
from typing import ClassVar

import numpy as np
import pandas as pd

from suite.attacks._membership_features import one_run_epsilon
from suite.attacks.membership import LOCAL_EPS
from suite.neighbors import GowerEncoder, nearest
from suite.registry import checks
from suite.seeding import derive_seed
from suite.types import Context, Goal, Measurement, MeasurementSpec, PrivacyClaim, names, privacy

#: Shares of the canaries the attacker guesses on (half "in" from the top of its ranking, half "out"
#: from the bottom); the bound is the best of them, each at the confidence split over their number.
GUESS_SHARES = (0.1, 0.2, 0.5, 1.0)


def _is_number(col: pd.Series) -> bool:
    """A number or date column (booleans and categoricals are levels)."""
    if pd.api.types.is_bool_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
        return False
    return pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)


def _picks(col: pd.Series, m: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of m of the column's present values, drawn uniformly over its distinct values (a rare
    level as likely as a common one). Spreading numbers uniformly over their range instead was no
    stronger (tried on covid_testing, adult and flchain)."""
    pool = np.flatnonzero(col.notna().to_numpy() & ~col.duplicated().to_numpy())
    return rng.choice(pool, m) if len(pool) else np.zeros(m, dtype=int)


def _canaries(base: pd.DataFrame, m: int, inside: bool, rng: np.random.Generator) -> pd.DataFrame:
    """m worst-case records. Inside the domain: each value one of its column's present values, spread
    over them (`_picks`), so the combinations are isolated. Outside: also a level of their own in every
    text or category column and a number or date beyond the column's range (one per canary), so a
    canary's trace in the output is its own."""
    columns = {c: base[c].iloc[_picks(base[c], m, rng)].reset_index(drop=True) for c in base.columns}
    out = pd.DataFrame(columns, columns=base.columns)
    if inside:
        return out
    step = np.arange(1, m + 1)
    for c in base.columns:
        col = base[c]
        if pd.api.types.is_bool_dtype(col) or col.notna().sum() == 0:
            continue
        if _is_number(col):
            low, high = col.min(), col.max()
            span = (high - low) if high != low else (pd.Timedelta(days=1) if hasattr(high, "day") else 1)
            values = [high + int(k) * span for k in step]
            out[c] = (
                pd.Series(values, dtype=col.dtype)
                if not pd.api.types.is_integer_dtype(col)
                else pd.array(np.asarray(values, dtype=np.int64), dtype=col.dtype)
            )
        else:
            labels = [f"dp-canary-{k}" for k in step]
            if isinstance(col.dtype, pd.CategoricalDtype):
                out[c] = pd.Categorical(labels, categories=[*col.cat.categories, *labels])
            else:
                out[c] = pd.Series(labels, dtype=col.dtype)
    return out


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows of several frames of the same columns, categories united."""
    frame = pd.concat(parts, ignore_index=True)
    for c in parts[0].columns:
        if isinstance(parts[0][c].dtype, pd.CategoricalDtype):
            levels = pd.unique(np.concatenate([np.asarray(p[c].cat.categories, dtype=object) for p in parts]))
            frame[c] = pd.Categorical(
                np.concatenate([np.asarray(p[c], dtype=object) for p in parts]), categories=levels
            )
    return frame


@checks.register("dp_audit")
class DPAudit:
    """Audits a generator's declared differential-privacy claim with canary records in one refit.

    `epsilon_lower` is the empirical epsilon lower bound the canaries show (0 = nothing shown);
    `epsilon_excess` is that bound minus the claimed epsilon: above 0 the claim is violated (the
    generator leaks more than it promises). Canaries stay inside the data's domain when the claim
    treats the domain as public, else they carry values of their own (new levels, numbers beyond the
    range). `canaries` records (at most a quarter as many as the rows) join up to `max_rows` training
    rows (a DP claim holds for any table, and fewer rows make each canary weigh more); the refit is sampled
    `sample_factor` times as many rows as it was fitted on. `details.ceiling` is the largest bound
    these canaries could show (every guess right): a claim above it cannot be refuted by this audit.

    What it does not prove: a bound at or below the claim does not show that the claim holds; a
    stronger attacker, other canaries or many refits may show a larger epsilon. It audits the
    generator as configured, on rows of this table.
    """

    name: ClassVar[str] = "dp_audit"
    declares: ClassVar[tuple[MeasurementSpec, ...]] = (
        privacy(
            "dp_audit.epsilon_lower",
            Goal.MINIMIZE,
            "dp",
            "empirical epsilon lower bound shown by canaries in one refit (0 = nothing shown)",
            bounds=(0, float("inf")),
            refits=True,
            self_audited=True,
        ),
        privacy(
            "dp_audit.epsilon_excess",
            Goal.MINIMIZE,
            "dp",
            "epsilon lower bound minus the claimed epsilon (above 0: the claim is violated)",
            refits=True,
            self_audited=True,
        ),
    )
    measures: ClassVar[tuple[str, ...]] = names(declares)
    needs: ClassVar[tuple] = ()

    def __init__(
        self, *, canaries: int = 200, max_rows: int = 1_000, sample_factor: float = 10.0, memory_mb: float = 256.0
    ) -> None:
        self.canaries = canaries
        self.max_rows = max_rows
        self.sample_factor = sample_factor
        self.memory_mb = memory_mb

    def evaluate(self, ctx: Context) -> list[Measurement]:
        claim = ctx.privacy_claim
        if claim is None:
            print("dp_audit: the generator declares no privacy claim: not applicable", file=sys.stderr, flush=True)
            return []
        if ctx.fit_generator is None:
            raise ValueError(
                "dp_audit: the generator declares a privacy claim but this context cannot refit it (no fit_generator); "
                "run it through the suite's runner"
            )
        if self.canaries < 4 or self.max_rows < 16 or not self.sample_factor >= 1:
            raise ValueError("dp_audit: canaries must be >= 4, max_rows >= 16 and sample_factor >= 1")
        start = time.perf_counter()
        rng = np.random.default_rng(derive_seed(ctx.seed, "dp_audit"))
        train = ctx.train.reset_index(drop=True)
        base = train.iloc[np.sort(rng.choice(len(train), min(len(train), self.max_rows), replace=False))]
        base = base.reset_index(drop=True)
        m = int(min(self.canaries, len(base) // 4))
        if m < 4:
            raise ValueError(f"dp_audit: {len(train)} training rows leave fewer than 4 canaries; it needs at least 16")
        inside = "domain" in claim.public
        canaries = _canaries(base, m, inside, rng)
        fillers = rng.choice(len(base), m)  # canary i's stand-in (a training row's copy) when it is left out
        included = rng.random(m) < 0.5
        parts = [base, canaries[included]]
        if claim.neighbours == "replace":  # the same n either way: flipping one coin replaces one row
            parts.append(base.iloc[fillers[~included]])
        fitted_rows = _stack(parts)
        fitted_rows = fitted_rows.iloc[rng.permutation(len(fitted_rows))].reset_index(drop=True)
        model = ctx.fit_generator(fitted_rows)
        n_sample = int(np.ceil(self.sample_factor * len(fitted_rows)))
        synthetic = model.sample(n_sample, seed=derive_seed(ctx.seed, "dp_audit.sample"))
        scores = self._scores(ctx, base, canaries, synthetic[list(base.columns)])
        delta = claim.delta if claim.delta is not None else 1.0 / len(fitted_rows)
        found = _guesses(scores, included, delta, ctx.confidence)
        lower = max(g["epsilon"] for g in found)
        ceiling = max(one_run_epsilon(m, g["guesses"], g["guesses"], delta, _level(ctx.confidence)) for g in found)
        details = {
            "claim": _claim_details(claim, delta),
            "canaries": m,
            "canaries_in": int(included.sum()),
            "canary_kind": (
                "inside the domain (each value drawn from its column's distinct values)"
                if inside
                else "outside the domain (levels of their own, numbers and dates beyond the range)"
            ),
            "rows_fitted": int(len(fitted_rows)),
            "rows_sampled": int(n_sample),
            "guesses": found,
            "ceiling": ceiling,
            "can_refute_claim": bool(ceiling > claim.epsilon),
            "method": (
                "one-run audit (Steinke, Nasr and Jagielski 2023): each canary in with probability 1/2; the "
                "attacker ranks canaries by log d_train - log d_synthetic (Gower distance to the nearest training "
                "and synthetic row) and guesses 'in' for the top and 'out' for the bottom of the ranking; the "
                f"bound is the best over {len(GUESS_SHARES)} guess counts, each one-sided at "
                f"{(1 + _level(ctx.confidence)) / 2:.4g}"
            ),
            "seconds": round(time.perf_counter() - start, 3),
        }
        violated = lower > claim.epsilon
        return [
            Measurement(
                "dp_audit.epsilon_lower",
                lower,
                Goal.MINIMIZE,
                baseline=0.0,
                meaning="empirical epsilon lower bound shown by canaries in one refit (0 = nothing shown; ungated)",
                details=details,
            ),
            Measurement(
                "dp_audit.epsilon_excess",
                lower - claim.epsilon,
                Goal.MINIMIZE,
                baseline=-claim.epsilon,
                meaning="epsilon lower bound minus the claimed epsilon: above 0 the claim is violated",
                details={
                    "claim_violated": bool(violated),
                    "claimed_epsilon": claim.epsilon,
                    "epsilon_lower": lower,
                    "claim": details["claim"],
                },
            ),
        ]

    def _scores(self, ctx: Context, base: pd.DataFrame, canaries: pd.DataFrame, synthetic: pd.DataFrame) -> np.ndarray:
        """log(d_base + eps) - log(d_syn + eps) per canary: how much closer the output comes to it than
        the training rows do (the local membership attacker's score)."""
        md = ctx.metadata
        frames = _stack([base, canaries, synthetic])
        b, c = len(base), len(canaries)
        encoder = GowerEncoder(numerical=md.continuous, categorical=md.discrete).fit(frames.iloc[: b + c])
        query = encoder.transform(frames.iloc[b : b + c])
        d_syn = nearest(query, encoder.transform(frames.iloc[b + c :]), memory_mb=self.memory_mb)[0][:, 0]
        d_base = nearest(query, encoder.transform(frames.iloc[:b]), memory_mb=self.memory_mb)[0][:, 0]
        return np.log(d_base + LOCAL_EPS) - np.log(d_syn + LOCAL_EPS)


def _guesses(scores: np.ndarray, included: np.ndarray, delta: float, confidence: float) -> list[dict]:
    """For each share of GUESS_SHARES: 'in' for the top half of the guesses, 'out' for the bottom half,
    the correct count and its epsilon bound (confidence split over the shares, Bonferroni)."""
    m = len(scores)
    order = np.argsort(-scores, kind="stable")
    level = _level(confidence)
    out = []
    for share in GUESS_SHARES:
        r = max(2, int(round(share * m)))
        k_in = r // 2
        top, bottom = order[:k_in], order[m - (r - k_in) :]
        correct = int(included[top].sum() + (~included[bottom]).sum())
        eps = one_run_epsilon(m, r, correct, delta, level)
        out.append({"guesses": r, "correct": correct, "epsilon": eps})
    return out


def _level(confidence: float) -> float:
    """The two-sided level of each guess count's bound: the confidence split over GUESS_SHARES (Bonferroni)."""
    return 1.0 - (1.0 - confidence) / len(GUESS_SHARES)


def _claim_details(claim: PrivacyClaim, delta: float) -> dict:
    return {
        "epsilon": claim.epsilon,
        "delta": delta,
        "unit": claim.unit,
        "neighbours": claim.neighbours,
        "public": list(claim.public),
        "note": claim.note,
    }
