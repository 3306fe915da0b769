"""Built-in metrics. Importing this package registers them in `suite.registry.checks`."""

from suite.metrics import (  # noqa: F401
    collisions,
    dcr,
    dependence,
    diagnostic,
    fidelity,
    missingness,
    propensity,
    rules,
    structure,
    utility,
)
