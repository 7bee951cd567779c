"""Read and validate a creditcard.csv: the 31 named columns, finite numbers, Class 0/1, Time and Amount >= 0.

The file is read in chunks with pandas and every chunk is checked with vectorised numpy operations, so memory
stays flat on the full 150 MB file. Only when a chunk fails is the first bad cell located and its raw text
re-read from the file, so the error names the file, the 1-based line (the header is line 1) and the column::

    data/x.csv, line 17, column 'V3': 'abc' is not a number

Both spellings of the header seen in the wild are accepted: plain names and quoted names (Kaggle's file quotes
them, and writes Class as ``"0"``/``"1"``). Column order does not matter; frames come out in CSV_COLUMNS order.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import pandas as pd

from fraudstream.exceptions import DataValidationError
from fraudstream.schemas import CSV_COLUMNS, FEATURES, LABEL_COLUMN

CHUNK_ROWS = 20_000
"""Rows read and checked at a time (about 5 MB of float64): peak memory stays near 165 MB on the full file."""
HEADER_LINE = 1
NON_NEGATIVE: tuple[str, ...] = ("Time", "Amount")
"""Columns the model schema requires to be >= 0."""
EXPECTED = "Time, V1..V28, Amount, Class"
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True)
class DatasetSummary:
    """What a validated creditcard.csv holds."""

    path: Path
    rows: int
    frauds: int
    fraud_rate: float
    sha256: str
    columns: tuple[str, ...]
    """The header's column names in file order (quotes removed)."""


# ---- public API -------------------------------------------------------------------------------------------


def validate_csv(path: str | Path, *, chunksize: int = CHUNK_ROWS) -> DatasetSummary:
    """Check every row of ``path`` in one streaming pass and hash its bytes; raise DataValidationError at the
    first problem, naming the line and the column."""
    path = Path(path)
    header = read_header(path)
    hasher = hashlib.sha256()
    rows = frauds = 0
    for _, frame in _scan(path, header, chunksize=chunksize, hasher=hasher):
        rows += len(frame)
        frauds += int(frame[LABEL_COLUMN].sum())
    _require_rows(path, rows)
    return DatasetSummary(path, rows, frauds, frauds / rows, hasher.hexdigest(), header)


def load_dataset(path: str | Path, *, chunksize: int = CHUNK_ROWS) -> tuple[pd.DataFrame, DatasetSummary]:
    """The whole validated file as one frame (float64 features in FEATURES order, then int64 Class) and its
    summary. Row ``i`` of the frame is data row ``i`` of the file (0-based, header excluded)."""
    path = Path(path)
    header = read_header(path)
    hasher = hashlib.sha256()
    frames = [frame for _, frame in _scan(path, header, chunksize=chunksize, hasher=hasher)]
    rows = sum(len(frame) for frame in frames)
    _require_rows(path, rows)
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    frauds = int(data[LABEL_COLUMN].sum())
    return data, DatasetSummary(path, rows, frauds, frauds / rows, hasher.hexdigest(), header)


def iter_validated_chunks(
    path: str | Path, chunksize: int = CHUNK_ROWS, start: int = 0, limit: int | None = None
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(first_row_number, frame)`` for data rows ``start`` .. ``start + limit - 1`` (0-based, header
    excluded), each frame validated and indexed by its row numbers. Memory stays flat: one chunk at a time.

    The header is checked before the first chunk. A bad row raises DataValidationError when its chunk is
    reached, so chunks before it have already been yielded.
    """
    if chunksize < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    if start < 0 or (limit is not None and limit < 0):
        raise ValueError(f"start and limit must be >= 0, got start={start}, limit={limit}")
    path = Path(path)
    header = read_header(path)
    if limit == 0:
        return
    yield from _scan(path, header, chunksize=chunksize, start=start, limit=limit)


def read_header(path: str | Path) -> tuple[str, ...]:
    """The validated header of ``path``: its column names in file order, quotes and spaces removed."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
    except FileNotFoundError as exc:
        raise DataValidationError(str(path), "file not found") from exc
    except IsADirectoryError as exc:
        raise DataValidationError(str(path), "is a folder, expected a CSV file") from exc
    except UnicodeDecodeError as exc:
        raise DataValidationError(str(path), "not a UTF-8 text file (is it still zipped?)", line=1) from exc
    except OSError as exc:
        raise DataValidationError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc
    if not first:
        raise DataValidationError(
            str(path), f"the file is empty: expected a header line naming the 31 columns {EXPECTED}", line=1
        )
    names = tuple(name.strip() for name in next(csv.reader([first], skipinitialspace=True), []))
    _check_header(str(path), names)
    return names


# ---- header -----------------------------------------------------------------------------------------------


def _check_header(path: str, names: tuple[str, ...]) -> None:
    if not any(names):
        raise DataValidationError(path, f"the header line is empty: expected the 31 columns {EXPECTED}", line=1)
    twice = [name for name, count in Counter(names).items() if count > 1]
    if twice:
        raise DataValidationError(path, f"column {twice[0]!r} appears more than once", line=1, column=twice[0])
    unknown = [name for name in names if name not in CSV_COLUMNS]
    missing = [name for name in CSV_COLUMNS if name not in names]
    if not unknown and not missing:
        return
    parts = []
    if unknown:
        parts.append(_plural("unknown column", unknown))
    if missing:
        parts.append(_plural("missing column", missing))
    problem = "; ".join(parts) + f" (expected exactly the 31 columns {EXPECTED}, in any order)"
    raise DataValidationError(path, problem, line=HEADER_LINE, column=(unknown or missing)[0])


def _plural(what: str, names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{what}{'s' if len(names) > 1 else ''} {shown}"


# ---- rows -------------------------------------------------------------------------------------------------


def _scan(
    path: Path,
    header: tuple[str, ...],
    *,
    chunksize: int,
    start: int = 0,
    limit: int | None = None,
    hasher: _Hasher | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Read, validate and normalise the data rows in chunks; feed every byte of the file to ``hasher``."""
    with path.open("rb") as raw:
        source: BinaryIO = io.BufferedReader(_HashingReader(raw, hasher), 1 << 20) if hasher else raw
        reader = pd.read_csv(
            source,
            header=0,
            names=list(header),
            chunksize=chunksize,
            skiprows=range(1, start + 1) if start else None,
            nrows=limit,
            skip_blank_lines=False,  # a blank line is an error at its own line, and line numbers stay exact
        )
        row = start
        try:
            for chunk in reader:
                if chunk.empty:  # a start past the last row
                    continue
                yield row, _validate_chunk(path, header, chunk, row)
                row += len(chunk)
        except pd.errors.ParserError as exc:
            raise _parser_error(path, exc) from exc
        except UnicodeDecodeError as exc:
            raise DataValidationError(str(path), f"not a UTF-8 text file: {exc.reason}") from exc
        finally:
            reader.close()
        if hasher is not None:
            while source.read(1 << 20):  # pandas may stop before EOF: hash what is left
                pass


def _validate_chunk(path: Path, header: tuple[str, ...], chunk: pd.DataFrame, first_row: int) -> pd.DataFrame:
    """The chunk in CSV_COLUMNS order with float64 features and int64 Class, or DataValidationError."""
    values, non_numeric = _as_float_matrix(chunk, header)
    bad = non_numeric | ~np.isfinite(values)
    for name in NON_NEGATIVE:
        bad[:, header.index(name)] |= values[:, header.index(name)] < 0
    label = header.index(LABEL_COLUMN)
    bad[:, label] |= (values[:, label] != 0) & (values[:, label] != 1)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        column = int(np.argmax(bad[row]))
        raise _cell_error(path, header, first_row + row + 2, column, chunk.iloc[row, column])
    index = pd.RangeIndex(first_row, first_row + len(chunk))
    frame = pd.DataFrame(values, columns=list(header), index=index)[list(FEATURES)]
    frame[LABEL_COLUMN] = values[:, label].astype(np.int64)
    return frame


def _as_float_matrix(chunk: pd.DataFrame, header: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The chunk as float64 (file column order) and a mask of cells that are text, not numbers."""
    non_numeric = np.zeros(chunk.shape, dtype=bool)
    columns = []
    for position, name in enumerate(header):
        column = chunk[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            columns.append(column.to_numpy(np.float64))
            continue
        text = column.astype(object)
        numbers = pd.to_numeric(text.where(~text.map(_is_bool), None), errors="coerce")
        non_numeric[:, position] = (numbers.isna() & text.notna()).to_numpy()
        columns.append(numbers.to_numpy(np.float64, na_value=np.nan))
    return np.column_stack(columns), non_numeric


def _is_bool(value: object) -> bool:
    return isinstance(value, (bool, np.bool_))


# ---- error messages ---------------------------------------------------------------------------------------


def _cell_error(path: Path, header: tuple[str, ...], line: int, column: int, parsed: object) -> DataValidationError:
    """Name what is wrong with one cell, from its raw text in the file when it can be re-read."""
    fields = _raw_line(path, line)
    name = header[column]
    if fields is not None and not any(field.strip() for field in fields):
        return DataValidationError(str(path), f"empty line: expected {len(header)} values", line=line)
    if fields is not None and len(fields) < len(header):
        missing = header[len(fields)]
        problem = f"the line has {len(fields)} fields, expected {len(header)}"
        return DataValidationError(str(path), problem, line=line, column=missing)
    text = fields[column].strip() if fields is not None and column < len(fields) else str(parsed)
    return DataValidationError(str(path), _cell_problem(name, text), line=line, column=name)


def _cell_problem(name: str, text: str) -> str:
    if not text:
        return "empty cell: every column needs a number"
    try:
        number = float(text)
    except ValueError:
        return f"{text!r} is not a number"
    if not math.isfinite(number):
        return f"{text!r} is not a finite number (NaN and infinity are refused)"
    if name == LABEL_COLUMN and number not in (0.0, 1.0):
        return f"Class must be 0 (legitimate) or 1 (fraud), got {text!r}"
    if name in NON_NEGATIVE and number < 0:
        return f"{name} must be >= 0, got {text!r}"
    return f"invalid value {text!r}"


def _raw_line(path: Path, line: int) -> list[str] | None:
    """The fields of physical line ``line`` (1-based), or None when it cannot be read back."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            text = next(itertools.islice(handle, line - 1, None), None)
    except (OSError, UnicodeDecodeError):
        return None
    if text is None:
        return None
    return next(csv.reader([text]), [])


def _parser_error(path: Path, exc: pd.errors.ParserError) -> DataValidationError:
    found = _FIELD_COUNT.search(str(exc))
    if found:
        expected, line, saw = (int(group) for group in found.groups())
        return DataValidationError(str(path), f"the line has {saw} fields, expected {expected}", line=line)
    return DataValidationError(str(path), f"not a readable CSV file: {exc}")


def _require_rows(path: Path, rows: int) -> None:
    if rows == 0:
        raise DataValidationError(
            str(path), "no data rows: the header is there but no transaction follows it", line=HEADER_LINE + 1
        )


class _HashingReader(io.RawIOBase):
    """A read-only stream that feeds every byte it passes on to a hash."""

    def __init__(self, raw: BinaryIO, hasher: _Hasher) -> None:
        super().__init__()
        self._raw = raw
        self._hasher = hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._hasher.update(memoryview(buffer)[:count])
        return count or 0
