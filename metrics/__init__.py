"""Built-in metrics. Importing this package registers them in `suite.registry.checks`."""

from metrics import collisions, dcr, dependence, diagnostic, fidelity, missingness, propensity, structure, utility  # noqa: F401
