"""Built-in generators. Importing this package registers them in `suite.registry.generators`."""

from suite.generators import (  # noqa: F401
    bayesian_network,
    calibration,
    cart,
    external,
    forest_flow,
    generalize,
    marginals,
    sdv_models,
    sdv_par,
    vae,
)
