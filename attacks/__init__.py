"""Built-in privacy attacks. Importing this package registers them in `suite.registry.checks`."""

from attacks import dp_audit, inference, linkability, membership, reconstruction, singling_out  # noqa: F401
