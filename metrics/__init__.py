"""Built-in metrics. Importing this package registers them in `suite.registry.checks`."""

from metrics import collisions, dcr, fidelity  # noqa: F401
