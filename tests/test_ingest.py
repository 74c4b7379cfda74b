"""Reading exports as retailers produce them: formats, encodings, mappings, and bad files."""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import InputConfig
from pipeline.errors import InputDataError
from pipeline.local.baskets import baskets_from_lines
from pipeline.local.ingest import read_transactions

from conftest import SHARED, Export

RETAIL_COLUMNS = {
    "order_id": "InvoiceNo",
    "product_id": "StockCode",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "timestamp": "InvoiceDate",
}


def read(paths: list[Path | str], **options: object) -> pd.DataFrame:
    config = InputConfig.model_validate({"paths": [str(p) for p in paths], **options})
    return read_transactions(config)[0]


def test_semicolon_latin1_gzip_csv_keeps_leading_zeros(tmp_path: Path) -> None:
    path = tmp_path / "export.csv.gz"
    text = "Bestellung;Artikel;Menge\n0042;00123;2\n0042;Crème brûlée;1\n"
    with gzip.open(path, "wt", encoding="latin-1") as handle:
        handle.write(text)
    lines = read(
        [path],
        delimiter=";",
        encoding="latin-1",
        columns={"order_id": "Bestellung", "product_id": "Artikel", "quantity": "Menge"},
    )
    assert lines["order_id"].tolist() == ["0042", "0042"]
    assert lines["product_id"].tolist() == ["00123", "Crème brûlée"]
    assert lines["source_row"].tolist() == [2, 3]
    assert lines["timestamp"].isna().all()  # an unmapped optional column is null


def test_parquet_and_excel_read_like_csv(export: Export, tmp_path: Path) -> None:
    from_csv = read([export.path], columns=RETAIL_COLUMNS)
    frame = pd.read_csv(export.path, dtype=str, keep_default_na=False)
    frame.head(50).to_parquet(tmp_path / "part.parquet")
    frame.head(50).to_excel(tmp_path / "part.xlsx", index=False)
    for name in ("part.parquet", "part.xlsx"):
        other = read([tmp_path / name], columns=RETAIL_COLUMNS)
        assert other["product_id"].tolist() == from_csv["product_id"].head(50).tolist(), name
        assert other["order_id"].tolist() == from_csv["order_id"].head(50).tolist(), name
    assert read([tmp_path / "part.xlsx"], columns=RETAIL_COLUMNS)["source_row"].iloc[0] == 2
    assert read([tmp_path / "part.parquet"], columns=RETAIL_COLUMNS)["source_row"].iloc[0] == 1


def test_numeric_ids_in_parquet_stay_whole_numbers_and_become_text_at_the_edge(tmp_path: Path) -> None:
    frame = pd.DataFrame({"order_id": [1.0, 1.0, 2.0], "product_id": [9, 10, 123]})
    frame.to_parquet(tmp_path / "x.parquet")
    lines = read([tmp_path / "x.parquet"])
    assert lines["order_id"].tolist() == [1, 1, 2] and lines["product_id"].tolist() == [9, 10, 123]
    baskets = baskets_from_lines(lines)
    # Product ids as text, numbered in text order: "10" < "123" < "9".
    assert baskets.items.tolist() == ["10", "123", "9"]
    assert baskets.matrix.toarray().tolist() == [[True, False, True], [False, True, False]]


def test_float_ids_with_fractions_write_whole_numbers_as_integers(tmp_path: Path) -> None:
    # A float column with one fraction used to turn every id into text "2.0": never equal to "2" elsewhere.
    frame = pd.DataFrame({"order_id": [1.0, 1.0, 2.0, 2.0], "product_id": [2.0, 3.5, 2.0, None]})
    frame.to_parquet(tmp_path / "x.parquet")
    lines = read([tmp_path / "x.parquet"])
    assert lines["product_id"].tolist()[:3] == ["2", "3.5", "2"] and pd.isna(lines["product_id"].iloc[3])
    assert lines["order_id"].tolist() == [1, 1, 2, 2]


def test_parquet_list_ids_are_refused_and_byte_ids_read_as_text(tmp_path: Path) -> None:
    listed = pa.table({"order_id": [1, 2], "product_id": [[1, 2], [3]]})
    pq.write_table(listed, tmp_path / "listed.parquet")
    with pytest.raises(InputDataError, match=r"listed.parquet: column 'product_id' holds list<.*one value per row"):
        read([tmp_path / "listed.parquet"])
    raw = pa.table({"order_id": pa.array([b"0042", b"0042"]), "product_id": pa.array([b"00123", "é".encode()])})
    pq.write_table(raw, tmp_path / "bytes.parquet")
    lines = read([tmp_path / "bytes.parquet"])
    assert lines["order_id"].tolist() == ["0042", "0042"] and lines["product_id"].tolist() == ["00123", "é"]


def test_several_files_and_a_glob(export: Export, tmp_path: Path) -> None:
    one = read([export.path], columns=RETAIL_COLUMNS)
    copy = tmp_path / "export_copy.csv"
    copy.write_bytes(export.path.read_bytes())
    both = read([str(tmp_path / "export*.csv")], columns=RETAIL_COLUMNS)
    assert len(both) == 2 * len(one)
    assert both["source_file"].unique().tolist() == [str(export.path), str(copy)]


@settings(max_examples=40, deadline=None)
@given(
    files=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["7", "0042", " 0042", "C9", ""]), st.sampled_from(["A", "b", "B ", "00123", ""])
            ),
            min_size=1,
            max_size=6,
        ),
        min_size=2,
        max_size=4,
    ),
    parquet=st.booleans(),
)
def test_files_with_different_ids_join_as_one_column_of_ids(files: list[list[tuple[str, str]]], parquet: bool) -> None:
    # Each file's ids are read dictionary-encoded with its own categories: joined, every line keeps its
    # own id (missing stays missing) and the categories are the union.
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for number, rows in enumerate(files):
            frame = pd.DataFrame(rows, columns=["order_id", "product_id"]).replace("", None)
            path = Path(folder) / f"day-{number}.{'parquet' if parquet else 'csv'}"
            frame.to_parquet(path) if parquet else frame.to_csv(path, index=False)
            paths.append(path)
        lines = read(paths)
    for column, at in (("order_id", 0), ("product_id", 1)):
        expected = [row[at] or None for rows in files for row in rows]
        assert [None if pd.isna(v) else v for v in lines[column].tolist()] == expected
        assert isinstance(lines[column].dtype, pd.CategoricalDtype)
        categories = lines[column].cat.categories.tolist()
        assert sorted(categories) == sorted(set(v for v in expected if v is not None))
    assert lines["source_row"].tolist() == [r + (1 if parquet else 2) for rows in files for r in range(len(rows))]


def test_day_files_of_one_schema_read_as_one_table_and_a_bad_one_is_named(tmp_path: Path) -> None:
    # Parquet files of one schema are read together; each line keeps its file and its row in it.
    for day, ids in enumerate([[b"0042", b"0043"], [b"0044"], [b"0045", b"0046", b"0047"]]):
        table = pa.table({"order_id": pa.array(ids), "product_id": pa.array([b"A"] * len(ids))})
        pq.write_table(table, tmp_path / f"day-{day}.parquet")
    lines = read([str(tmp_path / "day-*.parquet")])
    assert lines["order_id"].tolist() == ["0042", "0043", "0044", "0045", "0046", "0047"]
    assert lines["source_file"].tolist() == [str(tmp_path / f"day-{d}.parquet") for d in (0, 0, 1, 2, 2, 2)]
    assert lines["source_row"].tolist() == [1, 2, 1, 1, 2, 3]
    # Text stored as bytes that are not UTF-8, in the second file: the error names that file.
    bad = pa.table({"order_id": pa.array([b"\xff\xfe"]), "product_id": pa.array([b"A"])})
    pq.write_table(bad, tmp_path / "day-1.parquet")
    with pytest.raises(InputDataError, match=r"day-1\.parquet: cannot"):
        read([str(tmp_path / "day-*.parquet")])


def test_na_like_ids_are_ids_not_missing(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("order_id,product_id\n1,NA\n1,null\n2,\n")
    lines = read([path])
    assert lines["product_id"].tolist()[:2] == ["NA", "null"] and pd.isna(lines["product_id"].iloc[2])


def test_missing_mandatory_column_lists_the_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("Invoice,Sku\n1,a\n")
    with pytest.raises(
        InputDataError, match=r"x.csv: mandatory column 'order_id' not found; found \['Invoice', 'Sku'\]"
    ):
        read([path])


def test_mapped_column_that_does_not_exist(export: Export) -> None:
    with pytest.raises(InputDataError, match=r"column 'Qty' \(input.columns.quantity\) is not in the file"):
        read([export.path], columns={**RETAIL_COLUMNS, "quantity": "Qty"})


def test_wrong_delimiter_is_diagnosed(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("order_id;product_id\n1;a\n")
    with pytest.raises(InputDataError, match=r"looks ';'-delimited; set input.delimiter = ';'"):
        read([path])


def test_wrong_encoding_is_diagnosed(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes("order_id,product_id\n1,Crème\n".encode("latin-1"))
    with pytest.raises(InputDataError, match=r"x.csv: cannot decode the file as utf-8.*latin-1"):
        read([path])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("absent.csv", None, r"absent.csv does not exist"),
        ("*.nothing", None, r"matches no file"),
        ("empty.csv", b"", r"empty.csv: the file is empty"),
        ("bad.csv.gz", b"\x1f\x8b\x08\x00garbage", r"bad.csv.gz: cannot read the file"),
        ("bad.parquet", b"PAR1 not really", r"bad.parquet: cannot read the file"),
        ("bad.xlsx", b"PK not a zip", r"bad.xlsx: cannot read the file"),
    ],
)
def test_unreadable_inputs_name_the_file(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(InputDataError, match=message):
        read([tmp_path / name])


def test_header_only_file_reads_as_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("order_id,product_id\n")
    assert read([path]).empty


def test_basket_lines_trim_each_item_not_the_line(tmp_path: Path) -> None:
    path = tmp_path / "groceries.csv"
    path.write_text("whole milk,cream cheese \ncream cheese,yogurt\n\nsoda\n")
    lines = read([path], format="baskets")
    # The empty line is an empty basket: a line with no product (rejected and counted), not silently skipped.
    assert lines["order_id"].tolist() == ["1", "1", "2", "2", "3", "4"]
    assert lines["product_id"].tolist()[:4] == ["whole milk", "cream cheese", "cream cheese", "yogurt"]
    assert pd.isna(lines["product_id"].iloc[4]) and lines["product_id"].iloc[5] == "soda"
    assert lines["source_row"].tolist() == [1, 1, 2, 2, 3, 4]


def test_basket_items_may_be_quoted_as_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "baskets.csv"
    path.write_text('whole milk,"cheese, low fat" , "say ""hi"""\n , ,\n"a,b\n')
    lines = read([path], format="baskets")
    assert lines["order_id"].tolist() == ["1", "1", "1", "2", "3", "3"]
    assert lines["product_id"].tolist()[:3] == ["whole milk", "cheese, low fat", 'say "hi"']
    assert pd.isna(lines["product_id"].iloc[3])  # delimiters and spaces only: an empty basket
    assert lines["product_id"].tolist()[4:] == ['"a', "b"]  # an unclosed quote is text


def test_basket_lines_end_only_at_line_breaks_and_lose_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "baskets.csv"
    path.write_bytes("\ufeffmilk,bread\r\nsoap\u2028bar,tea\rjam\x0cpot,tea\u0085\nrice\n".encode())
    lines = read([path], format="baskets")
    assert lines["order_id"].tolist() == ["1", "1", "2", "2", "3", "3", "4"]
    # Inner U+2028 and form feed stay inside their item; edge ones are trimmed like any space.
    assert lines["product_id"].tolist() == ["milk", "bread", "soap\u2028bar", "tea", "jam\x0cpot", "tea", "rice"]


@pytest.mark.skipif(not (SHARED / "fimi" / "retail.dat").exists(), reason="../shared/datasets not present")
def test_fimi_retail_dat_with_trailing_spaces() -> None:
    lines = read([SHARED / "fimi" / "retail.dat"], format="baskets", delimiter=" ")
    assert lines["order_id"].nunique() == 88162
    assert lines["product_id"].nunique() == 16470
    assert (lines["product_id"] != "").all()


@pytest.mark.skipif(not (SHARED / "groceries.csv").exists(), reason="../shared/datasets not present")
def test_groceries_item_names_with_trailing_space_are_one_item() -> None:
    lines = read([SHARED / "groceries.csv"], format="baskets")
    assert lines["product_id"].nunique() == 169 and len(lines) == 43367


def test_source_rows_are_file_lines_after_blank_lines_and_line_breaks_in_values(tmp_path: Path) -> None:
    path = tmp_path / "x.csv.gz"
    text = 'order_id,product_id,note\n1,A,plain\n\n2,B,"two\nlines"\n\n\n3,C,"stray quote\n4,D,x\n5,E,"\n6,F,end\n'
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    lines = read([path])
    assert lines["order_id"].tolist() == ["1", "2", "3", "6"]
    assert lines["source_row"].tolist() == [2, 4, 8, 11]
    # The stray quote swallowed the lines of orders 4 and 5; the note with a line break did not.
    assert lines["quote_error"].tolist() == [False, False, True, False]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.booleans(), st.sampled_from(["", "x", "a, b", 'say "hi"'])),
        min_size=1,
        max_size=12,
    )
)
def test_every_source_row_is_the_line_its_record_starts_on(records: list[tuple[int, bool, str]]) -> None:
    # Any mix of blank lines before a record and notes with line breaks: row n of a record is line n.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.csv"
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        buffer.write("order_id,product_id,note\n")
        for number, (blanks, broken, note) in enumerate(records):
            buffer.write("\n" * blanks)
            writer.writerow([f"O{number}", "P", f"{note}\nmore" if broken else note])
        path.write_text(buffer.getvalue())
        lines = read([path])
        file_lines = buffer.getvalue().split("\n")
        assert lines["order_id"].tolist() == [f"O{n}" for n in range(len(records))]
        for order, row in zip(lines["order_id"], lines["source_row"], strict=True):
            assert file_lines[row - 1].startswith(f"{order},")
        assert not lines["quote_error"].any()
