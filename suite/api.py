"""The public API a plugin may import: these names keep their meaning and signature across minor versions.

    from suite.api import Context, Goal, Measurement, Metadata, privacy, check_generator

Everything else in `suite` (the runner, the CLI, the families' modules, the numerics) is internal and may
change; docs/plugins.md describes each name here.
"""

from suite.errors import ConfigError
from suite.metadata import Metadata, Roles
from suite.testing import (
    ContractResult,
    check_check,
    check_generator,
    contract_table,
    generator_contract,
    sequence_table,
)
from suite.types import (
    Check,
    Context,
    Generator,
    Goal,
    Measurement,
    MeasurementSpec,
    Need,
    PrivacyClaim,
    names,
    privacy,
    utility,
)

__all__ = [
    "Check",
    "ConfigError",
    "Context",
    "ContractResult",
    "Generator",
    "Goal",
    "Measurement",
    "MeasurementSpec",
    "Metadata",
    "Need",
    "PrivacyClaim",
    "Roles",
    "check_check",
    "check_generator",
    "contract_table",
    "generator_contract",
    "names",
    "privacy",
    "sequence_table",
    "utility",
]
