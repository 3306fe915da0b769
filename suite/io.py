"""File input and output: tables in, atomic files and fresh run folders out."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from suite.errors import ConfigError

TABLE_SUFFIXES = {
    ".csv": "CSV",
    ".tsv": "TSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".xlsx": "Excel",
    ".xls": "Excel",
}


#: Separators a CSV may use; the one a file uses is sniffed from its first lines.
DELIMITERS = ",;\t|"


def read_parquet(path: Path) -> pd.DataFrame:
    """`pd.read_parquet` on pyarrow's system allocator: its default (mimalloc) keeps the pages it freed, which
    left about 130 MB of a 299k-row table's reading resident for the whole run (pyarrow's pool is global, so
    it is put back after)."""
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        return pd.read_parquet(path)
    finally:
        pa.set_memory_pool(previous)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """`frame.to_parquet(index=False)`'s bytes; then pyarrow's pool hands the pages it freed back to the system.
    Its default (mimalloc) keeps them: writing each task's 100k-row sample (`TaskCache.save_sample`) left 20-60 MB
    more resident every task of census_100k. Not the system allocator, as for reading: the conversion's threads
    leave about 80 MB in glibc's per-thread arenas that `malloc_trim` cannot hand back. The bytes are the same."""
    import pyarrow as pa

    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    finally:
        pa.default_memory_pool().release_unused()
    return buffer.getvalue()


def read_table(path: Path, *, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or Excel file into a new frame; the file is only read.

    A CSV's separator (one of `DELIMITERS`) is sniffed from its first lines and kept in
    `frame.attrs["delimiter"]`. A header naming a column twice is refused for CSV and Excel alike.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        accepted = ", ".join(sorted(TABLE_SUFFIXES))
        raise ConfigError(
            f"unsupported table format {suffix or '(no suffix)'!r}; accepted: {accepted}", source=str(path)
        )
    if not path.is_file():
        raise ConfigError(
            "dataset file not found; fix `dataset.path` (relative paths start at the scenario file)", source=str(path)
        )
    sep = "\t" if suffix == ".tsv" else ","
    try:
        if suffix in (".csv", ".tsv"):
            sep = _sniff_delimiter(path, sep)
            frame = pd.read_csv(path, sep=sep, low_memory=False)
        elif suffix in (".parquet", ".pq"):
            frame = read_parquet(path)
        else:
            frame = pd.read_excel(path, sheet_name=0 if sheet is None else sheet)
    except PermissionError:
        raise ConfigError(
            "dataset file is not readable; check its permissions (the suite only needs to read it)", source=str(path)
        ) from None
    except pd.errors.EmptyDataError:
        raise ConfigError("the file is empty; a release check needs a header and rows", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}); save the table as UTF-8 (Excel: 'CSV UTF-8')", source=str(path)
        ) from None
    except ImportError as exc:
        raise ConfigError(
            f"reading {TABLE_SUFFIXES[suffix]} needs a package that is missing ({exc}); install it with pip",
            source=str(path),
        ) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ConfigError(f"could not read as {TABLE_SUFFIXES[suffix]}: {exc}", source=str(path)) from None
    if suffix in (".csv", ".tsv"):
        import csv

        with open(path, encoding="utf-8", newline="") as handle:
            _no_repeated_header(next(csv.reader(handle, delimiter=sep), []), path)
        _not_one_joined_column(frame, path, sep)
        frame.attrs["delimiter"] = sep
    elif suffix in (".xlsx", ".xls"):
        raw = pd.read_excel(path, sheet_name=0 if sheet is None else sheet, header=None, nrows=1)
        _no_repeated_header([] if raw.empty else [v for v in raw.iloc[0] if pd.notna(v)], path)
    return frame


def _sniff_delimiter(path: Path, default: str) -> str:
    """The separator of a CSV among `DELIMITERS`, judged on its first lines; `default` when unclear."""
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        sample = handle.read(1 << 16)
    if "\n" in sample.rstrip("\r\n"):
        sample = sample[: sample.rstrip("\r\n").rindex("\n")]  # whole lines only
    try:
        found = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return default
    header = sample.splitlines()[0] if sample else ""
    # the sniffed separator wins only when it splits the header into more columns than the default one
    return found if found != default and header.count(found) > header.count(default) else default


def _not_one_joined_column(frame: pd.DataFrame, path: Path, sep: str) -> None:
    """One column whose name holds a separator: the file is split by a character the sniffer missed."""
    if frame.shape[1] != 1:
        return
    other = [d for d in DELIMITERS if d != sep and d in str(frame.columns[0])]
    if other:
        raise ConfigError(
            f"read as {sep!r}-separated, the table is one column named {str(frame.columns[0])!r}; its header holds "
            f"{other[0]!r}, but the rows do not split evenly on it: save the file with one separator "
            "(comma-separated CSV, or tab-separated as .tsv)",
            source=str(path),
        )


def _no_repeated_header(header: list, path: Path) -> None:
    """pandas renames a repeated header (`age`, `age.1`); a repeated name is a mistake to fix, not to guess.

    Names are compared in Unicode NFC, as the table's columns are named once read."""
    from suite.metadata import nfc

    seen: set[str] = set()
    for name in map(nfc, header):
        if name in seen:
            raise ConfigError(f"column {name!r} appears twice in the header; rename one", source=str(path))
        seen.add(name)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_frame(frame: pd.DataFrame) -> str:
    """A content hash of a frame (values, column names and order)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path` (owner-only), then rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`write_bytes_atomic` of the text as UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"))


def output_root(root: Path, *, explicit: bool = False, source: str | None = None) -> Path:
    """Where run folders go: `root` resolved (relative paths start at the working folder).

    A symlink on the way inside the working folder is refused unless `explicit` (the user typed it as
    `--out`): a pull request can commit `runs -> /somewhere/else` and send a scenario's run, real rows
    of the cache included, anywhere. Absolute paths outside the working folder are taken as written.
    """
    cwd = Path.cwd()
    absolute = Path(root) if Path(root).is_absolute() else cwd / root
    if not explicit and absolute.is_relative_to(cwd):
        step = cwd
        for part in absolute.relative_to(cwd).parts:
            step = step / part
            if step.is_symlink():
                raise ConfigError(
                    f"{step} is a symlink to {step.resolve()}; run folders do not follow links inside the working "
                    f"folder. Set `output` to the real folder, remove the link, or pass --out {step} to write there",
                    source=source or str(root),
                )
    return absolute.resolve()


def new_run_dir(root: Path, name: str, *, explicit: bool = False, source: str | None = None) -> Path:
    """Create a fresh run folder `root/<name>-<UTC time>[-k]` (an existing folder is never reused).

    `root` goes through `output_root`: the folder returned is resolved, and a symlink is followed only if `explicit`.
    """
    root = output_root(root, explicit=explicit, source=source)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the folder for run folders ({exc.strerror}); set `output` in the scenario or pass "
            "--out DIR with a writable folder",
            source=str(root),
        ) from None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for k in range(1000):
        candidate = root / (f"{name}-{stamp}" if k == 0 else f"{name}-{stamp}-{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(
                f"cannot create a run folder here ({exc.strerror}); pass --out DIR with a writable folder",
                source=str(root),
            ) from None
        return candidate
    raise ConfigError(f"could not create a fresh run folder under {root}")
