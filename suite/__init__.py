"""The release gate for synthetic health data: fit generators, attack and measure, judge."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# Installed from a wheel, the families (generators/, attacks/, metrics/, reports/) and the shipped tables (data/)
# sit inside suite/. In a checkout they sit beside it at the repository root: look there too, so that
# `suite.generators` etc. import the checkout's own folders (also ahead of another checkout's editable install).
_ROOT = _Path(__file__).resolve().parent.parent
if not _Path(__file__).with_name("generators").is_dir() and (_ROOT / "generators" / "__init__.py").is_file():
    __path__.append(str(_ROOT))
