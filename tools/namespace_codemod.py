"""Rewrite imports of the families to the one namespace: `from metrics.dcr import X` -> `from suite.metrics.dcr ...`.

The folders generators/, attacks/, metrics/ and reports/ stay at the repository root but install as
suite.generators, suite.attacks, suite.metrics and suite.reports (pyproject.toml's package-dir). This rewrites
every tracked text file (code, tests, docs, scenarios, entry points) and is idempotent: run it again after
merging branches that still use the old names.

    python tools/namespace_codemod.py            # rewrite in place, list the files changed
    python tools/namespace_codemod.py --check    # change nothing; exit 1 if a file still uses an old name

Two rules:
1. import statements: `from metrics... import`, `import attacks.inference`, `import generators` get `suite.`;
2. dotted references in strings, docstrings and docs (`"generators.calibration:IdentityGenerator"`,
   `metrics.dcr.DCRMetric`) get `suite.` when they name a module that exists in the family's folder, so
   `generators.register(...)` (the registry) or `card.generators` are left alone.
Bare family names in strings (`builtin=("generators",)`) are not rewritten: fix those by hand. The Python files
it changed are then import-sorted and formatted with ruff (the longer names move imports and lengthen lines).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

FAMILIES = ("generators", "attacks", "metrics", "reports")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".txt", ".j2", ".html"}
EXTRA = {".ci/run"}
SKIP = ("tools/namespace_codemod.py", "tests/test_namespace.py", "tests/plugin_example/")  # own examples; a plugin

_FAMILY = "|".join(FAMILIES)
_IMPORT = re.compile(rf"(^[ \t]*|[;\"'`][ \t]*)(from|import)([ \t]+)({_FAMILY})(?=[\s.,;)\"'`]|$)", re.MULTILINE)
_DOTTED = re.compile(rf"(?<![\w./-])({_FAMILY})\.(\w+)")


def _is_module(root: Path, family: str, name: str) -> bool:
    folder = root / family
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def rewrite(text: str, root: Path) -> str:
    """The text with every import and dotted reference of a family moved under `suite.`."""
    text = _IMPORT.sub(lambda m: f"{m[1]}{m[2]}{m[3]}suite.{m[4]}", text)
    return _DOTTED.sub(lambda m: f"suite.{m[0]}" if _is_module(root, m[1], m[2]) else m[0], text)


def tracked_files(root: Path) -> list[Path]:
    """The repository's tracked text files this rewrite applies to."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files"], capture_output=True, text=True, check=True)
    names = [n for n in listed.stdout.splitlines() if not n.startswith(SKIP)]
    return [root / n for n in names if (Path(n).suffix in SUFFIXES or n in EXTRA) and (root / n).is_file()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file needs rewriting")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="repository root")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    changed = []
    for path in tracked_files(root):
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, root)
        if new != text:
            changed.append(path.relative_to(root))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for name in changed:
        print(f"{'needs rewriting' if args.check else 'rewrote'}: {name}")
    code = [str(root / n) for n in changed if n.suffix == ".py"]
    if code and not args.check:  # imports moved between isort sections, and a longer name may break a line
        subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "I", "--fix", "-q", *code], cwd=root)
        subprocess.run([sys.executable, "-m", "ruff", "format", "-q", *code], cwd=root, check=True)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
