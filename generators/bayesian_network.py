"""A Bayesian network of degree k over discretized columns, optionally differentially private (PrivBayes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.generators._columns import kind, noise_seed, precision, require_fit, restore, round_to
from suite.metadata import Metadata
from suite.registry import generators
from suite.types import PrivacyClaim

#: A conditional table (child codes x parent configurations) larger than this is never built:
#: parent sets that would need one are left out of the search (fewer parents are tried instead).
MAX_CELLS = 1_000_000
MI_SENSITIVITY = "PrivBayes (Zhang et al., TODS 2017, Lemma 4.1)"


@dataclass
class _Coding:
    """One column as codes 0..n_codes-1.

    Categories: one code per training level (most frequent first). Numbers and dates: one
    code per atom (a value holding at least 1/bins of the present values, or every value when
    at most `bins` are distinct), then one per bin of the other values. Missing, when the
    column has missing values, is the last code.
    """

    kind: str
    levels: np.ndarray | None = None  # categories
    atoms: np.ndarray | None = None  # numbers and dates
    edges: np.ndarray | None = None
    rounding: tuple[str, float] | None = None
    has_missing: bool = False

    @property
    def n_bins(self) -> int:
        return 0 if self.edges is None or len(self.edges) < 2 else len(self.edges) - 1

    @property
    def n_values(self) -> int:
        return len(self.levels) if self.kind == "categorical" else len(self.atoms) + self.n_bins

    @property
    def n_codes(self) -> int:
        return max(self.n_values + self.has_missing, 1)

    @classmethod
    def fit(cls, values: pd.Series, column_kind: str, bins: int, binning: str) -> tuple[_Coding, np.ndarray]:
        """The coding learned from `values` and the values' codes."""
        missing = values.isna().to_numpy()
        if column_kind == "categorical":
            counts = values.value_counts(dropna=True)
            coding = cls(column_kind, levels=counts.index.to_numpy(dtype=object), has_missing=bool(missing.any()))
            lookup = pd.Series(np.arange(len(counts)), index=counts.index)
            codes = np.full(len(values), coding.n_values, dtype=np.int64)
            codes[~missing] = lookup.reindex(values[~missing].to_numpy()).to_numpy(dtype=np.int64)
            return coding, codes
        x = as_float(values)
        finite = x[np.isfinite(x)]
        distinct, counts = np.unique(finite, return_counts=True)
        heavy = counts * bins >= len(finite)
        edges = None
        if len(distinct) - heavy.sum() <= bins:
            atoms = distinct
        else:
            atoms = distinct[heavy]
            rest = finite[~np.isin(finite, atoms)]
            if binning == "quantile":
                edges = np.unique(np.quantile(rest, np.linspace(0.0, 1.0, bins + 1)))
            else:
                edges = np.linspace(rest.min(), rest.max(), bins + 1)
        coding = cls(
            column_kind,
            atoms=atoms,
            edges=edges,
            rounding=precision(finite, column_kind),
            has_missing=bool(np.isnan(x).any()),
        )
        return coding, coding.encode_numbers(x)

    def encode_numbers(self, x: np.ndarray) -> np.ndarray:
        codes = np.full(len(x), self.n_values, dtype=np.int64)  # missing
        present = np.isfinite(x)
        atom = np.searchsorted(self.atoms, x[present])
        is_atom = np.zeros(len(atom), dtype=bool)
        if len(self.atoms):
            is_atom = (atom < len(self.atoms)) & (self.atoms[np.minimum(atom, len(self.atoms) - 1)] == x[present])
        sub = np.where(is_atom, atom, 0)
        if self.n_bins:
            b = np.clip(np.searchsorted(self.edges, x[present], side="right") - 1, 0, self.n_bins - 1)
            sub = np.where(is_atom, atom, len(self.atoms) + b)
        codes[present] = sub
        return codes

    def decode(self, codes: np.ndarray, like: pd.Series, rng: np.random.Generator) -> pd.Series:
        """Column values for `codes`: levels, atoms, or uniform draws inside a bin (rounded)."""
        n = len(codes)
        if self.kind == "categorical":
            table = np.append(self.levels, None) if self.has_missing or not len(self.levels) else self.levels
            return pd.Series(table[codes], dtype=like.dtype)
        out = np.full(n, np.nan)
        atom = codes < len(self.atoms)
        out[atom] = self.atoms[codes[atom]]
        in_bin = (codes >= len(self.atoms)) & (codes < self.n_values)
        if in_bin.any():
            b = codes[in_bin] - len(self.atoms)
            drawn = rng.uniform(self.edges[b], self.edges[b + 1])
            out[in_bin] = round_to(drawn, self.rounding)  # edges are on the grid at the ends of the range
        return restore(out, like)


def _configs(codes: np.ndarray, cards: np.ndarray, parents: list[int]) -> np.ndarray:
    """Each row's parent configuration as one integer (mixed radix, first parent most significant)."""
    config = np.zeros(len(codes), dtype=np.int64)
    for p in parents:
        config = config * cards[p] + codes[:, p]
    return config


def mutual_information(codes: np.ndarray, cards: np.ndarray, child: int, parents: list[int]) -> float:
    """I(child; parents) in nats, the parents taken as one joint variable (0 without parents)."""
    n = len(codes)
    if not parents or n == 0:
        return 0.0
    kc = int(cards[child])
    keys, joint = np.unique(_configs(codes, cards, parents) * kc + codes[:, child], return_counts=True)
    parent_of = keys // kc
    starts = np.flatnonzero(np.r_[True, parent_of[1:] != parent_of[:-1]])
    parent_counts = np.repeat(np.add.reduceat(joint, starts), np.diff(np.r_[starts, len(keys)]))
    child_counts = np.bincount(codes[:, child], minlength=kc)[keys % kc]
    j = joint.astype(np.float64)
    return float(max(0.0, (j / n * np.log(j * n / (parent_counts * child_counts))).sum()))


def mi_sensitivity(n: int, binary: bool) -> float:
    """PrivBayes' bound on how much I(X; Pi) changes when one of n rows is replaced (nats).

    Binary (X or Pi takes two values): (1/n) log n + ((n-1)/n) log(n/(n-1)); otherwise
    (2/n) log((n+1)/2) + ((n-1)/n) log((n+1)/(n-1)).
    """
    n = max(n, 2)
    if binary:
        return math.log(n) / n + (n - 1) / n * math.log(n / (n - 1))
    return 2.0 / n * math.log((n + 1) / 2.0) + (n - 1) / n * math.log((n + 1) / (n - 1))


@generators.register("bayesian_network")
class BayesianNetworkGenerator:
    """A Bayesian network of degree `degree` over discretized columns: PrivBayes, as
    DataSynthesizer's correlated attribute mode.

    Columns become codes: categories one code per level; numbers and dates one code per
    frequent value (holding at least 1/`bins` of the values, or every value when at most
    `bins` are distinct) and `bins` bins of the other values (`binning`: equal-frequency
    `quantile` bins by default, which survive heavy tails such as a turnaround time of
    61,000 hours next to typical values of 2, or DataSynthesizer's `equal_width`); missing
    is a code of its own, so missingness is modelled like any value. The network is built
    greedily (PrivBayes' GreedyBayes): a first column, then at each step the pair (column,
    parents), the parents being `degree` columns already in the network (all of them while
    there are fewer), with the largest mutual information. The rows are drawn in that order
    from each column's distribution given its parents; a number or date drawn in a bin is
    uniform inside it, rounded to the column's precision (decimals, or day/hour/... steps
    for dates). Parent sets whose table would exceed MAX_CELLS cells are not considered.

    With `epsilon` the model is epsilon-differentially private for a change of one row
    (PrivBayes, bounded neighbours, n public): the first column is drawn at random;
    `beta` x epsilon pays for the d-1 structure choices (exponential mechanism, epsilon
    split evenly, score I(X; Pi) scaled by PrivBayes' sensitivity bound of mutual
    information, Lemma 4.1 of Zhang et al., TODS 2017: (1/n) log n + ((n-1)/n) log(n/(n-1))
    when X or Pi is binary, else (2/n) log((n+1)/2) + ((n-1)/n) log((n+1)/(n-1)); not the
    R-score variant); the rest pays for the joint distributions Pr[X, Pi] (Laplace noise
    of scale 2m / (n epsilon_2) on every cell of each of the m tables' frequencies; the
    first k columns' distributions come from the table of column k+1, which holds them all,
    so m = d - k as in PrivBayes). Noisy cells below 0 become 0; each parent configuration
    is renormalised, and one left empty (no rows, or all noise clipped) falls back to the
    column's own distribution from the same noisy table. With `degree=0` there is no
    structure to choose and the whole epsilon goes to the d marginals. `epsilon=None`
    means no differential privacy: exact counts, the first column being the one with the
    largest total mutual information.

    Caveat: the domains are NOT covered by the budget. Category levels, frequent values,
    bin edges (quantiles, or the minimum and maximum for equal-width bins), each column's
    precision and which columns have missing values all come from the training data, as in
    PrivBayes' and DataSynthesizer's implementations; a level held by one person is
    disclosed by its existence. For an end-to-end guarantee the domains must be public
    (declared beforehand) or released with their own budget. The noise comes from the operating
    system's entropy: noise drawn from a known seed (the scenario's is public) can be regenerated
    and removed. Pin `random_state` to reproduce a fit (then keep it secret); `fit_info()` says
    which (`noise_source`). Without privacy (`epsilon: null`) the fit follows its `seed`.
    """

    name: ClassVar[str] = "bayesian_network"

    def __init__(
        self,
        *,
        degree: int = 2,
        bins: int = 20,
        binning: Literal["quantile", "equal_width"] = "quantile",
        epsilon: float | None = 1.0,
        beta: float = 0.3,
        random_state: int | None = None,
    ) -> None:
        self.degree = degree
        self.bins = bins
        self.binning = binning
        self.epsilon = epsilon
        self.beta = beta
        self.random_state = random_state

    def _validate(self) -> None:
        if self.degree < 0:
            raise ValueError("bayesian_network: degree must be 0 or more")
        if self.bins < 2:
            raise ValueError("bayesian_network: bins must be at least 2")
        if self.binning not in ("quantile", "equal_width"):
            raise ValueError("bayesian_network: binning must be 'quantile' or 'equal_width'")
        if self.epsilon is not None and not self.epsilon > 0:
            raise ValueError("bayesian_network: epsilon must be positive, or None for no differential privacy")
        if not 0 < self.beta < 1:
            raise ValueError("bayesian_network: beta must lie strictly between 0 and 1")

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> BayesianNetworkGenerator:
        self._validate()
        seed, source = noise_seed(self.random_state, self.epsilon is not None, seed)
        rng = np.random.default_rng(seed)
        self.template_ = train.iloc[:0].copy()
        columns = [str(c) for c in train.columns]
        self.codings_: list[_Coding] = []
        coded = []
        for column in columns:
            coding, codes = _Coding.fit(train[column], kind(metadata, column), self.bins, self.binning)
            self.codings_.append(coding)
            coded.append(codes)
        n, d = len(train), len(columns)
        codes = np.column_stack(coded) if coded else np.zeros((n, 0), dtype=np.int64)
        cards = np.array([c.n_codes for c in self.codings_], dtype=np.int64)
        dp = self.epsilon is not None
        k = min(self.degree, max(d - 1, 0))
        eps_structure = self.beta * self.epsilon if dp and k > 0 and d > 1 else 0.0
        eps_tables = (self.epsilon - eps_structure) if dp else 0.0

        order, parents = self._structure(codes, cards, k, eps_structure, rng)
        tables, derived = self._tables(codes, cards, order, parents, k, eps_tables, rng)
        self.order_ = order
        self.parents_ = parents
        self.conditionals_ = {i: self._conditional(i, order, parents, cards, tables, derived) for i in order}
        self.columns_ = columns
        noisy = len(tables)
        self.info_ = {
            "network": {columns[i]: [columns[p] for p in parents[i]] for i in order},
            "order": [columns[i] for i in order],
            "degree": self.degree,
            "dp": dp,
            "epsilon": self.epsilon,
            "epsilon_structure": eps_structure,
            "epsilon_distributions": eps_tables,
            "noisy_tables": noisy if dp else 0,
            "laplace_scale": (2.0 * noisy / (n * eps_tables)) if dp and noisy and n else None,
            "mi_sensitivity": MI_SENSITIVITY if dp and eps_structure > 0 else None,
            "codes": {c: int(cards[j]) for j, c in enumerate(columns)},
            "binning": self.binning,
            "domains_from_data": True,
            "noise_source": source if dp else None,
        }
        return self

    def _structure(
        self, codes: np.ndarray, cards: np.ndarray, k: int, eps: float, rng: np.random.Generator
    ) -> tuple[list[int], dict[int, list[int]]]:
        """GreedyBayes: the visit order and each column's parents."""
        n, d = codes.shape
        if d == 0:
            return [], {}
        cache: dict[tuple[int, tuple[int, ...]], float] = {}

        def mi(child: int, pa: tuple[int, ...]) -> float:
            if (child, pa) not in cache:
                cache[(child, pa)] = mutual_information(codes, cards, child, list(pa))
            return cache[(child, pa)]

        if k == 0:
            return list(range(d)), {j: [] for j in range(d)}
        if self.epsilon is not None:
            root = int(rng.integers(d))
        else:
            totals = [sum(mi(a, (b,)) for b in range(d) if b != a) for a in range(d)]
            root = int(np.argmax(totals))
        order, parents = [root], {root: []}
        remaining = [j for j in range(d) if j != root]
        while remaining:
            candidates: list[tuple[int, tuple[int, ...]]] = []
            for size in range(min(k, len(order)), -1, -1):
                candidates = [
                    (x, pa)
                    for x in remaining
                    for pa in combinations(order, size)
                    if cards[x] * math.prod(int(cards[p]) for p in pa) <= MAX_CELLS
                ]
                if candidates:
                    break
            if not candidates:  # a column too large for any table: no parents
                candidates = [(x, ()) for x in remaining]
            scores = np.array([mi(x, pa) for x, pa in candidates])
            if self.epsilon is None:
                pick = int(np.argmax(scores))
            else:
                per_choice = eps / (d - 1)
                binary = np.array([cards[x] == 2 or (len(pa) == 1 and cards[pa[0]] == 2) for x, pa in candidates])
                sens = np.where(binary, mi_sensitivity(n, True), mi_sensitivity(n, False))
                logits = per_choice * scores / (2.0 * sens)
                p = np.exp(logits - logits.max())
                pick = int(rng.choice(len(candidates), p=p / p.sum()))
            child, pa = candidates[pick]
            order.append(child)
            parents[child] = list(pa)
            remaining.remove(child)
        return order, parents

    def _tables(
        self,
        codes: np.ndarray,
        cards: np.ndarray,
        order: list[int],
        parents: dict[int, list[int]],
        k: int,
        eps: float,
        rng: np.random.Generator,
    ) -> tuple[dict[int, np.ndarray], dict[int, int]]:
        """The (noisy) joint distribution of each column with its parents, as arrays with one axis
        per attribute (parents in order, the column last), and the columns whose distribution is
        derived from another column's table (PrivBayes: the first k from column k+1's)."""
        n = len(codes)
        derived: dict[int, int] = {}
        if k > 0 and len(order) > k:
            head = order[k]
            for i, j in enumerate(order[:k]):
                if parents[j] == order[:i] and parents[head] == order[:k]:
                    derived[j] = head
        own = [j for j in order if j not in derived]
        scale = 2.0 * len(own) / (n * eps) if self.epsilon is not None and n else 0.0
        tables: dict[int, np.ndarray] = {}
        for j in own:
            attrs = [*parents[j], j]
            shape = tuple(int(cards[a]) for a in attrs)
            flat = _configs(codes, cards, attrs)
            joint = np.bincount(flat, minlength=math.prod(shape)).astype(np.float64) / max(n, 1)
            if scale > 0:
                joint = np.maximum(joint + rng.laplace(0.0, scale, joint.shape), 0.0)
            tables[j] = joint.reshape(shape)
        return tables, derived

    @staticmethod
    def _conditional(
        j: int,
        order: list[int],
        parents: dict[int, list[int]],
        cards: np.ndarray,
        tables: dict[int, np.ndarray],
        derived: dict[int, int],
    ) -> np.ndarray:
        """P(column | parent configuration), rows summing to 1, as a cumulative table."""
        if j in derived:
            source = tables[derived[j]]  # axes: order[0..k]; column j is axis len(parents[j])
            axis = len(parents[j])
            joint = source.sum(axis=tuple(range(axis + 1, source.ndim))) if source.ndim > axis + 1 else source
        else:
            joint = tables[j]
        kc = int(cards[j])
        joint = joint.reshape(-1, kc)
        marginal = joint.sum(axis=0)
        marginal = marginal / marginal.sum() if marginal.sum() > 0 else np.full(kc, 1.0 / kc)
        totals = joint.sum(axis=1, keepdims=True)
        cond = np.where(totals > 0, joint / np.where(totals > 0, totals, 1.0), marginal)
        cdf = np.cumsum(cond, axis=1)
        cdf[:, -1] = 1.0
        return cdf

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "conditionals_", "sample")
        rng = np.random.default_rng(seed)
        cards = np.array([c.n_codes for c in self.codings_], dtype=np.int64)
        codes = np.zeros((n, len(self.columns_)), dtype=np.int64)
        for j in self.order_:
            cdf = self.conditionals_[j]
            rows, kc = cdf.shape
            config = _configs(codes, cards, self.parents_[j])
            shifted = (cdf + np.arange(rows)[:, None]).ravel()
            drawn = np.searchsorted(shifted, config + rng.random(n), side="right") - config * kc
            codes[:, j] = np.clip(drawn, 0, kc - 1)
        out = {
            c: coding.decode(codes[:, j], self.template_[c], rng).reset_index(drop=True)
            for j, (c, coding) in enumerate(zip(self.columns_, self.codings_))
        }
        return pd.DataFrame(out, columns=self.template_.columns)

    def privacy_claim(self) -> PrivacyClaim | None:
        """epsilon-DP for one row changed (n public), the domains treated as public (they come from the
        data: see the caveat); None without `epsilon`."""
        if self.epsilon is None:
            return None
        return PrivacyClaim(
            epsilon=float(self.epsilon),
            delta=0.0,
            unit="row",
            neighbours="replace",
            public=("n", "domain"),
            note=(
                "the domains (category levels, frequent values, bin edges, precision, which columns have missing "
                "values) are read from the training rows outside the budget: a level or extreme value held by one "
                "person shows by its existence; a person with k rows is protected at about k x epsilon"
            ),
        )

    def fit_info(self) -> dict[str, Any]:
        """The network (column -> parents), the visit order, the epsilon split and whether it is DP."""
        require_fit(self, "info_", "fit_info")
        return dict(self.info_)
