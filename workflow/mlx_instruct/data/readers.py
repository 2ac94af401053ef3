"""Read instruction records from the study's data sources into one canonical shape.

Sources are URIs: `generator://verifiable` (the seeded verifiable-task generator), local
`json` (an array, e.g. Alpaca), `jsonl`, `csv`/`tsv` and `parquet` files (`file://path` or a
plain path), `resource://<dataset>` (a vendored file of resources/data, sha256-checked, e.g.
`resource://alpaca`) and `hf://org/dataset[:split]`. Every defect in the data is a `DataError`
that names the file, the line (or record index) and the field, never a library traceback:
a bad row in a 50k-line file must be findable from the message alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mlx_instruct.data.common import DataError, content_id, make_record, text_key
from mlx_instruct.data.generator_source import generator_records
from mlx_instruct.resources import ResourceError, data_file

FORMATS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FIELD_NAMES = ("instruction", "input", "output", "id")
# Column-name presets tried in order when a source gives no `fields:` mapping.
PRESETS: dict[str, dict[str, str]] = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output", "id": "id"},
    "dolly": {"instruction": "instruction", "input": "context", "output": "response", "id": "id"},
}


class DataWarning(UserWarning):
    """A source was skipped or adjusted (e.g. an optional file that is absent)."""


class _EmptyField(DataError):
    """A present but blank required field (skippable, unlike a missing one)."""


def parse_uri(uri: str) -> tuple[str, str, str | None]:
    """Split a source URI into (scheme, target, split); a plain path is scheme `file`."""
    if not isinstance(uri, str) or not uri.strip():
        raise DataError(f"data source uri must be a non-empty string, got {uri!r}")
    if "://" in uri:
        scheme, _, target = uri.partition("://")
        if scheme == "generator":
            return "generator", target, None
        if scheme == "hf":
            name, _, split = target.partition(":")
            if name.count("/") > 1 or not name.strip("/"):
                raise DataError(f"{uri}: expected hf://org/dataset[:split]")
            return "hf", name, split or None
        if scheme == "file":
            if not target:
                raise DataError(f"{uri}: file:// needs a path")
            return "file", target, None
        if scheme == "resource":
            return "resource", target, None
        raise DataError(
            f"{uri}: unknown data source scheme {scheme!r}; use generator://, hf://, "
            "resource://, file:// or a plain path to a json/jsonl/csv/parquet file"
        )
    return "file", uri, None


def read_source(
    spec: dict[str, Any], seed: int = 0, base_dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """All records of one `data.sources` entry (an empty list only for a skipped optional)."""
    return read_source_report(spec, seed, base_dir)[0]


def read_source_report(
    spec: dict[str, Any],
    seed: int = 0,
    base_dir: str | Path | None = None,
    empty: str = "skip",
    fits: Callable[[Any], bool] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Records of one source plus a report (counts, skipped rows with their locations).

    `empty`: a row whose instruction or output is present but blank is skipped with a
    warning ("skip", the default: real crowd-sourced sets have a few, e.g. 2 of Alpaca's
    first 5,000) or is an error ("error"). A missing, null or mistyped field is always an
    error: it usually means a wrong field mapping, which skipping would hide.
    `fits(task)`: a generator source draws only tasks it accepts (the length budget).
    """
    uri = spec["uri"]
    skipped: list[str] = []
    report: dict[str, Any] = {"uri": uri, "skipped_empty": 0, "skipped_examples": []}
    scheme, target, split = parse_uri(uri)
    n = spec.get("n")
    if scheme == "generator":
        records, budget = generator_records(uri, target, n, seed, spec.get("families"), fits)
        report = {**report, "n_read": len(records), "n": len(records)}
        return records, {**report, "length_budget": budget} if fits is not None else report
    split = spec.get("split") or split
    records = _read_rows(spec, scheme, target, split, base_dir, empty, skipped)
    if records is None:  # an optional file that is not there
        path = _local_path(target, base_dir)
        return [], {**report, "n_read": 0, "n": 0, "missing_optional": str(path)}
    if skipped:
        more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
        warnings.warn(
            f"skipped {len(skipped)} blank rows: {'; '.join(skipped[:3])}{more}",
            DataWarning,
            stacklevel=2,
        )
    n_read = len(records)
    records = _subsample(records, n, seed, uri)
    report.update(
        n_read=n_read, n=len(records), skipped_empty=len(skipped), skipped_examples=skipped[:10]
    )
    return records, report


def _local_path(target: str, base_dir: str | Path | None) -> Path:
    path = Path(target).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def _read_rows(
    spec: dict[str, Any],
    scheme: str,
    target: str,
    split: str | None,
    base_dir: str | Path | None,
    empty: str,
    skipped: list[str],
) -> list[dict[str, Any]] | None:
    """The records of a hf://, resource:// or file source (None: optional and missing)."""
    uri = spec["uri"]
    if scheme == "hf":
        rows = _hf_rows(uri, target, split or "train")
        prefix = target.split("/")[-1]
        return records_from_rows(rows, uri, uri, spec.get("fields"), prefix, empty, skipped)
    if scheme == "resource":
        try:
            path = data_file(target)
        except ResourceError as error:
            raise DataError(f"{uri}: {error}") from None
    else:
        path = _local_path(target, base_dir)
        if not path.exists():
            if spec.get("optional"):
                warnings.warn(
                    f"{path}: data file not found; skipped (optional)", DataWarning, stacklevel=3
                )
                return None
            raise DataError(f"{path}: data file not found (source {uri!r})")
    return read_file(path, fields=spec.get("fields"), source=uri, empty=empty, skipped=skipped)


def read_file(
    path: str | Path,
    fields: dict[str, str] | None = None,
    source: str | None = None,
    empty: str = "error",
    skipped: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Read one local json/jsonl/csv/tsv/parquet file of instruction records."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unknown file type {path.suffix!r}; expected one of {sorted(FORMATS)}"
        )
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    rows = _parquet_rows(path) if fmt == "parquet" else _text_rows(path, fmt)
    return records_from_rows(
        rows, str(path), source or str(path), fields, path.stem, empty, skipped
    )


def records_from_rows(
    rows: Iterable[tuple[str, Any]],
    where: str,
    source: str,
    fields: dict[str, str] | None,
    id_prefix: str,
    empty: str = "error",
    skipped: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Map raw rows (location, object) to records, validating every field.

    Rows with a blank instruction/output raise (`empty="error"`) or are skipped, their
    locations appended to `skipped` (`empty="skip"`).
    """
    if empty not in ("error", "skip"):
        raise DataError(f"empty must be 'error' or 'skip', got {empty!r}")
    records: list[dict[str, Any]] = []
    mapping: dict[str, str] | None = None
    seen_ids: dict[str, tuple[str, str]] = {}
    for loc, row in rows:
        if not isinstance(row, dict):
            raise DataError(
                f"{where}{loc}: expected an object with named fields, got {type(row).__name__}"
            )
        if mapping is None:
            mapping = _resolve_mapping(row, fields, f"{where}{loc}")
        try:
            record = _to_record(row, mapping, explicit=set(fields or {}), where=f"{where}{loc}")
        except _EmptyField as blank:
            if empty == "error":
                raise DataError(str(blank)) from None
            if skipped is not None:
                skipped.append(str(blank))
            continue
        record["source"] = source
        if not record["id"]:
            record["id"] = content_id(id_prefix, record)
        else:
            key = text_key(record)
            first = seen_ids.get(record["id"])
            if first is not None and first[1] != key:
                raise DataError(
                    f"{where}{loc}: field 'id': duplicate id {record['id']!r} (first at "
                    f"{where}{first[0]}) with different content"
                )
            seen_ids.setdefault(record["id"], (loc, key))
        records.append(record)
    if not records:
        what = f" ({len(skipped)} rows skipped as blank)" if skipped else ""
        raise DataError(f"{where}: the dataset is empty (no usable records{what})")
    return records


# ---------------------------------------------------------------- row sources


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); re-encode the file as UTF-8"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text_rows(path: Path, fmt: str) -> Iterator[tuple[str, Any]]:
    text = _decode(path)
    if fmt == "jsonl":
        return _jsonl_rows(path, text)
    if fmt == "json":
        return _json_rows(path, text)
    return _csv_rows(path, text, "\t" if fmt == "tsv" else ",")


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{path}:{number}: malformed JSON ({error.msg}, column {error.colno})"
            ) from None
        except (ValueError, RecursionError) as error:
            raise DataError(f"{path}:{number}: malformed JSON ({type(error).__name__})") from None
        yield f":{number}", obj


def _json_rows(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}:{error.lineno}: malformed JSON ({error.msg}, column {error.colno}); "
            "a .json source must be one array of records (use .jsonl for JSON lines)"
        ) from None
    except (ValueError, RecursionError) as error:
        raise DataError(f"{path}: malformed JSON ({type(error).__name__})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of records, got a {type(data).__name__}")
    return ((f" (record {index})", row) for index, row in enumerate(data))


def _csv_rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        if len(set(header)) != len(header) or any(not name.strip() for name in header):
            raise DataError(f"{path}:1: header has empty or repeated column names: {header}")
        start = reader.line_num + 1
        for row in reader:
            if row:
                if len(row) != len(header):
                    raise DataError(
                        f"{path}:{start}: row has {len(row)} fields but the header has {len(header)}"
                    )
                yield f":{start}", dict(zip(header, row, strict=True))
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    except Exception as error:  # pyarrow raises many types for a corrupt file
        first = str(error).splitlines()[0] if str(error) else ""
        raise DataError(
            f"{path}: not a readable parquet file ({type(error).__name__}: {first})"
        ) from None
    return ((f" (record {index})", row) for index, row in enumerate(rows))


def _hf_rows(uri: str, name: str, split: str) -> Iterator[tuple[str, Any]]:
    try:
        import datasets

        dataset = datasets.load_dataset(name, split=split)
    except Exception as error:  # offline, unknown dataset, bad split: all one clear line
        first = (str(error).splitlines() or [""])[0][:300]
        raise DataError(
            f"{uri}: could not load Hugging Face dataset {name!r} split {split!r} "
            f"({type(error).__name__}: {first}); is the Hub reachable?"
        ) from None
    return ((f" (record {index})", row) for index, row in enumerate(dataset))


# ---------------------------------------------------------------- fields


def _resolve_mapping(
    row: dict[str, Any], fields: dict[str, str] | None, where: str
) -> dict[str, str]:
    if fields:
        unknown = set(fields) - set(FIELD_NAMES)
        if unknown:
            raise DataError(f"{where}: unknown keys in fields mapping: {sorted(unknown)}")
        return {**PRESETS["alpaca"], **fields}
    for preset in PRESETS.values():
        if preset["instruction"] in row and preset["output"] in row:
            return dict(preset)
    raise DataError(
        f"{where}: cannot tell which fields hold the instruction and output (keys: "
        f"{sorted(map(str, row))[:12]}); give the source a `fields:` mapping"
    )


def _text_field(
    row: dict[str, Any], column: str, field: str, where: str, required: bool, numbers: bool = False
) -> str:
    """A text field; a number is an error (a JSON `"output": 42` is a wrong field mapping or
    a broken export far more often than intended text) except where `numbers` allows it
    (ids)."""
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if required:
            raise DataError(f"{where}: field {field!r} (column {column!r}) is missing")
        return ""
    allowed = str | int | float if numbers else str
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise DataError(
            f"{where}: field {field!r} (column {column!r}) must be text, got "
            f"{type(value).__name__} ({value!r:.40})"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"{where}: field {field!r} (column {column!r}) is not a finite number")
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    if required and not text:
        raise _EmptyField(f"{where}: field {field!r} (column {column!r}) is empty")
    return text


def _to_record(
    row: dict[str, Any], mapping: dict[str, str], explicit: set[str], where: str
) -> dict[str, Any]:
    if None in row:
        raise DataError(f"{where}: row has more fields than the header")
    instruction = _text_field(row, mapping["instruction"], "instruction", where, required=True)
    output = _text_field(row, mapping["output"], "output", where, required=True)
    if "input" in explicit and mapping["input"] not in row:
        raise DataError(f"{where}: field 'input' (column {mapping['input']!r}) is missing")
    context = _text_field(row, mapping["input"], "input", where, required=False)
    record_id = ""
    if "id" in explicit and mapping["id"] not in row:
        raise DataError(f"{where}: field 'id' (column {mapping['id']!r}) is missing")
    if mapping["id"] in row:  # a blank id falls back to a content-derived one
        record_id = _text_field(row, mapping["id"], "id", where, required=False, numbers=True)
    return make_record(
        id=record_id, source="", instruction=instruction, input=context, output=output
    )


# ---------------------------------------------------------------- sampling


def _subsample(
    records: list[dict[str, Any]], n: int | None, seed: int, uri: str
) -> list[dict[str, Any]]:
    """A seeded sample of `n` records, in file order (all of them when n is larger)."""
    if not n or n >= len(records):
        if n and n > len(records):
            warnings.warn(
                f"{uri}: asked for n={n} but only {len(records)} records exist",
                DataWarning,
                stacklevel=3,
            )
        return records
    keep = sorted(random.Random(seed).sample(range(len(records)), n))
    return [records[i] for i in keep]
