"""recommender/data/imports.py: each format, each bad file, the limits, rounding, duplicates, safe CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from recommender.core.types import HALF, WHOLE
from recommender.data.csvsafe import csv_bytes, safe_csv_cell
from recommender.data.imports import (
    MAX_BYTES,
    MAX_ROWS,
    ImportCatalog,
    ImportedRating,
    ImportFormat,
    ImportRejected,
    RejectCode,
    UnmatchedReason,
    parse_import,
    unmatched_csv,
)
from recommender.data.movielens import load_movielens

DAY = 86_400
# 2020-01-01T00:00:00Z and the days after it
JAN1 = 1_577_836_800

TITLES = {("The Thing", 1982): 2288, ("Heat", 1995): 6, ("Seven (a.k.a. Se7en)", 1995): 47, ("Heat", 2013): 9}
IMDB = {84787: 2288, 113277: 6}
calls: list[tuple[str, int | None]] = []


def resolve(title: str, year: int | None) -> int | None:
    calls.append((title, year))
    return TITLES.get((title, year))


def catalog(scale=HALF) -> ImportCatalog:  # type: ignore[no-untyped-def]
    return ImportCatalog(scale, frozenset({2288, 6, 47, 9, 1}), IMDB, resolve)


def rejected(data: bytes, **kwargs: int) -> ImportRejected:
    with pytest.raises(ImportRejected) as err:
        parse_import(data, catalog(), **kwargs)
    return err.value


# ------------------------------------------------------------------------------------------- formats

LETTERBOXD_RATINGS = (
    "Date,Name,Year,Letterboxd URI,Rating\n"
    "2020-01-01,The Thing,1982,https://boxd.it/29Ck,4.5\n"
    "2020-01-02,Heat,1995,https://boxd.it/2b0k,5\n"
    "2020-01-03,Heat,2013,https://boxd.it/5MmI,0.5\n"
    "2020-01-04,No Such Film,2001,https://boxd.it/zzzz,3\n"
)


def test_letterboxd_ratings_match_by_title_and_year() -> None:
    result = parse_import(LETTERBOXD_RATINGS.encode(), catalog())
    assert result.format is ImportFormat.LETTERBOXD_RATINGS
    assert result.matched == (
        ImportedRating(2288, 4.5, JAN1),
        ImportedRating(6, 5.0, JAN1 + DAY),
        ImportedRating(9, 0.5, JAN1 + 2 * DAY),  # Heat (2013), not Heat (1995): the year decides
    )
    assert [(u.line, u.cells[1], u.reason) for u in result.unmatched] == [
        (5, "No Such Film", UnmatchedReason.UNKNOWN_MOVIE)
    ]
    assert (result.rows, result.matched_by_title, result.rounded, result.duplicates) == (4, 3, False, 0)


def test_letterboxd_diary_skips_unrated_and_keeps_the_latest_rewatch() -> None:
    diary = (
        "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date\n"
        "2020-01-10,The Thing,1982,https://boxd.it/a,3,,,2020-01-09\n"
        "2020-01-05,Heat,1995,https://boxd.it/b,,,,2020-01-05\n"  # logged without a rating
        '2020-03-01,The Thing,1982,https://boxd.it/c,4.5,Yes,"horror, rewatch",2020-02-28\n'
        "2020-02-01,The Thing,1982,https://boxd.it/d,2,Yes,,2020-01-31\n"  # older watch, later line
    )
    result = parse_import(diary.encode(), catalog())
    assert result.format is ImportFormat.LETTERBOXD_DIARY
    # The watch of 2020-02-28 is the latest, whatever the line order.
    assert result.matched == (ImportedRating(2288, 4.5, JAN1 + 58 * DAY),)
    assert (result.skipped_unrated, result.duplicates, result.unmatched) == (1, 2, ())
    assert calls.count(("The Thing", 1982)) >= 1


IMDB_CLASSIC = (
    "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,"
    "Num Votes,Release Date,Directors\n"
    "tt0084787,9,2020-01-01,The Thing,https://www.imdb.com/title/tt0084787/,movie,8.2,109,1982,Horror,"
    "450000,1982-06-25,John Carpenter\n"
    "tt0113277,10,2020-01-02,Heat,https://www.imdb.com/title/tt0113277/,movie,8.3,170,1995,Crime,"
    "700000,1995-12-15,Michael Mann\n"
)
# A newer export: extra columns, in another order; matching must use the names.
IMDB_NEWER = (
    "Title,Original Title,Year,Your Rating,Const,URL,Title Type,Date Rated,Genres,Directors\n"
    "Se7en,Se7en,1995,7,tt0114369,https://www.imdb.com/title/tt0114369/,movie,2021-05-05,Crime,DF\n"
    "The Thing,The Thing,1982,4,tt0084787,https://www.imdb.com/title/tt0084787/,movie,2020-01-01,Horror,JC\n"
    "Heat,Heat,1995,11,tt0113277,u,movie,2020-01-01,Crime,MM\n"
    "Heat,Heat,1995,eight,tt0113277,u,movie,2020-01-01,Crime,MM\n"
    "Nope,Nope,2022,6,nm0000001,u,movie,2020-01-01,Horror,JP\n"
)


def test_imdb_export_matches_by_const_and_halves_the_rating() -> None:
    result = parse_import(IMDB_CLASSIC.encode(), catalog())
    assert result.format is ImportFormat.IMDB
    assert result.matched == (ImportedRating(2288, 4.5, JAN1), ImportedRating(6, 5.0, JAN1 + DAY))
    assert result.matched_by_title == 0


def test_imdb_newer_export_with_columns_in_another_order() -> None:
    calls.clear()
    result = parse_import(IMDB_NEWER.encode(), catalog())
    assert result.format is ImportFormat.IMDB
    # tt0114369 is not in links: the title "Se7en" + 1995 is tried and finds nothing here.
    assert result.matched == (ImportedRating(2288, 2.0, JAN1),)
    assert [(u.line, u.reason) for u in result.unmatched] == [
        (2, UnmatchedReason.UNKNOWN_MOVIE),
        (4, UnmatchedReason.OUT_OF_RANGE),
        (5, UnmatchedReason.BAD_RATING),
        (6, UnmatchedReason.BAD_ID),
    ]
    assert calls == [("Se7en", 1995)]


def test_movielens_style_csv_with_and_without_timestamps() -> None:
    result = parse_import(b"movieId,rating,timestamp\n2288,4.0,1000\n6,3.5,1001\n424242,4,1\n", catalog())
    assert result.format is ImportFormat.MOVIELENS
    assert result.matched == (ImportedRating(2288, 4.0, 1000.0), ImportedRating(6, 3.5, 1001.0))
    assert [(u.line, u.reason) for u in result.unmatched] == [(4, UnmatchedReason.UNKNOWN_MOVIE)]
    bare = parse_import(b"movieId,rating\r\n47,5\r\nx,3\r\n1,\r\n1,0.25\r\n", catalog())
    assert bare.matched == (ImportedRating(47, 5.0, None),)
    assert [u.reason for u in bare.unmatched] == [
        UnmatchedReason.BAD_ID,
        UnmatchedReason.BAD_RATING,  # a blank rating is not "unrated" outside Letterboxd
        UnmatchedReason.OUT_OF_RANGE,
    ]


def test_a_utf8_bom_and_header_case_are_accepted() -> None:
    data = "\ufeffdate,NAME,year,Letterboxd URI, Rating \n2020-01-01,The Thing,1982,u,4\n".encode()
    assert parse_import(data, catalog()).matched == (ImportedRating(2288, 4.0, JAN1),)


def test_without_a_resolver_title_rows_are_unknown() -> None:
    result = parse_import(LETTERBOXD_RATINGS.encode(), ImportCatalog(HALF, frozenset({2288})))
    assert result.matched == ()
    assert {u.reason for u in result.unmatched} == {UnmatchedReason.UNKNOWN_MOVIE}


# ------------------------------------------------------------------------------------------ rounding


def test_whole_star_datasets_round_halves_up_and_say_so() -> None:
    result = parse_import(LETTERBOXD_RATINGS.encode(), catalog(WHOLE))
    assert [r.stars for r in result.matched] == [5.0, 5.0, 1.0]  # 4.5 -> 5, 0.5 -> 1 (the minimum)
    assert result.rounded is True
    imdb = parse_import(IMDB_CLASSIC.encode(), catalog(WHOLE))  # 9 -> 4.5 -> 5
    assert ([r.stars for r in imdb.matched], imdb.rounded) == ([5.0, 5.0], True)
    whole = parse_import(b"movieId,rating\n2288,4\n6,1\n", catalog(WHOLE))
    assert ([r.stars for r in whole.matched], whole.rounded) == ([4.0, 1.0], False)


# ----------------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", RejectCode.EMPTY),
        (b"  \r\n\n ", RejectCode.EMPTY),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", RejectCode.BINARY),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", RejectCode.BINARY),  # a zip
        ("Date,Name,Year,Letterboxd URI,Rating\n2,Amélie,2001,u,4\n".encode("latin-1"), RejectCode.NOT_UTF8),
        ("Const,Your Rating\ntt1,4\n".encode("utf-16"), RejectCode.BINARY),  # UTF-16 has NUL bytes
        (b"<!DOCTYPE html>\n<html><head><title>Letterboxd</title></head><body>,,</body>", RejectCode.HTML),
        (b"\n\n  <html lang=en><body>Sign in</body></html>", RejectCode.HTML),
        (b"Title,Director,Stars\nHeat,Mann,5\n", RejectCode.UNKNOWN_COLUMNS),
        (b"Date,Name,Year,Letterboxd URI\n2020-01-01,Heat,1995,u\n", RejectCode.UNKNOWN_COLUMNS),  # watched
        (b"Date,Name,Year,Letterboxd URI,Rating\n", RejectCode.NO_ROWS),
    ],
)  # fmt: skip
def test_bad_files_raise_one_error(data: bytes, code: RejectCode) -> None:
    assert rejected(data).code is code


def test_malformed_csv_is_rejected() -> None:
    huge = b"movieId,rating\n1," + b"9" * 200_000 + b"\n"  # over the csv module's field limit
    assert rejected(huge).code is RejectCode.MALFORMED


def test_the_not_utf8_detail_names_the_byte() -> None:
    error = rejected("movieId,rating\n1,4 # é\n".encode("cp1252"))
    assert (error.code, error.detail) == (RejectCode.NOT_UTF8, "invalid continuation byte at byte 21")


# -------------------------------------------------------------------------------------------- limits


def test_size_limit_is_checked_before_anything_else() -> None:
    assert MAX_BYTES == 2 * 1024 * 1024
    over = b"movieId,rating\n" + b"1,4\n" * (MAX_BYTES // 4)
    assert len(over) > MAX_BYTES
    assert rejected(over).code is RejectCode.TOO_LARGE
    assert rejected(b"\x00" * 50, max_bytes=10).code is RejectCode.TOO_LARGE


def test_row_limit() -> None:
    assert MAX_ROWS == 20_000
    at_limit = b"movieId,rating\n" + b"1,4\n" * MAX_ROWS
    result = parse_import(at_limit, catalog())
    assert (result.rows, result.duplicates, len(result.matched)) == (MAX_ROWS, MAX_ROWS - 1, 1)
    over = at_limit + b"6,4\n"
    error = rejected(over)
    assert (error.code, error.detail) == (RejectCode.TOO_MANY_ROWS, "more than 20,000 rows")
    assert rejected(b"movieId,rating\n1,4\n6,4\n47,4\n", max_rows=2).code is RejectCode.TOO_MANY_ROWS


# ------------------------------------------------------------------------------ unmatched rows as CSV


def test_unmatched_rows_come_back_as_csv_with_formulas_neutralised() -> None:
    data = (
        "Date,Name,Year,Letterboxd URI,Rating\n"
        '2020-01-01,"=HYPERLINK(""http://x"",""click"")",2001,u,4\n'
        "2020-01-01,+cmd|' /C calc'!A0,2001,u,4\n"
        "2020-01-01,-2+3,2001,u,4\n"
        "2020-01-01,@SUM(A1),2001,u,4\n"
        "2020-01-01,Heat,1995,u,11\n"
        "2020-01-01,Short Row\n"
    )
    result = parse_import(data.encode(), catalog())
    assert result.matched == ()
    rows = list(csv.reader(io.StringIO(unmatched_csv(result).decode("utf-8"), newline="")))
    assert rows[0] == ["Date", "Name", "Year", "Letterboxd URI", "Rating", "line", "reason"]
    assert [r[1] for r in rows[1:]] == [
        '\'=HYPERLINK("http://x","click")',
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1)",
        "Heat",
        "Short Row",
    ]
    assert [r[-2:] for r in rows[1:]] == [
        ["2", "unknown_movie"],
        ["3", "unknown_movie"],
        ["4", "unknown_movie"],
        ["5", "unknown_movie"],
        ["6", "out_of_range"],
        ["7", "bad_rating"],  # no Rating cell at all: not a Letterboxd "unrated" blank, so reported
    ]
    assert all(len(r) == 7 for r in rows)


def test_safe_csv_cell() -> None:
    assert [safe_csv_cell(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "\r=x", "Heat", "", None, 4.5)] == [
        "'=1+1", "'+1", "'-1", "'@x", "'\tx", "'\r=x", "Heat", "", "", "4.5",
    ]  # fmt: skip
    assert csv_bytes(["a", "=b"], [["=c", 'd"e']]) == b'a,\'=b\r\n\'=c,"d""e"\r\n'


# ------------------------------------------------------------------------ against the real catalogue


def test_catalog_from_the_real_movies_frame(movielens_dir: Path, tmp_path: Path) -> None:
    data = load_movielens("ml-latest-small", cache_dir=tmp_path, local_path=movielens_dir / "ml-latest-small")
    cat = ImportCatalog.from_movies(data.movies, data.scale)
    assert (len(cat.movie_ids), len(cat.imdb_ids), cat.imdb_ids[84787]) == (9_742, 9_742, 2288)
    result = parse_import(IMDB_CLASSIC.encode(), cat)
    assert [r.movie_id for r in result.matched] == [2288, 6]  # The Thing (1982), Heat (1995)
    ml100k = load_movielens("ml-100k", cache_dir=tmp_path, local_path=movielens_dir / "ml-100k")
    assert ImportCatalog.from_movies(ml100k.movies, ml100k.scale).imdb_ids == {}
