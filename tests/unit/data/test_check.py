"""The CSV checker: every kind of bad file is refused with the file, the line and the column; good files load."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from fraudstream.data.check import iter_validated_chunks, load_dataset, read_header, validate_csv
from fraudstream.exceptions import DataValidationError
from fraudstream.schemas import CSV_COLUMNS, FEATURES, LABEL_COLUMN

HEADER = ",".join(CSV_COLUMNS)
# The first row and the first fraud of the real creditcard.csv (both public, quoted in many code files).
LEGIT = (
    "0,-1.3598071336738,-0.0727811733098497,2.53634673796914,1.37815522427443,-0.338320769942518,0.462387777762292,"
    "0.239598554061257,0.0986979012610507,0.363786969611213,0.0907941719789316,-0.551599533260813,-0.617800855762348,"
    "-0.991389847235408,-0.311169353699879,1.46817697209427,-0.470400525259478,0.207971241929242,0.0257905801985591,"
    "0.403992960255733,0.251412098239705,-0.018306777944153,0.277837575558899,-0.110473910188767,0.0669280749146731,"
    "0.128539358273528,-0.189114843888824,0.133558376740387,-0.0210530534538215,149.62,0"
)
FRAUD = (
    "406,-2.3122265423263,1.95199201064158,-1.60985073229769,3.9979055875468,-0.522187864667764,-1.42654531920595,"
    "-2.53738730624579,1.39165724829804,-2.77008927719433,-2.77227214465915,3.20203320709635,-2.89990738849473,"
    "-0.595221881324605,-4.28925378244217,0.389724120274487,-1.14074717980657,-2.83005567450437,-0.0168224681808257,"
    "0.416955705037907,0.126910559061474,0.517232370861764,-0.0350493686052974,-0.465211076182388,0.320198198514526,"
    "0.0445191674731724,0.177839798284401,0.261145002567677,-0.143275874698919,0,1"
)


def _rows(count: int = 20) -> list[str]:
    return [FRAUD if i % 5 == 4 else LEGIT for i in range(count)]


def _write(path: Path, lines: list[str], header: str | None = HEADER) -> Path:
    path.write_text("".join(f"{line}\n" for line in ([header] if header is not None else []) + lines))
    return path


def _with_cell(row: str, column: str, value: str) -> str:
    fields = row.split(",")
    fields[CSV_COLUMNS.index(column)] = value
    return ",".join(fields)


def _refusal(path: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        validate_csv(path)
    return caught.value


# ---- cells ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("V3", "abc", "'abc' is not a number"),
        ("V5", "", "empty cell"),
        ("V7", "nan", "'nan' is not a finite number"),
        ("V9", "NaN", "'NaN' is not a finite number"),
        ("V11", "inf", "'inf' is not a finite number"),
        ("V28", "-Infinity", "'-Infinity' is not a finite number"),
        ("V1", "True", "'True' is not a number"),
        ("Class", "2", "Class must be 0 (legitimate) or 1 (fraud), got '2'"),
        ("Class", "0.5", "Class must be 0 (legitimate) or 1 (fraud), got '0.5'"),
        ("Amount", "-1.5", "Amount must be >= 0, got '-1.5'"),
        ("Time", "-3", "Time must be >= 0, got '-3'"),
    ],
)
def test_a_bad_cell_is_named_by_file_line_and_column(tmp_path: Path, column: str, value: str, problem: str) -> None:
    rows = _rows()
    rows[14] = _with_cell(rows[14], column, value)  # data row 14 is line 16 (the header is line 1)
    path = _write(tmp_path / "x.csv", rows)

    error = _refusal(path)

    assert (error.line, error.column) == (16, column)
    assert str(error) == f"{path}, line 16, column {column!r}: {error.problem}"
    assert problem in error.problem


def test_the_line_number_is_exact_in_a_later_chunk(tmp_path: Path) -> None:
    rows = _rows(50)
    rows[37] = _with_cell(rows[37], "V3", "abc")
    path = _write(tmp_path / "x.csv", rows)

    with pytest.raises(DataValidationError, match=r"line 39, column 'V3': 'abc' is not a number"):
        validate_csv(path, chunksize=7)


def test_the_first_bad_cell_of_the_file_is_reported(tmp_path: Path) -> None:
    rows = _rows()
    rows[3] = _with_cell(_with_cell(rows[3], "Amount", "-1"), "V2", "x")
    rows[2] = _with_cell(rows[2], "Class", "7")
    error = _refusal(_write(tmp_path / "x.csv", rows))
    assert (error.line, error.column) == (4, "Class")


def test_a_short_line_names_the_first_missing_column(tmp_path: Path) -> None:
    rows = _rows()
    rows[5] = ",".join(rows[5].split(",")[:20])
    error = _refusal(_write(tmp_path / "x.csv", rows))
    assert (error.line, error.column) == (7, "V20")
    assert "the line has 20 fields, expected 31" in str(error)


def test_a_long_line_is_refused_at_its_line(tmp_path: Path) -> None:
    rows = _rows()
    rows[5] += ",7"
    error = _refusal(_write(tmp_path / "x.csv", rows))
    assert error.line == 7
    assert "the line has 32 fields, expected 31" in str(error)


def test_a_blank_line_is_refused_at_its_line(tmp_path: Path) -> None:
    rows = _rows()
    rows[5] = ""
    error = _refusal(_write(tmp_path / "x.csv", rows))
    assert error.line == 7
    assert "empty line" in str(error)


# ---- header and whole file --------------------------------------------------------------------------------


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    header = ",".join(name for name in CSV_COLUMNS if name != "V17")
    rows = [",".join(f for i, f in enumerate(row.split(",")) if i != CSV_COLUMNS.index("V17")) for row in _rows()]
    error = _refusal(_write(tmp_path / "x.csv", rows, header))
    assert (error.line, error.column) == (1, "V17")
    assert "missing column 'V17'" in str(error)
    assert str(error).startswith(f"{tmp_path / 'x.csv'}, line 1, column 'V17': ")


def test_an_unknown_column_is_named(tmp_path: Path) -> None:
    rows = [f"{row},5" for row in _rows()]
    error = _refusal(_write(tmp_path / "x.csv", rows, HEADER + ",Merchant"))
    assert (error.line, error.column) == (1, "Merchant")
    assert "unknown column 'Merchant'" in str(error)


def test_a_renamed_column_is_both_unknown_and_missing(tmp_path: Path) -> None:
    error = _refusal(_write(tmp_path / "x.csv", _rows(), HEADER.replace(",V3,", ",v3,")))
    assert error.column == "v3"
    assert "unknown column 'v3'; missing column 'V3'" in str(error)


def test_a_repeated_column_is_refused(tmp_path: Path) -> None:
    error = _refusal(_write(tmp_path / "x.csv", _rows(), HEADER.replace(",V3,", ",V2,")))
    assert (error.line, error.column) == (1, "V2")
    assert "appears more than once" in str(error)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    error = _refusal(_write(tmp_path / "x.csv", [], header=None))
    assert error.line == 1
    assert "the file is empty" in str(error)


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    error = _refusal(_write(tmp_path / "x.csv", []))
    assert error.line == 2
    assert "no data rows" in str(error)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"nope\.csv: file not found"):
        validate_csv(tmp_path / "nope.csv")


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "creditcard.csv"
    path.write_bytes(b"PK\x03\x04\xff\xfe\x00garbage")
    with pytest.raises(DataValidationError, match="not a UTF-8 text file"):
        validate_csv(path)


# ---- good files -------------------------------------------------------------------------------------------


def test_a_valid_file_is_summarised_and_hashed(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", _rows(20))
    summary = validate_csv(path)
    assert (summary.rows, summary.frauds) == (20, 4)
    assert summary.fraud_rate == pytest.approx(0.2)
    assert summary.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary.columns == CSV_COLUMNS


def test_quoted_names_and_classes_like_kaggles_file_are_accepted(tmp_path: Path) -> None:
    header = ",".join(f'"{name}"' for name in CSV_COLUMNS)
    rows = [row[: row.rindex(",")] + f',"{row[-1]}"' for row in _rows(10)]
    path = tmp_path / "kaggle.csv"
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode())

    frame, summary = load_dataset(path)

    assert (summary.rows, summary.frauds) == (10, 2)
    assert frame[LABEL_COLUMN].tolist() == [0, 0, 0, 0, 1] * 2


def test_columns_in_another_order_load_in_features_order(tmp_path: Path) -> None:
    order = list(reversed(CSV_COLUMNS))
    rows = [",".join(reversed(row.split(","))) for row in _rows(10)]
    frame, summary = load_dataset(_write(tmp_path / "x.csv", rows, ",".join(order)))

    assert list(frame.columns) == [*FEATURES, LABEL_COLUMN]
    assert summary.columns == tuple(order)
    assert all(frame[name].dtype == np.float64 for name in FEATURES)
    assert frame[LABEL_COLUMN].dtype == np.int64
    assert frame.loc[0, "Amount"] == 149.62
    assert frame.loc[4, "V1"] == -2.3122265423263


def test_read_header_strips_quotes_and_spaces(tmp_path: Path) -> None:
    header = ", ".join(f'"{name}"' for name in CSV_COLUMNS)
    assert read_header(_write(tmp_path / "x.csv", [], header)) == CSV_COLUMNS


# ---- chunks for the replay producer -----------------------------------------------------------------------


def test_chunks_carry_their_row_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", _rows(23))
    chunks = list(iter_validated_chunks(path, chunksize=10))
    assert [first for first, _ in chunks] == [0, 10, 20]
    assert [len(frame) for _, frame in chunks] == [10, 10, 3]
    assert list(chunks[2][1].index) == [20, 21, 22]
    assert list(chunks[0][1].columns) == list(CSV_COLUMNS)


def test_chunks_start_and_limit(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", _rows(23))
    chunks = list(iter_validated_chunks(path, chunksize=4, start=9, limit=6))
    assert [first for first, _ in chunks] == [9, 13]
    assert [i for _, frame in chunks for i in frame.index] == list(range(9, 15))
    assert chunks[0][1].loc[9, LABEL_COLUMN] == 1  # row 9 is a fraud (every fifth row)
    assert list(iter_validated_chunks(path, chunksize=4, start=23)) == []
    assert list(iter_validated_chunks(path, chunksize=4, limit=0)) == []


def test_chunks_refuse_a_bad_header_before_the_first_chunk(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.csv", _rows(), HEADER.replace("Amount", "amount"))
    with pytest.raises(DataValidationError, match="unknown column 'amount'"):
        next(iter_validated_chunks(path, chunksize=4))


def test_chunks_name_the_bad_line_after_a_start(tmp_path: Path) -> None:
    rows = _rows(30)
    rows[25] = _with_cell(rows[25], "V4", "oops")
    path = _write(tmp_path / "x.csv", rows)
    with pytest.raises(DataValidationError, match=r"line 27, column 'V4': 'oops' is not a number"):
        list(iter_validated_chunks(path, chunksize=4, start=18))


# ---- the real rows ----------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_the_real_rows_are_valid(real_creditcard_csv: Path) -> None:
    summary = validate_csv(real_creditcard_csv)
    assert (summary.rows, summary.frauds) == (100_492, 492)
    assert summary.fraud_rate == pytest.approx(492 / 100_492)
    assert summary.sha256 == hashlib.sha256(real_creditcard_csv.read_bytes()).hexdigest()


@pytest.mark.realdata
def test_the_real_rows_load_as_floats(real_creditcard_csv: Path) -> None:
    frame, summary = load_dataset(real_creditcard_csv)
    assert frame.shape == (100_492, 31)
    assert int(frame[LABEL_COLUMN].sum()) == summary.frauds == 492
    first_fraud = frame[frame[LABEL_COLUMN] == 1].iloc[0]
    assert (first_fraud["Time"], first_fraud["V1"], first_fraud["Amount"]) == (406.0, -2.3122265423263, 0.0)
