"""Built-in privacy attacks. Importing this package registers them in `suite.registry.checks`."""
