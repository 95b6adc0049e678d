"""Which movie of a new MovieLens dataset each movie of the old catalogue is: the dataset switch's map.

The "latest" family of releases (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m) share
MovieLens ids, so an id carries over, but only when the two datasets agree on what it names: a
sample of shared ids is checked by title and year first, and every shared id whose title or year
disagrees is not carried by id. Other movies are matched through their IMDb id (``links.csv``;
ml-100k has none), then by title and year (a year off by one is allowed when the title is unique
in the new dataset). Pure: movies in, a :class:`Remap` out.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from recommender.core.types import Movie

__all__ = [
    "LATEST_FAMILY",
    "Match",
    "MatchKind",
    "Remap",
    "build_remap",
    "segment_keys",
    "shares_ids",
    "title_keys",
]

#: MovieLens releases whose movie ids name the same films.
LATEST_FAMILY = frozenset({"ml-latest-small", "ml-latest", "ml-20m", "ml-25m", "ml-32m"})
#: How many shared ids are compared before ids are trusted, and the share that must agree.
SAMPLE_SIZE = 500
MIN_AGREEMENT = 0.9

_ARTICLE = re.compile(r"^(the|a|an|les|la|le|l|il|el|los|las|der|die|das|un|une|una) ")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_ALIAS = re.compile(r"\s*\((?:a\.k\.a\.\s*)?([^()]*)\)")
_SEGMENT = re.compile(r":| - ")
# "Stephen King's The Langoliers" is "The Langoliers" in another release
# (a name, not "The Rich Man's Wife"; and at least two words left)
_POSSESSIVE = re.compile(r"^(?!(?:The|A|An) )(?:[A-Z][\w.]* ){0,3}[A-Z][\w.]*'s (?=\S+ \S)")


class MatchKind(StrEnum):
    """How an old movie was found in the new dataset."""

    ID = "id"  # the same MovieLens id, with agreeing title and year
    IMDB = "imdb"  # the same IMDb id
    TITLE_YEAR = "title_year"  # the same title, same year (or off by one for a unique title)


@dataclass(frozen=True, slots=True)
class Match:
    new_id: int
    kind: MatchKind


@dataclass(frozen=True)
class Remap:
    """old movie id -> its match in the new dataset; ``unmapped``: old movies with none."""

    old_dataset: str
    new_dataset: str
    matches: dict[int, Match]
    unmapped: tuple[Movie, ...]
    #: whether the sample check let ids carry over (False: ids were never used)
    ids_trusted: bool = False
    #: of the sampled shared ids, how many named the same film
    sample: tuple[int, int] = (0, 0)
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        counts = {kind.value: 0 for kind in MatchKind}
        for match in self.matches.values():
            counts[match.kind.value] += 1
        counts["unmapped"] = len(self.unmapped)
        object.__setattr__(self, "counts", counts)

    def new_id(self, old_id: int) -> int | None:
        match = self.matches.get(int(old_id))
        return None if match is None else match.new_id

    def mapping(self) -> dict[int, int]:
        return {old: m.new_id for old, m in self.matches.items()}


def shares_ids(old_dataset: str, new_dataset: str) -> bool:
    return old_dataset in LATEST_FAMILY and new_dataset in LATEST_FAMILY


def _key(text: str) -> str:
    """Folded for comparison: accents, case, punctuation and a leading article don't count."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold().replace("&", " and ")
    text = _NOT_WORD.sub(" ", text).strip()
    return _ARTICLE.sub("", text).strip()


def title_keys(title: str) -> list[str]:
    """The folded full title, then its main title and each alias in parentheses (best first)."""
    keys = [_key(title)]
    main = _ALIAS.sub("", title).strip()
    keys.append(_key(main))
    keys.append(_key(_POSSESSIVE.sub("", main)))
    keys.extend(_key(alias) for alias in _ALIAS.findall(title))
    seen: list[str] = []
    for key in keys:
        if key and key not in seen:
            seen.append(key)
    return seen


def segment_keys(title: str) -> list[str]:
    """Keys of the parts of a main title around ``:`` or `` - `` ("Star Wars: Episode IV - A New
    Hope" holds "Star Wars" and "A New Hope"), for a title one release spells longer than another."""
    parts = _SEGMENT.split(_ALIAS.sub("", title))
    if len(parts) < 2:
        return []
    return [k for k in (_key(p) for p in parts) if k]


def _agree(old: Movie, new: Movie) -> bool:
    """Same film: a shared title key, and years equal or one apart (or unknown on one side)."""
    if old.year is not None and new.year is not None and abs(old.year - new.year) > 1:
        return False
    return bool(set(title_keys(old.title)) & set(title_keys(new.title)))


class _TitleIndex:
    def __init__(self, movies: Iterable[Movie]) -> None:
        self.by_key_year: dict[tuple[str, int | None], set[int]] = defaultdict(set)
        self.by_key: dict[str, set[int]] = defaultdict(set)
        self.by_segment_year: dict[tuple[str, int | None], set[int]] = defaultdict(set)
        self.year: dict[int, int | None] = {}
        for movie in movies:
            self.year[movie.movie_id] = movie.year
            keys = title_keys(movie.title)
            for key in keys:
                self.by_key_year[(key, movie.year)].add(movie.movie_id)
                self.by_key[key].add(movie.movie_id)
            for key in [*keys, *segment_keys(movie.title)]:
                self.by_segment_year[(key, movie.year)].add(movie.movie_id)

    def find(self, movie: Movie) -> int | None:
        keys = title_keys(movie.title)
        for key in keys:  # the same year first, full title before main title and aliases
            hits = self.by_key_year.get((key, movie.year), set())
            if len(hits) == 1:
                return next(iter(hits))
        if movie.year is None:
            return None
        # one side spells the title longer ("Star Wars" / "Star Wars: Episode IV - A New Hope"):
        # a part of a title, in the same year, naming one movie only
        for key in [*keys, *segment_keys(movie.title)]:
            hits = self.by_segment_year.get((key, movie.year), set())
            if len(hits) == 1:
                return next(iter(hits))
        for key in keys:
            everywhere = self.by_key.get(key, set())
            # off by one only for a title the new dataset holds once: a remake a year later is no match
            if len(everywhere) == 1:
                only = next(iter(everywhere))
                year = self.year[only]
                if year is not None and abs(year - movie.year) == 1:
                    return only
        return None


def _sample_agreement(old: Sequence[Movie], new_by_id: dict[int, Movie]) -> tuple[int, int]:
    shared = sorted(m.movie_id for m in old if m.movie_id in new_by_id)
    if not shared:
        return 0, 0
    step = max(1, len(shared) // SAMPLE_SIZE)
    sample = shared[::step][:SAMPLE_SIZE]
    old_by_id = {m.movie_id: m for m in old}
    agreeing = sum(_agree(old_by_id[i], new_by_id[i]) for i in sample)
    return agreeing, len(sample)


def build_remap(
    old_movies: Sequence[Movie], new_movies: Sequence[Movie], *, old_dataset: str, new_dataset: str
) -> Remap:
    """Match every old movie to the new dataset: by id (same family, agreeing), IMDb id, title+year."""
    new_by_id = {m.movie_id: m for m in new_movies}
    trusted, sample = False, (0, 0)
    if shares_ids(old_dataset, new_dataset):
        sample = _sample_agreement(old_movies, new_by_id)
        trusted = sample[1] > 0 and sample[0] >= MIN_AGREEMENT * sample[1]
    by_imdb: dict[int, list[int]] = defaultdict(list)
    for movie in new_movies:
        if movie.imdb_id is not None:
            by_imdb[movie.imdb_id].append(movie.movie_id)
    titles = _TitleIndex(new_movies)
    matches: dict[int, Match] = {}
    unmapped: list[Movie] = []
    for old in old_movies:
        same = new_by_id.get(old.movie_id) if trusted else None
        if same is not None and _agree(old, same):
            matches[old.movie_id] = Match(same.movie_id, MatchKind.ID)
            continue
        imdb = by_imdb.get(old.imdb_id, []) if old.imdb_id is not None else []
        if len(imdb) == 1:
            matches[old.movie_id] = Match(imdb[0], MatchKind.IMDB)
            continue
        found = titles.find(old)
        if found is not None:
            matches[old.movie_id] = Match(found, MatchKind.TITLE_YEAR)
        else:
            unmapped.append(old)
    return Remap(old_dataset, new_dataset, matches, tuple(unmapped), trusted, sample)
