"""The movie catalog in memory, with fuzzy title search for autocomplete.

Matching works on *folded* titles: Unicode NFKD with the accents dropped, case-folded, apostrophes
removed and every other non-alphanumeric run turned into one space, so "Amélie", "AMELIE" and
"amelie" are the same. A leading article is dropped from the match key, and a trailing one
("thing, the", as MovieLens sorts titles) is too, so "the thing", "thing, the" and "thing" all
find "The Thing".

Ranking, in tiers: exact title, title prefix, a word inside the title starting with the query, then
fuzzy matches (rapidfuzz) scored per word, which is what makes typos like "godfahter" work while
staying fast on a large catalog. Inside every tier, popular movies come first (in the fuzzy tier,
popularity breaks near-ties). A year in the query ("the thing 1982", "The Thing (1982)") puts
movies of that year first.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from rapidfuzz import fuzz, process

from recommender.core.errors import RecommenderError, UnknownMovie
from recommender.core.types import Movie
from recommender.serving.titlekeys import aliases as _aliases
from recommender.serving.titlekeys import fold
from recommender.serving.titlekeys import parse as _parse
from recommender.serving.vocabulary import WordIndex

__all__ = ["AmbiguousTitle", "Catalog", "display_name", "fold", "shortened"]

log = logging.getLogger(__name__)

MAX_QUERY = 200  # longer input is noise; cutting it bounds the work per keystroke

FUZZY_CANDIDATES = 300  # titles re-scored with rapidfuzz on the whole string
MAX_TYPO_WORDS = 3  # query words looked up as possible misspellings
SPARSE_MATCHES = 500  # fewer prefix matches than this: bisect; more: scan in popularity order
POPULARITY_WEIGHT = 6.0  # points (of 100) the most popular movie gains in the fuzzy tier


#: rapidfuzz token_sort_ratio (0-100) a title needs to be offered as a "did you mean" suggestion;
#: WRatio was too generous here ("zzzz qqqq" -> "I.Q.", "The City of Lost Children" for a LOTR typo)
SUGGEST_CUTOFF = 60
#: suggestions scoring this far below the best one are dropped as noise
SUGGEST_MARGIN = 10


class AmbiguousTitle(UnknownMovie):
    """Several movies carry exactly this title (remakes); ``suggestions`` are them, oldest first."""

    def __init__(self, query: str, remakes: Sequence[Movie]) -> None:
        self.query = query
        self.suggestions = list(remakes)
        years = "; ".join(m.display for m in self.suggestions)
        RecommenderError.__init__(self, f"Several movies are called “{query[:80]}”: {years}.")


def display_name(movie: Movie, max_len: int) -> str:
    """``movie.display`` cut to ``max_len`` characters, shortening the title so the year stays."""
    return shortened(movie, max_len).display


def shortened(movie: Movie, max_len: int | None) -> Movie:
    """``movie`` with its title cut (with "…") so that ``display`` fits ``max_len``; the year stays."""
    if max_len is None or len(movie.display) <= max_len:
        return movie
    suffix = len(f" ({movie.year})") if movie.year else 0
    title = movie.title[: max(0, max_len - suffix - 1)].rstrip() + "…"
    return dataclasses.replace(movie, title=title)


class Catalog:
    """Every movie of the catalog, searchable by title. Built once; queries are cheap and never raise."""

    def __init__(self, movies: Iterable[Movie], popularity: Mapping[int, float] | None = None) -> None:
        unique = list({m.movie_id: m for m in movies}.values())
        popularity = popularity or {}
        # Internally movies are kept most popular first, so "index order" is "popularity order": a
        # scan that stops after k matches has found the k most popular ones, and ties sort for free.
        score = np.array([float(popularity.get(m.movie_id, -np.inf)) for m in unique], dtype=np.float64)
        order = np.lexsort((np.arange(len(unique)), -score))
        self._movies: list[Movie] = [unique[i] for i in order]
        self._by_id = {m.movie_id: i for i, m in enumerate(self._movies)}
        n = len(self._movies)
        # rank-based, in (0, 1]: independent of whether callers pass rating counts or mean scores
        self._pop = (1.0 - np.arange(n, dtype=np.float32) / max(n, 1)).astype(np.float32)
        self._years = np.array([m.year or 0 for m in self._movies], dtype=np.int32)

        fulls, keys = [], []
        self._exact: dict[str, list[int]] = {}
        for i, movie in enumerate(self._movies):
            full, key, _ = _parse(movie.title, allow_year=False)
            fulls.append(full)
            keys.append(key)
            # "Amelie (Le Fabuleux destin d'Amélie Poulain)": the main title and each alias resolve too
            for name in {key, *(_parse(a, allow_year=False)[1] for a in _aliases(movie.title))}:
                if name:
                    self._exact.setdefault(name, []).append(i)
        self._keys = keys
        # Sorted forms for bisect: a prefix with few matches is found without scanning the blob.
        self._sorted_keys = self._sorted(keys)
        self._sorted_fulls = self._sorted(fulls)
        # One big string per form: prefix and word searches are C-level `str.find` scans over it.
        self._key_blob, self._key_starts = self._blob(keys)
        self._full_blob, self._full_starts = self._blob(fulls)

        self._words = WordIndex(keys)
        log.info("catalog: %d movies, %d distinct title words", n, len(self._words.vocab))

    @staticmethod
    def _sorted(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        order = sorted(range(len(texts)), key=texts.__getitem__)
        return [texts[i] for i in order], np.array(order, dtype=np.int32)

    @staticmethod
    def _blob(texts: Sequence[str]) -> tuple[str, np.ndarray]:
        starts = np.zeros(len(texts), dtype=np.int64)
        pos = 1
        for i, text in enumerate(texts):
            starts[i] = pos
            pos += len(text) + 1
        return "\n" + "\n".join(texts) + "\n", starts

    def __len__(self) -> int:
        return len(self._movies)

    def __contains__(self, movie_id: object) -> bool:
        return movie_id in self._by_id

    def get(self, movie_id: int) -> Movie | None:
        i = self._by_id.get(movie_id)
        return None if i is None else self._movies[i]

    @property
    def movies(self) -> list[Movie]:
        """Every movie, most popular first."""
        return list(self._movies)

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str, limit: int, max_len: int | None = None) -> list[Movie]:
        """Best matches for a partly typed title, at most ``limit`` of them.

        With ``max_len``, returned movies have titles shortened (with "…") where needed so that
        ``display`` is at most ``max_len`` characters with the year kept; ``get``/``resolve``
        return the full titles.
        """
        limit = max(0, int(limit))
        if limit == 0 or not self._movies:
            return []
        return [shortened(self._movies[i], max_len) for i in self._search(query, limit)]

    def _search(self, query: str, limit: int) -> list[int]:
        text = (query or "")[:MAX_QUERY]
        full, key, year = _parse(text, allow_year=True)
        if not key:
            return self._popular(limit, year)

        ranked: list[int] = []
        tiers: list[int] = []
        seen: set[int] = set()
        # With a year, look deeper so that the right remake can move up past other matches.
        want = limit if year is None else limit * 4

        def add(tier: int, indices: Iterable[int]) -> None:
            for i in indices:
                if len(ranked) >= want:  # later tiers rank below; no need to look further
                    return
                if i not in seen:
                    seen.add(i)
                    ranked.append(int(i))
                    tiers.append(tier)

        add(0, self._exact.get(key, []))
        if full != key:  # "the th": titles that really start with "The Th" before those starting "Th"
            add(
                1,
                self._prefixed(
                    self._sorted_fulls, self._full_blob, self._full_starts, full, want + len(ranked)
                ),
            )
        add(1, self._prefixed(self._sorted_keys, self._key_blob, self._key_starts, key, want + len(ranked)))
        if len(ranked) < want and len(key) >= 2:
            add(2, self._inner_word(key, want + len(ranked)))
        if len(ranked) < want:
            partial = not text.endswith((" ", ","))
            add(3, self._fuzzy(key, partial, exclude=seen))
        if year is not None:
            # within each tier, that year's movies first: "the thing 1982" -> the 1982 remake on top
            order = sorted(range(len(ranked)), key=lambda j: (tiers[j], self._years[ranked[j]] != year))
            ranked = [ranked[j] for j in order]
        return ranked[:limit]

    def _popular(self, limit: int, year: int | None) -> list[int]:
        if year is None:
            return list(range(min(limit, len(self._movies))))
        same = np.flatnonzero(self._years == year)[:limit].tolist()
        rest = [i for i in range(limit + len(same)) if i < len(self._movies) and self._years[i] != year]
        return [int(i) for i in [*same, *rest][:limit]]

    def _prefixed(
        self,
        ordered: tuple[list[str], np.ndarray],
        blob: str,
        starts: np.ndarray,
        text: str,
        most: int,
    ) -> list[int]:
        """Titles starting with ``text``, most popular first, at most ``most``."""
        texts, index = ordered
        lo = bisect.bisect_left(texts, text)
        hi = bisect.bisect_left(texts, text + "\U0010ffff", lo)
        if hi - lo <= SPARSE_MATCHES:
            return np.sort(index[lo:hi])[:most].tolist()
        # many matches: the popularity-ordered scan meets `most` of them early
        return self._matches(blob, starts, "\n" + text, most)

    def _inner_word(self, key: str, most: int) -> list[int]:
        """Titles with a word (not the first) starting with ``key``, most popular first."""
        first, _, rest = key.partition(" ")
        lo = bisect.bisect_left(self._words.vocab, first)
        hi = bisect.bisect_left(self._words.vocab, first + ("\U0010ffff" if not rest else "\x00"), lo)
        if self._words.postings_cum[hi] - self._words.postings_cum[lo] > SPARSE_MATCHES * 4:
            return self._matches(self._key_blob, self._key_starts, " " + key, most)
        if hi == lo:
            return []
        needle = " " + key
        candidates = np.unique(np.concatenate(self._words.postings[lo:hi]))
        return [int(i) for i in candidates if needle in self._keys[i]][:most]

    @staticmethod
    def _matches(blob: str, starts: np.ndarray, needle: str, most: int) -> list[int]:
        """Indices of titles containing ``needle``, in index (= popularity) order, at most ``most``."""
        positions = []
        find = blob.find
        pos = find(needle)
        while pos != -1 and len(positions) < most * 2:  # a title can match twice; dedup below
            positions.append(pos)
            pos = find(needle, pos + 1)
        if not positions:
            return []
        # a match at p belongs to the last title starting at or before p + 1 (past the "\n" or " ")
        found = np.searchsorted(starts, np.asarray(positions) + 1, side="right") - 1
        return [int(i) for i in dict.fromkeys(found.tolist())][:most]

    def _fuzzy(self, key: str, partial: bool, exclude: set[int]) -> list[int]:
        """Typo-tolerant matches: query words against the vocabulary, then whole-title re-scoring."""
        words = key.split()[:8]
        if not words or not self._words.vocab:
            return []
        n = len(self._movies)
        weights = np.array([len(w) for w in words], dtype=np.float32)
        coverage = np.zeros(n, dtype=np.float32)
        per_title = np.empty(n, dtype=np.float32)
        # Misspelt words cost a vocabulary scan each: try the longest few, which say the most.
        typo_ok = set(sorted(range(len(words)), key=lambda j: -len(words[j]))[:MAX_TYPO_WORDS])
        for j, word in enumerate(words):
            matches = self._words.matches(word, partial and j == len(words) - 1, j in typo_ok)
            if not matches:
                continue
            per_title.fill(0.0)
            for score, w in sorted(matches):  # ascending, so the best score per title is written last
                per_title[self._words.postings[w]] = score
            coverage += weights[j] * per_title
        coverage /= weights.sum()
        candidates = np.flatnonzero(coverage >= 55.0)
        if exclude and candidates.size:
            candidates = candidates[~np.isin(candidates, np.fromiter(exclude, dtype=np.int64))]
        if candidates.size == 0:
            return []
        if candidates.size > FUZZY_CANDIDATES:
            keep = np.argpartition(-(coverage[candidates] + self._pop[candidates]), FUZZY_CANDIDATES)
            candidates = candidates[keep[:FUZZY_CANDIDATES]]
        whole = process.cdist([key], [self._keys[i] for i in candidates], scorer=fuzz.WRatio, workers=1)[0]
        score = 0.6 * coverage[candidates] + 0.4 * whole + POPULARITY_WEIGHT * self._pop[candidates]
        return [int(i) for i in candidates[np.argsort(-score, kind="stable")]]

    # -- resolve --------------------------------------------------------------------------------
    def resolve(self, text: str) -> Movie:
        """A movie id (what autocomplete sends), an exact "Title (Year)", or a unique exact title.

        Raises :class:`UnknownMovie` with up to five suggestions otherwise (for a title shared by
        remakes, the suggestions are those remakes).
        """
        raw = (text or "").strip()
        if raw.isascii() and raw.isdigit() and len(raw) <= 18:
            movie = self.get(int(raw))
            if movie is not None:
                return movie
        _, key, year = _parse(raw[:MAX_QUERY], allow_year=True)
        if key and year is not None:
            hits = [i for i in self._exact.get(key, []) if self._years[i] == year]
            if len(hits) == 1:
                return self._movies[hits[0]]
        _, whole_key, _ = _parse(raw[:MAX_QUERY], allow_year=False)
        hits = self._exact.get(whole_key, []) if whole_key else []
        if len(hits) == 1:
            return self._movies[hits[0]]
        if len(hits) > 1:
            raise AmbiguousTitle(raw, self._by_year(sorted(hits)[:5]))  # the five best known, by year
        raise UnknownMovie(raw, self.suggest(raw))

    def _by_year(self, indices: Iterable[int]) -> list[Movie]:
        return [self._movies[i] for i in sorted(indices, key=lambda i: (self._years[i] or 9999, i))]

    def lookup(self, title: str, year: int | None = None) -> Movie | None:
        """An exact title (and year) or None: the import path, with no "did you mean" search.

        A year picks among remakes; one a year off is accepted when the title is unique (Letterboxd
        and MovieLens date some films a year apart). Never raises.
        """
        raw = (title or "").strip()[:MAX_QUERY]
        _, key, _ = _parse(raw, allow_year=False)
        hits = self._exact.get(key, []) if key else []
        if not hits:  # "Heat (1995)" in one cell
            _, key, typed = _parse(raw, allow_year=True)
            hits = self._exact.get(key, []) if key and typed is not None else []
            year = typed if year is None else year
        if year is not None:
            same = [i for i in hits if self._years[i] == year]
            if len(same) == 1:
                return self._movies[same[0]]
            if len(hits) == 1 and (not self._years[hits[0]] or abs(int(self._years[hits[0]]) - year) <= 1):
                return self._movies[hits[0]]
            return None
        return self._movies[hits[0]] if len(hits) == 1 else None

    def suggest(self, text: str, limit: int = 5) -> list[Movie]:
        """ "Did you mean" titles for text that matched nothing exactly.

        ``search`` wants every typed word to match (right for autocomplete), so "star warz episode 9"
        finds nothing there; then whole-title similarity (rapidfuzz token_sort_ratio over the folded
        titles) offers the closest ones, popular first among equals. Only runs on the error path.
        """
        raw = (text or "").strip()[:MAX_QUERY]
        _, key, _ = _parse(raw, allow_year=True)
        if not key:  # nothing searchable (punctuation, control characters): no guesses
            return []
        found = self.search(raw, limit)
        if not found:
            have: set[int] = set()
            scored = process.extract(
                key, self._keys, scorer=fuzz.token_sort_ratio, limit=limit * 4, score_cutoff=SUGGEST_CUTOFF
            )
            best = max((hit[1] for hit in scored), default=0.0)
            close = [hit for hit in scored if hit[1] >= best - SUGGEST_MARGIN]
            # ties in score go to the more popular movie (lower index: the catalog is popular-first)
            for _, _, i in sorted(close, key=lambda hit: (-round(hit[1]), hit[2])):
                if self._movies[i].movie_id not in have:
                    found.append(self._movies[i])
                    have.add(self._movies[i].movie_id)
                if len(found) == limit:
                    break
        if not found:
            # Extra words the title lacks ("star warz episode 9" for "Star Wars"): drop them from the
            # end until the word search finds something.
            words = raw.split()
            for n in range(min(len(words), 8) - 1, 0, -1):
                found = self.search(" ".join(words[:n]), limit)
                if found:
                    break
        return found
