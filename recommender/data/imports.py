"""Member history imports: an uploaded CSV's bytes -> ratings on the dataset's scale, matched to movies.

Formats (told apart by the header, see :mod:`recommender.data.import_formats`): Letterboxd
``ratings.csv`` and ``diary.csv`` (half stars 0.5-5, no ids: matched by title and year), IMDb's
ratings export (``Const`` is the ``tt`` id, matched through links.csv; 1-10, halved), and a
MovieLens-style ``movieId,rating[,timestamp]``. Only UTF-8 is read (a BOM is fine): every export
above is UTF-8, and guessing another encoding would mangle titles silently.

A file that cannot be read at all raises ONE :class:`ImportRejected` with a :class:`RejectCode`
and returns nothing; the bot turns the code into words. A readable file gives an
:class:`ImportResult`: the matched rows, and each row that did not match with its original cells
and an :class:`UnmatchedReason`, which :func:`unmatched_csv` writes out for the member.

This module never imports serving: the title resolver is passed in.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd

from recommender.core.types import RatingScale
from recommender.data.csvsafe import csv_bytes, safe_csv_cell
from recommender.data.import_formats import (
    ImportFormat,
    Layout,
    detect,
    parse_date,
    parse_number,
    parse_year,
)

__all__ = [
    "ACCEPTED_ENCODINGS",
    "MAX_BYTES",
    "MAX_ROWS",
    "ImportCatalog",
    "ImportFormat",
    "ImportRejected",
    "ImportResult",
    "ImportedRating",
    "RejectCode",
    "Resolver",
    "UnmatchedReason",
    "UnmatchedRow",
    "parse_import",
    "safe_csv_cell",
    "unmatched_csv",
]

log = logging.getLogger(__name__)

#: Largest attachment read (Discord allows bigger; a 20,000-row Letterboxd diary is ~1.5 MB).
MAX_BYTES = 2 * 1024 * 1024
#: Most data rows read from one file.
MAX_ROWS = 20_000
ACCEPTED_ENCODINGS = ("UTF-8",)

#: ``resolve(title, year)`` -> a catalogue movie id, or None when no single movie matches.
Resolver = Callable[[str, int | None], int | None]

_SOURCE_SCALE = {  # the scale each format's ratings are written in
    ImportFormat.LETTERBOXD_RATINGS: RatingScale(0.5, 5.0, 0.5),
    ImportFormat.LETTERBOXD_DIARY: RatingScale(0.5, 5.0, 0.5),
    ImportFormat.IMDB: RatingScale(1.0, 10.0, 1.0),
    ImportFormat.MOVIELENS: RatingScale(0.5, 5.0, 0.5),
}


class RejectCode(StrEnum):
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    TOO_MANY_ROWS = "too_many_rows"
    BINARY = "binary"
    NOT_UTF8 = "not_utf8"
    HTML = "html"
    MALFORMED = "malformed"
    UNKNOWN_COLUMNS = "unknown_columns"
    NO_ROWS = "no_rows"


class ImportRejected(Exception):
    """The file as a whole cannot be imported; nothing was read from it.

    ``detail`` is for logs (a byte offset, the header found), never shown to a member as is.
    """

    def __init__(self, code: RejectCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code.value}: {detail}" if detail else code.value)


class UnmatchedReason(StrEnum):
    UNKNOWN_MOVIE = "unknown_movie"  # the id or title+year names no movie of the catalogue
    NO_TITLE = "no_title"
    BAD_ID = "bad_id"  # an IMDb Const that is not tt<digits>, a movieId that is not a number
    BAD_RATING = "bad_rating"  # not a number
    OUT_OF_RANGE = "out_of_range"  # a number, but not a rating of the file's scale


@dataclass(frozen=True, slots=True)
class ImportedRating:
    movie_id: int
    stars: float
    rated_at: float | None  # unix seconds; None when the file gives no usable date


@dataclass(frozen=True, slots=True)
class UnmatchedRow:
    line: int  # 1-based line of the file (the header is line 1)
    cells: tuple[str, ...]
    reason: UnmatchedReason


@dataclass(frozen=True)
class ImportResult:
    format: ImportFormat
    header: tuple[str, ...]
    matched: tuple[ImportedRating, ...]
    unmatched: tuple[UnmatchedRow, ...]
    #: the dataset's scale is coarser than the file's (ml-100k's whole stars): halves were rounded up
    rounded: bool
    rows: int  # data rows read
    skipped_unrated: int  # Letterboxd rows with no rating (a watched film, not a rating)
    duplicates: int  # rows for a movie that a later-dated row of the same file replaced
    matched_by_title: int  # of ``matched``: found by title and year rather than by id


@dataclass(frozen=True)
class ImportCatalog:
    """What matching needs to know about the catalogue."""

    scale: RatingScale
    movie_ids: Collection[int]
    #: IMDb's numeric id (``tt0114709`` -> 114709) -> movie id, from the dataset's links.csv
    imdb_ids: Mapping[int, int] = field(default_factory=dict)
    resolve: Resolver | None = None

    @classmethod
    def from_movies(
        cls, movies: pd.DataFrame, scale: RatingScale, resolve: Resolver | None = None
    ) -> ImportCatalog:
        """From a normal-form movies frame (:mod:`recommender.data.movielens`)."""
        ids = movies["movie_id"].astype("int64")
        imdb: dict[int, int] = {}
        if "imdb_id" in movies.columns:
            linked = movies["imdb_id"].notna().to_numpy()
            imdb_ids = movies["imdb_id"][linked].astype("int64")
            imdb = dict(zip(imdb_ids.tolist(), ids[linked].tolist(), strict=True))
        return cls(scale, frozenset(ids.tolist()), imdb, resolve)


def _decode(data: bytes, max_bytes: int) -> str:
    if len(data) > max_bytes:
        raise ImportRejected(RejectCode.TOO_LARGE, f"{len(data):,} bytes, the limit is {max_bytes:,}")
    if not data.strip():
        raise ImportRejected(RejectCode.EMPTY)
    if b"\x00" in data:
        raise ImportRejected(RejectCode.BINARY, f"a NUL byte at offset {data.index(0)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected(RejectCode.NOT_UTF8, f"{exc.reason} at byte {exc.start}") from None
    head = text.lstrip()[:512].casefold()
    if head.startswith(("<!doctype", "<html", "<?xml", "<head", "<body")) or "<html" in head:
        raise ImportRejected(RejectCode.HTML, "the file is a web page, not a CSV export")
    return text


def _to_scale(value: float, scale: RatingScale) -> tuple[float, bool]:
    """``value`` (0.5-5 in halves) on ``scale``: (stars, rounded?). Halves round up on whole scales."""
    if scale.is_valid(value):
        return value, False
    steps = math.floor((value - scale.minimum) / scale.step + 0.5 + 1e-9)
    return scale.clip(round(scale.minimum + steps * scale.step, 6)), True


class _Matcher:
    def __init__(self, layout: Layout, catalog: ImportCatalog) -> None:
        self.layout = layout
        self.catalog = catalog
        self.source = _SOURCE_SCALE[layout.format]
        self._resolved: dict[tuple[str, int | None], int | None] = {}
        self.by_title = 0

    @staticmethod
    def _cell(row: list[str], index: int | None) -> str:
        return row[index].strip() if index is not None and index < len(row) else ""

    def stars(self, row: list[str]) -> float | UnmatchedReason | None:
        """Stars on the 0.5-5 scale, a reason, or None for a blank cell (Letterboxd: not rated)."""
        if self.layout.rating >= len(row):  # a cut-off row, not a film logged without a rating
            return UnmatchedReason.BAD_RATING
        text = self._cell(row, self.layout.rating)
        if not text:
            return None
        value = parse_number(text)
        if value is None:
            return UnmatchedReason.BAD_RATING
        if not self.source.is_valid(value):
            return UnmatchedReason.OUT_OF_RANGE
        return value / 2 if self.layout.format is ImportFormat.IMDB else value

    def rated_at(self, row: list[str]) -> float | None:
        if self.layout.timestamp is not None:
            stamp = parse_number(self._cell(row, self.layout.timestamp))
            return stamp if stamp is not None and stamp >= 0 else None
        for index in self.layout.dates:
            if (day := parse_date(self._cell(row, index))) is not None:
                return day
        return None

    def _by_title(self, row: list[str]) -> int | UnmatchedReason:
        title = self._cell(row, self.layout.title)
        if not title:
            return UnmatchedReason.NO_TITLE
        if self.catalog.resolve is None:
            return UnmatchedReason.UNKNOWN_MOVIE
        key = (" ".join(title.split()), parse_year(self._cell(row, self.layout.year)))
        if key not in self._resolved:  # diaries repeat titles; resolving can be the slow part
            self._resolved[key] = self.catalog.resolve(*key)
        movie_id = self._resolved[key]
        if movie_id is None or movie_id not in self.catalog.movie_ids:
            return UnmatchedReason.UNKNOWN_MOVIE
        self.by_title += 1
        return movie_id

    def movie(self, row: list[str]) -> int | UnmatchedReason:
        fmt = self.layout.format
        if fmt is ImportFormat.MOVIELENS:
            text = self._cell(row, self.layout.movie_id)
            if not (text.isascii() and text.isdigit()):
                return UnmatchedReason.BAD_ID
            movie_id = int(text)
            return movie_id if movie_id in self.catalog.movie_ids else UnmatchedReason.UNKNOWN_MOVIE
        if fmt is ImportFormat.IMDB:
            const = self._cell(row, self.layout.imdb).casefold()
            digits = const.removeprefix("tt")
            if not (const.startswith("tt") and digits.isascii() and digits.isdigit()):
                return UnmatchedReason.BAD_ID
            movie_id = self.catalog.imdb_ids.get(int(digits))
            if movie_id is not None:
                return movie_id
            # Not in links.csv (or a dataset without links, like ml-100k): try the title and year.
        return self._by_title(row)


def _rows(text: str, max_rows: int) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = row
                continue
            rows.append((reader.line_num, row))
            if len(rows) > max_rows:
                raise ImportRejected(RejectCode.TOO_MANY_ROWS, f"more than {max_rows:,} rows")
    except csv.Error as exc:
        raise ImportRejected(RejectCode.MALFORMED, f"line {reader.line_num}: {exc}") from None
    if header is None:
        raise ImportRejected(RejectCode.EMPTY)
    return header, rows


def parse_import(
    data: bytes,
    catalog: ImportCatalog,
    *,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
) -> ImportResult:
    """Read an uploaded history file and match it to ``catalog``; raise :class:`ImportRejected`."""
    header, rows = _rows(_decode(data, max_bytes), max_rows)
    layout = detect(header)
    if layout is None:
        shown = ",".join(safe_csv_cell(h) for h in header)[:200]
        raise ImportRejected(RejectCode.UNKNOWN_COLUMNS, f"header {shown!r}")
    if not rows:
        raise ImportRejected(RejectCode.NO_ROWS, f"{layout.format.value} header only")
    matcher = _Matcher(layout, catalog)
    unmatched: list[UnmatchedRow] = []
    best: dict[int, tuple[float, int, ImportedRating, bool]] = {}  # movie -> (date, line, rating, by title)
    skipped = duplicates = 0
    rounded = False
    for line, row in rows:
        stars = matcher.stars(row)
        if stars is None:
            if layout.format in (ImportFormat.LETTERBOXD_RATINGS, ImportFormat.LETTERBOXD_DIARY):
                skipped += 1
                continue
            stars = UnmatchedReason.BAD_RATING
        if isinstance(stars, UnmatchedReason):
            unmatched.append(UnmatchedRow(line, tuple(row), stars))
            continue
        titles_before = matcher.by_title
        movie = matcher.movie(row)
        if isinstance(movie, UnmatchedReason):
            unmatched.append(UnmatchedRow(line, tuple(row), movie))
            continue
        on_scale, was_rounded = _to_scale(stars, catalog.scale)
        rounded |= was_rounded
        when = matcher.rated_at(row)
        rating = ImportedRating(movie, on_scale, when)
        # Rewatches log a film again: the latest date wins, then the later line (files are dated
        # oldest first, and undated rows keep their order).
        rank = (-math.inf if when is None else when, line)
        if movie in best:
            duplicates += 1
            if rank < best[movie][:2]:
                continue
        best[movie] = (*rank, rating, matcher.by_title > titles_before)
    matched = tuple(entry[2] for entry in sorted(best.values(), key=lambda e: e[1]))
    log.info(
        "import %s: %d rows, %d matched (%d by title), %d unmatched, %d unrated, %d duplicates",
        layout.format.value, len(rows), len(matched), matcher.by_title, len(unmatched), skipped, duplicates,
    )  # fmt: skip
    return ImportResult(
        format=layout.format,
        header=tuple(header),
        matched=matched,
        unmatched=tuple(unmatched),
        rounded=rounded,
        rows=len(rows),
        skipped_unrated=skipped,
        duplicates=duplicates,
        matched_by_title=sum(entry[3] for entry in best.values()),
    )


def unmatched_csv(result: ImportResult) -> bytes:
    """The unmatched rows as a CSV attachment: the file's own columns plus ``line`` and ``reason``."""
    width = len(result.header)
    rows = (
        [*row.cells[:width], *[""] * (width - len(row.cells)), row.line, row.reason.value]
        for row in result.unmatched
    )
    return csv_bytes([*result.header, "line", "reason"], rows)
