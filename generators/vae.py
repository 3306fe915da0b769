"""A variational autoencoder for mixed tables (in the spirit of the NHS SynthVAE), with optional DP-SGD.

torch is imported inside `fit` and `sample`, so listing and validating scenarios never loads it;
opacus only when `dp` is true.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from suite.encoding import as_float
from suite.generators._columns import date_step, decimals, kind, noise_seed, require_fit, restore
from suite.metadata import Metadata
from suite.registry import generators
from suite.seeding import seeded
from suite.types import PrivacyClaim

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Bounds of the decoder's log standard deviation for a number, in normal scores: a floor keeps the
#: decoder from collapsing onto single training values (a copy risk), a ceiling keeps draws sane.
_LOG_SIGMA = (math.log(0.05), math.log(2.0))
#: Largest number of quantiles the normalisation of a number keeps.
_QUANTILES = 1000
#: A value of a number column holding at least this share of its present values is a mode of its own.
_ATOM_SHARE = 0.05
#: Rényi orders of the DP accountant. opacus' default (90 fractional orders) makes its noise search
#: take seconds at high sampling rates; these give the same noise to about 1e-4 in the usual regimes.
#: The reported epsilon is a valid bound whatever orders are tried (a minimum over them): fewer
#: orders can only make it looser, never wrong.
_ALPHAS = (1.25, 1.5, 1.75, *range(2, 64), 80, 128, 256, 512, 1024)
#: Rows decoded at once when sampling.
_CHUNK = 8192


@dataclass
class _Number:
    """A number or date column: its point masses as modes, the other values quantile-normalised to a
    standard normal, plus a missing indicator.

    Modes are the atoms (values holding at least 5% of the present values, like a test's "not
    detected" 45 or an age of 0) followed by `rest` (every other value) when there is any. With
    more than one mode the row carries a one-hot over them (softmax output); a non-constant rest
    carries its normal score (Gaussian output).
    """

    column: str
    atoms: np.ndarray  # float values of the point masses
    transformer: Any  # sklearn QuantileTransformer over the rest, or None when the rest is constant or empty
    rest: float | None  # the rest's single value when it is constant
    low: float
    high: float
    decimals: int | None  # numbers: decimals every training value has
    step: float | None  # dates: the coarsest unit (a day, an hour, ...) every training value is a multiple of
    missing: float  # training share of missing values
    mode: int = -1  # first position of the one-hot over the modes (-1: at most one mode)
    value: int = -1  # position of the normal score (-1: no non-constant rest)
    indicator: int = -1  # position of the missing indicator (-1: never missing in training)

    @property
    def n_modes(self) -> int:
        return len(self.atoms) + (self.transformer is not None or self.rest is not None)


@dataclass
class _Category:
    """A category column: one-hot over its top levels, an `other` level pooling the rest, a missing level."""

    column: str
    levels: list[Any]  # kept levels, most frequent first
    pooled: np.ndarray  # levels pooled into `other` (object array)
    pooled_p: np.ndarray  # their training frequencies, summing to one
    has_missing: bool
    start: int = 0  # first position of the one-hot block

    @property
    def width(self) -> int:
        return len(self.levels) + (len(self.pooled) > 0) + self.has_missing


@dataclass
class _Encoding:
    """How a table becomes a float matrix for the network, and back."""

    columns: list[str]
    numbers: list[_Number] = field(default_factory=list)
    categories: list[_Category] = field(default_factory=list)
    width: int = 0

    @property
    def values(self) -> list[int]:
        """Positions of the normal scores (Gaussian outputs)."""
        return [n.value for n in self.numbers if n.value >= 0]

    @property
    def indicators(self) -> list[int]:
        """Positions of the missing indicators (Bernoulli outputs)."""
        return [n.indicator for n in self.numbers if n.indicator >= 0]

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """(start, width) of every one-hot block (softmax outputs): categories, then modes of numbers."""
        modes = [(n.mode, n.n_modes) for n in self.numbers if n.mode >= 0]
        return [(c.start, c.width) for c in self.categories] + modes


def _fit_number(column: str, numbers: np.ndarray, seed: int, date: bool) -> _Number:
    from sklearn.preprocessing import QuantileTransformer

    finite = numbers[np.isfinite(numbers)]
    distinct, counts = np.unique(finite, return_counts=True)
    heavy = counts >= _ATOM_SHARE * len(finite)
    rest = finite[~np.isin(finite, distinct[heavy])]
    entry = _Number(
        column=column,
        atoms=distinct[heavy][np.argsort(-counts[heavy], kind="stable")],
        transformer=None,
        rest=None,
        low=float(finite.min()) if len(finite) else math.nan,
        high=float(finite.max()) if len(finite) else math.nan,
        decimals=decimals(finite) if len(finite) and not date else None,
        step=date_step(finite) if len(finite) and date else None,
        missing=float(1.0 - len(finite) / max(len(numbers), 1)),
    )
    if len(rest) and rest.min() == rest.max():
        entry.rest = float(rest[0])
    elif len(rest):
        entry.transformer = QuantileTransformer(
            n_quantiles=min(_QUANTILES, len(rest)),
            output_distribution="normal",
            subsample=100_000,
            random_state=seed % 2**32,
        ).fit(rest.reshape(-1, 1))
    return entry


def _fit_encoding(train: pd.DataFrame, metadata: Metadata, max_levels: int, seed: int) -> _Encoding:
    enc = _Encoding(columns=list(train.columns))
    position = 0
    for column in train.columns:
        values = train[column]
        if kind(metadata, column) == "categorical":
            missing = values.isna().to_numpy()
            counts = values[~missing].value_counts(sort=True)
            rest = counts.iloc[max_levels:]
            cat = _Category(
                column=column,
                levels=list(counts.index[:max_levels]),
                pooled=rest.index.to_numpy(dtype=object),
                pooled_p=(rest / rest.sum()).to_numpy(dtype=float) if len(rest) else np.array([]),
                has_missing=bool(missing.any()),
                start=position,
            )
            position += cat.width
            enc.categories.append(cat)
            continue
        numbers = as_float(values, column)
        number = _fit_number(column, numbers, seed, kind(metadata, column) == "datetime")
        if number.n_modes > 1:
            number.mode = position
            position += number.n_modes
        if number.transformer is not None:
            number.value = position
            position += 1
        if 0 < number.missing < 1:
            number.indicator = position
            position += 1
        enc.numbers.append(number)
    enc.width = position
    return enc


def _encode(enc: _Encoding, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The rows as floats (one-hots, normal scores, missing indicators) and the weight of each entry
    in the loss (0 for the modes and score of a missing number and for the score of an atom)."""
    n = len(frame)
    rows = np.arange(n)
    x = np.zeros((n, enc.width), dtype=np.float32)
    weight = np.ones((n, enc.width), dtype=np.float32)
    for entry in enc.numbers:
        numbers = as_float(frame[entry.column], entry.column)
        ok = np.isfinite(numbers)
        code = np.full(n, len(entry.atoms))
        for i, atom in enumerate(entry.atoms):
            code[numbers == atom] = i
        if entry.mode >= 0:
            x[rows[ok], entry.mode + code[ok]] = 1.0
            weight[:, entry.mode : entry.mode + entry.n_modes] = ok[:, None]
        if entry.value >= 0:
            scored = ok & (code == len(entry.atoms))
            if scored.any():
                x[scored, entry.value] = entry.transformer.transform(numbers[scored].reshape(-1, 1))[:, 0]
            weight[:, entry.value] = scored
        if entry.indicator >= 0:
            x[:, entry.indicator] = ~ok
    for cat in enc.categories:
        values = frame[cat.column]
        missing = values.isna().to_numpy()
        codes = pd.Categorical(values, categories=pd.Index(cat.levels, dtype=object)).codes.astype(np.int64)
        codes[(codes < 0) & ~missing] = len(cat.levels)  # pooled levels (and levels unseen in training)
        codes[missing] = cat.width - 1
        x[rows, cat.start + codes] = 1.0
    return x, weight


def _network(width: int, n_values: int, latent: int, hidden: int) -> torch.nn.Module:
    import torch
    from torch import nn

    class VAE(nn.Module):
        """MLP encoder to a diagonal Gaussian posterior; MLP decoder to the per-column parameters.

        The decoder returns `width` outputs laid out like the encoded row (a mean for every normal
        score, a logit for every indicator and level) followed by one log standard deviation per
        normal score.
        """

        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent)
            )
            self.decoder = nn.Sequential(
                nn.Linear(latent, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, width + n_values),
            )
            self.latent = latent

        def forward(self, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            mu, logvar = self.encoder(x).chunk(2, dim=1)
            logvar = logvar.clamp(-10.0, 10.0)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
            return self.decoder(z), mu, logvar

    return VAE()


class _Batches:
    """Shuffled minibatches of (rows, loss weights), a fresh order each epoch from torch's global generator."""

    def __init__(self, x: torch.Tensor, weight: torch.Tensor, size: int) -> None:
        self.x, self.weight, self.size = x, weight, size

    def __iter__(self) -> Any:
        import torch

        order = torch.randperm(len(self.x))
        for start in range(0, len(order), self.size):
            idx = order[start : start + self.size]
            yield self.x[idx], self.weight[idx]


def _row_loss(
    enc: _Encoding,
    out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Each row's negative ELBO: Gaussian NLL of the normal scores, BCE of the missing indicators,
    cross-entropy of every one-hot block (entries weighted by `weight`), plus `beta` times the KL
    divergence of the posterior from the standard normal prior."""
    import torch
    import torch.nn.functional as F

    loss = beta * -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    values = enc.values
    if values:
        log_sigma = out[:, enc.width :].clamp(*_LOG_SIGMA)
        nll = 0.5 * ((x[:, values] - out[:, values]) * torch.exp(-log_sigma)).pow(2) + log_sigma
        loss = loss + (nll * weight[:, values]).sum(dim=1)
    indicators = enc.indicators
    if indicators:
        bce = F.binary_cross_entropy_with_logits(out[:, indicators], x[:, indicators], reduction="none")
        loss = loss + bce.sum(dim=1)
    for start, width in enc.blocks:
        block = slice(start, start + width)
        loss = loss - (x[:, block] * weight[:, block] * F.log_softmax(out[:, block], dim=1)).sum(dim=1)
    return loss


@generators.register("vae")
class VAEGenerator:
    """A variational autoencoder over a mixed table (SynthVAE-style), optionally trained with DP-SGD.

    Encoding: a number or date's point masses (values holding at least 5% of its present values,
    such as a lab result's "not detected" 45 or an age of 0) are modes of their own, one-hot with
    a softmax output; every other value is quantile-normalised to a standard normal (sklearn's
    QuantileTransformer, at most 1,000 quantiles, fitted on the training rows) with a Gaussian
    output. This is a simple stand-in for CTGAN's mode-specific (Bayesian GMM) normalisation: a
    plain quantile map cannot shape a spike, and the spike is often what ties the column to
    others. A column with missing values gets a missing indicator (BCE output). Categories (and
    booleans and every other non-numeric sdtype) are one-hot over their `max_levels` most
    frequent levels with a softmax output; rarer levels share an `other` level (decoded to one of
    them drawn by its training frequency) and missing values are a level of their own.

    Model: MLP encoder and decoder (two hidden layers of `hidden` units, ReLU, a `latent_dim`
    diagonal Gaussian latent). The reconstruction loss is a Gaussian negative log-likelihood for
    each normal score (the decoder gives a mean and a log standard deviation, floored at 0.05 so
    it cannot collapse onto training values), binary cross-entropy for missing indicators and
    cross-entropy for categories and modes; the KL term is weighted by `beta`. Adam with
    `learning_rate`, minibatches of `batch_size`. Without DP a share `validation` of the training
    rows is held out; training stops once the validation loss has not improved for `patience`
    epochs (at most `epochs`) and the weights of the best epoch are kept.

    Sampling draws latents from the prior, then every score from its Gaussian, every indicator
    from its Bernoulli and every category and mode from its softmax. Numbers are mapped back
    through the quantiles, clipped to the training range, rounded to the column's precision
    (its decimals; for dates the coarsest of a day, hour, minute, second, ... that every
    training date falls on) and set missing where the drawn indicator says so. The missing
    share comes out within a few points of the training share (a VAE's prior samples do not
    match its training encodings exactly).

    Differential privacy (`dp=True`): the network is trained with DP-SGD through opacus
    (per-sample gradients clipped to `max_grad_norm`, Gaussian noise, Poisson sampling of
    batches, RDP accountant), with the noise multiplier chosen so that `epochs` epochs spend
    (`epsilon`, `delta`); `delta` defaults to 1/n (n training rows; pass a smaller one, such as
    1e-5, for the usual delta much below 1/n). With DP there is no validation split and no early
    stopping (choosing the epoch on held-out rows would use data the accountant does not count):
    all rows train for exactly `epochs` epochs and `validation` and `patience` are ignored. The
    guarantee covers the network's training only: the preprocessing is fitted on the same rows
    without noise, so the quantiles of every number (its minimum and maximum included), its point
    masses, the category levels and the frequencies of the pooled ones, and each column's
    precision are released as they are. Treat the result as DP for the joint structure the
    network learns, not for the per-column distributions. The unit of privacy is a row: a person
    with k rows (an entity column) is protected only at about k times epsilon. opacus runs
    without `secure_mode` (noise from torch's ordinary generator, which is reproducible but not
    cryptographically secure). Per-sample gradients cost time: 100 epochs on 2,000 rows take
    about a minute on one thread, against seconds without DP; fewer epochs (20 to 30) also need
    less noise per step.

    Randomness: without `dp`, `fit(..., seed=)` fixes the fit (the runner passes the run's seed; left
    None, one is read from numpy's global generator without advancing it) and trains inside a local
    `seeded` block (torch reads global state). With `dp`
    the seed (and so the DP-SGD noise) comes from the operating system's entropy, since noise from
    the public scenario seed could be regenerated and subtracted; `random_state` pins it (keep it
    secret), and `fit_info()["noise_source"]` says which; `sample`
    uses a torch.Generator seeded with `seed` (and numpy's default_rng(seed) for pooled levels).
    torch runs on one thread in both (restored afterwards), which keeps results reproducible.
    """

    name: ClassVar[str] = "vae"
    requires: ClassVar[tuple[str, ...]] = ("torch", "sklearn")

    def __init__(
        self,
        *,
        latent_dim: int = 16,
        hidden: int = 128,
        epochs: int = 100,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        patience: int = 10,
        validation: float = 0.1,
        beta: float = 1.0,
        max_levels: int = 50,
        dp: bool = False,
        epsilon: float = 3.0,
        delta: float | None = None,
        max_grad_norm: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation = validation
        self.beta = beta
        self.max_levels = max_levels
        self.dp = dp
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.random_state = random_state

    # ------------------------------------------------------------------ fit

    def fit(self, train: pd.DataFrame, metadata: Metadata, *, seed: int | None = None) -> VAEGenerator:
        import torch

        if len(train) < 2:
            raise ValueError(f"vae: needs at least 2 training rows, got {len(train)}")
        if self.dp and not self.epsilon > 0:
            raise ValueError(f"vae: epsilon must be positive, got {self.epsilon}")
        # the fit's seed, or the OS's entropy for a private fit
        seed, self.noise_source_ = noise_seed(self.random_state, self.dp, seed)
        self.template_ = train.iloc[:0].copy()
        self.encoding_ = _fit_encoding(train, metadata, max(1, self.max_levels), seed)
        x, weight = _encode(self.encoding_, train)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with seeded(seed):
                self._train(torch.from_numpy(x), torch.from_numpy(weight))
        finally:
            torch.set_num_threads(threads)
        return self

    def _train(self, x: torch.Tensor, weight: torch.Tensor) -> None:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        enc = self.encoding_
        n = len(x)
        model = _network(enc.width, len(enc.values), self.latent_dim, self.hidden)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate, foreach=True)
        n_val = 0 if self.dp or self.validation <= 0 else int(round(self.validation * n))
        n_val = n_val if 0 < n_val < n else 0
        order = torch.randperm(n)
        val, fit_rows = order[:n_val], order[n_val:]
        batch = max(1, min(self.batch_size, len(fit_rows)))
        if self.dp:  # opacus resamples the batches (Poisson) from this loader
            loader: Any = DataLoader(TensorDataset(x[fit_rows], weight[fit_rows]), batch_size=batch)
        else:  # plain shuffled minibatches, without a DataLoader's per-row overhead
            loader = _Batches(x[fit_rows], weight[fit_rows], batch)
        self.info_: dict[str, Any] = {
            "epochs_run": 0,
            "best_validation_loss": None,
            "dp": bool(self.dp),
            "epsilon_spent": None,
            "delta": None,
            "noise_multiplier": None,
            "noise_source": self.noise_source_ if self.dp else None,
        }
        engine = None
        module = model
        if self.dp:
            engine, module, optimizer, loader = self._private(model, optimizer, loader, n)
        self.history_: list[float] = []  # validation loss after each epoch
        with warnings.catch_warnings():
            # opacus' per-sample hooks fire on outputs only (the inputs need no gradient): expected
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            best, best_state = self._epochs(module, model, optimizer, loader, engine, x[val], weight[val])
        if engine is not None:
            module.to_standard_module()  # drop opacus' hooks; `model` holds the trained weights
            spent = float(engine.accountant.get_epsilon(self.info_["delta"], alphas=_ALPHAS))
            self.info_["epsilon_spent"] = spent
        if best_state is not None:
            model.load_state_dict(best_state)
            self.info_["best_validation_loss"] = best
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        # only the decoder is needed to sample; keeping it (a plain nn.Sequential) keeps the fitted
        # generator picklable, which the network's class (defined inside `_network`) is not
        self.decoder_ = model.decoder

    def _epochs(
        self,
        module: Any,
        model: Any,
        optimizer: Any,
        loader: Any,
        engine: Any,
        x_val: torch.Tensor,
        w_val: torch.Tensor,
    ) -> tuple[float, dict | None]:
        """Train `module` (the model, or opacus' wrapper of it) for up to `epochs` epochs; with a
        validation set, stop after `patience` epochs without improvement. The best loss and weights."""
        import torch

        enc = self.encoding_
        best, best_state, stale = math.inf, None, 0
        for _ in range(self.epochs):
            module.train()
            for xb, wb in loader:
                if not len(xb):  # Poisson sampling drew no row: nothing to learn, but the draw is counted
                    if engine is not None:
                        sigma, rate = optimizer.noise_multiplier, loader.sample_rate
                        engine.accountant.step(noise_multiplier=sigma, sample_rate=rate)
                    continue
                optimizer.zero_grad(set_to_none=True)
                out, mu, logvar = module(xb)
                _row_loss(enc, out, xb, wb, mu, logvar, self.beta).mean().backward()
                optimizer.step()
            self.info_["epochs_run"] += 1
            if not len(x_val):
                continue
            model.eval()
            with torch.no_grad():
                out, mu, logvar = model(x_val, sample=False)
                loss = float(_row_loss(enc, out, x_val, w_val, mu, logvar, self.beta).mean())
            self.history_.append(loss)
            if best_state is None or loss < best - 1e-4 * abs(best):
                best, best_state, stale = loss, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        return best, best_state

    def _private(self, model: Any, optimizer: Any, loader: Any, n: int) -> tuple[Any, Any, Any, Any]:
        try:
            from opacus import PrivacyEngine
            from opacus.accountants.utils import get_noise_multiplier
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("vae: dp=True needs opacus; install it with `pip install opacus`") from exc
        delta = float(self.delta) if self.delta is not None else 1.0 / n
        if not 0 < delta < 1:
            raise ValueError(f"vae: delta must be in (0, 1), got {delta}")
        # the noise for the budget, searched over the same RDP orders the spend is reported on
        sigma = get_noise_multiplier(
            target_epsilon=float(self.epsilon),
            target_delta=delta,
            sample_rate=1.0 / len(loader),
            epochs=max(1, self.epochs),
            accountant="rdp",
            alphas=_ALPHAS,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # opacus warns that its RNG is not cryptographically secure
            engine = PrivacyEngine(accountant="rdp")
            module, optimizer, loader = engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=sigma,
                max_grad_norm=float(self.max_grad_norm),
                poisson_sampling=True,
            )
        self.info_.update(delta=delta, noise_multiplier=float(optimizer.noise_multiplier))
        return engine, module, optimizer, loader

    def privacy_claim(self) -> PrivacyClaim | None:
        """With `dp`: (epsilon, delta)-DP of the network's training (DP-SGD, Poisson sampling: one row added
        or removed), the per-column preprocessing treated as public (it is fitted without noise); else None."""
        if not self.dp:
            return None
        return PrivacyClaim(
            epsilon=float(self.epsilon),
            delta=None if self.delta is None else float(self.delta),
            unit="row",
            neighbours="add_remove",
            public=("domain", "marginals"),
            note=(
                "the preprocessing (every number's quantiles with its minimum and maximum, point masses, category "
                "levels and the frequencies of pooled ones, each column's precision) is fitted on the training rows "
                "without noise: the claim covers the network's training only; a person with k rows is protected at "
                "about k x epsilon"
            ),
        )

    def fit_info(self) -> dict[str, Any]:
        """Epochs run, best validation loss (None with DP) and the privacy spent (None without DP)."""
        require_fit(self, "info_", "fit_info")
        return dict(self.info_)

    # ------------------------------------------------------------------ sample

    def sample(self, n: int, *, seed: int) -> pd.DataFrame:
        require_fit(self, "decoder_", "sample")
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out = self._draw(n, torch.Generator().manual_seed(int(seed)))
        finally:
            torch.set_num_threads(threads)
        return self._decode(out, n, np.random.default_rng(seed))

    def _draw(self, n: int, gen: torch.Generator) -> np.ndarray:
        """Encoded rows drawn from the model: one-hots, normal scores and 0/1 indicators."""
        import torch

        enc = self.encoding_
        values, indicators = enc.values, enc.indicators
        chunks = []
        with torch.no_grad():
            for start in range(0, n, _CHUNK):
                m = min(_CHUNK, n - start)
                z = torch.randn(m, self.decoder_[0].in_features, generator=gen)
                out = self.decoder_(z)
                row = torch.zeros(m, enc.width)
                if values:
                    sigma = out[:, enc.width :].clamp(*_LOG_SIGMA).exp()
                    row[:, values] = out[:, values] + sigma * torch.randn(m, len(values), generator=gen)
                if indicators:
                    p = torch.sigmoid(out[:, indicators])
                    row[:, indicators] = (torch.rand(m, len(indicators), generator=gen) < p).float()
                for first, width in enc.blocks:
                    probs = torch.softmax(out[:, first : first + width], dim=1)
                    codes = torch.multinomial(probs, 1, generator=gen)[:, 0]
                    row[torch.arange(m), first + codes] = 1.0
                chunks.append(row.numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, enc.width), dtype=np.float32)

    def _decode(self, rows: np.ndarray, n: int, rng: np.random.Generator) -> pd.DataFrame:
        enc = self.encoding_
        out: dict[str, pd.Series] = {}
        for entry in enc.numbers:
            like = self.template_[entry.column]
            numbers = np.full(n, np.nan)  # stays missing when the column was always missing
            if entry.mode >= 0:
                code = rows[:, entry.mode : entry.mode + entry.n_modes].argmax(axis=1)
            else:
                code = np.zeros(n, dtype=np.int64) if len(entry.atoms) else np.full(n, len(entry.atoms))
            atom = code < len(entry.atoms)
            numbers[atom] = entry.atoms[code[atom]]
            if entry.rest is not None:
                numbers[~atom] = entry.rest
            elif entry.transformer is not None and (~atom).any():
                scores = rows[~atom, entry.value].astype(np.float64).reshape(-1, 1)
                numbers[~atom] = entry.transformer.inverse_transform(scores)[:, 0]
            numbers = np.clip(numbers, entry.low, entry.high)
            if entry.decimals is not None:
                numbers = np.round(numbers, entry.decimals)
            if entry.step is not None:
                numbers = np.round(numbers / entry.step) * entry.step
            if entry.indicator >= 0:
                numbers = np.where(rows[:, entry.indicator] > 0.5, np.nan, numbers)
            out[entry.column] = restore(numbers, like)
        for cat in enc.categories:
            like = self.template_[cat.column]
            codes = rows[:, cat.start : cat.start + cat.width].argmax(axis=1)
            values = np.empty(n, dtype=object)
            kept = codes < len(cat.levels)
            levels = np.empty(len(cat.levels), dtype=object)
            levels[:] = cat.levels
            values[kept] = levels[codes[kept]]
            other = codes == len(cat.levels)
            if len(cat.pooled) and other.any():
                values[other] = cat.pooled[rng.choice(len(cat.pooled), size=int(other.sum()), p=cat.pooled_p)]
            values[codes >= len(cat.levels) + (len(cat.pooled) > 0)] = None
            out[cat.column] = pd.Series(values, dtype=like.dtype)
        return pd.DataFrame({c: out[c] for c in enc.columns})
