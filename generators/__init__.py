"""Built-in generators. Importing this package registers them in `suite.registry.generators`."""

from generators import calibration, marginals, sdv_models  # noqa: F401
