"""Built-in generators. Importing this package registers them in `suite.registry.generators`."""

from generators import bayesian_network, calibration, cart, marginals, sdv_models, vae  # noqa: F401
