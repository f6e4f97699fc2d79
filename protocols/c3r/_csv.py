"""CSV as C3R reads and writes it (univocity defaults): trimmed unquoted values, blanks are NULL.

Reading: `,` separates, `"` quotes (`""` inside quotes is one quote), lines end in \\n, \\r\\n
or \\r; whitespace (characters up to U+0020) around unquoted values and outside quotes is
dropped, whitespace inside quotes is kept; a blank field, quoted or not, is NULL; empty lines
are skipped. Writing: NULL is an empty field, an empty string is `""`, and a value is quoted
when it holds a separator, a quote, a line break, a space, a tab or a form feed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

from .._errors import InputError

MAX_COLUMNS = 10000
_WS = r"[\x00-\x09\x0b\x0c\x0e-\x20]"
_FIELD = re.compile(
    rf'{_WS}*"((?:[^"]|"")*)"{_WS}*(?=,|\r|\n|\Z)|([^,\r\n]*)',
)
_SEP = re.compile(r",|\r\n|\n|\r|\Z")
_NEEDS_QUOTES = re.compile(r'[,"\r\n \t\f]')


_WS_CHARS = "".join(map(chr, range(0x21)))
_EOL = re.compile(r"\r\n|\n|\r")


def _strip(text: str) -> str:
    return text.strip(_WS_CHARS)


def parse_csv(text: str, *, file: str) -> list[list[str | None]]:
    """Split CSV text into records of str-or-None fields, C3R style (see module docstring)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    records: list[list[str | None]] = []
    pos, end, line = 0, len(text), 1
    while pos < end:
        eol = _EOL.search(text, pos)
        stop = eol.start() if eol else end
        if text.find('"', pos, stop) < 0:  # fast path: a line without quotes is one record
            fields: list[str | None] = [f.strip(_WS_CHARS) or None
                                        for f in text[pos:stop].split(",")]
            if len(fields) > MAX_COLUMNS:
                raise InputError(f"more than {MAX_COLUMNS} columns", file=file, row=line)
            if fields != [None]:
                records.append(fields)
            pos, line = (eol.end() if eol else end), line + 1
            continue
        pos, line = _quoted_record(text, pos, line, file, records)
    return records


def parse_csv_reference(text: str, *, file: str) -> list[list[str | None]]:
    """`parse_csv` without its fast path (every record through the quote-aware parser)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    records: list[list[str | None]] = []
    pos, end, line = 0, len(text), 1
    while pos < end:
        start, count = pos, len(records)
        pos, line = _quoted_record(text, pos, line, file, records)
        if records[count:] == [[None]] and text.find('"', start, pos) < 0:
            records.pop()  # an empty or blank line
    return records


def _quoted_record(text: str, pos: int, line: int, file: str,
                   records: list[list[str | None]]) -> tuple[int, int]:
    """Parse one record that holds quotes (it may span lines); returns the new position."""
    record: list[str | None] = []
    while True:
        m = _FIELD.match(text, pos)
        assert m is not None  # the unquoted branch matches the empty string
        quoted, plain = m.group(1), m.group(2)
        if quoted is not None:
            value: str | None = quoted.replace('""', '"') or None
            line += quoted.count("\n") + quoted.count("\r") - quoted.count("\r\n")
        else:
            assert plain is not None
            value = _strip(plain) or None
            if value is not None and value.startswith('"'):
                raise InputError("unterminated or malformed quoted value", file=file, row=line)
        record.append(value)
        if len(record) > MAX_COLUMNS:
            raise InputError(f"more than {MAX_COLUMNS} columns", file=file, row=line)
        s = _SEP.match(text, m.end())
        if s is None:
            raise InputError("unexpected text after a quoted value", file=file, row=line)
        if s.group(0) != ",":
            records.append(record)
            return s.end(), line + 1
        pos = s.end()


def read_csv(path: str | os.PathLike[str], *, header_row: bool
             ) -> tuple[list[str] | None, list[list[str | None]]]:
    """Read a CSV file: (raw header strings or None, data records), checking column counts."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8", errors="strict", newline="") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise InputError("file not found", file=name) from None
    except UnicodeDecodeError as exc:
        row = text_row(name, exc.start)
        raise InputError("not valid UTF-8", file=name, row=row) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=name) from None
    records = parse_csv(text, file=name)
    if not records:
        raise InputError("empty file", file=name)
    headers: list[str] | None = None
    if header_row:
        first = records.pop(0)
        headers = ["" if h is None else h for h in first]
    width = len(headers) if headers is not None else len(records[0]) if records else 0
    for i, rec in enumerate(records):
        if len(rec) != width:
            row = i + (2 if header_row else 1)
            raise InputError(f"expected {width} columns, found {len(rec)}", file=name, row=row)
    return headers, records


def text_row(path: str, byte_offset: int) -> int:
    """The 1-based line number holding `byte_offset` of the file at `path`."""
    with open(path, "rb") as fh:
        return fh.read(byte_offset).count(b"\n") + 1


def _cell(value: str | None) -> str:
    if value is None:
        return ""
    if value == "":
        return '""'
    if _NEEDS_QUOTES.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def format_csv(headers: Sequence[str], rows: Iterable[Sequence[str | None]]) -> str:
    """CSV text with a header row, written the way C3R writes it (see module docstring)."""
    out = [",".join(_cell(h) for h in headers)]
    out.extend(",".join(_cell(v) for v in row) for row in rows)
    return "\n".join(out) + "\n"
