"""Built-in privacy attacks. Importing this package registers them in `suite.registry.checks`."""

from attacks import membership  # noqa: F401
