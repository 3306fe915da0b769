"""Built-in privacy attacks. Importing this package registers them in `suite.registry.checks`."""

from suite.attacks import inference, linkability, membership, reconstruction, singling_out  # noqa: F401
