"""Built-in privacy attacks. Importing this package registers them in `suite.registry.checks`."""

from suite.attacks import dp_audit, inference, linkability, membership, reconstruction, shadow, singling_out  # noqa: F401
