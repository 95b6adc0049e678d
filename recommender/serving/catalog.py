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
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from rapidfuzz import fuzz, process

from recommender.core.errors import UnknownMovie
from recommender.core.types import Movie

__all__ = ["MAX_DISPLAY", "MAX_RESULTS", "Catalog", "display_name", "fold"]

log = logging.getLogger(__name__)

MAX_RESULTS = 25  # Discord's limit on autocomplete choices
MAX_DISPLAY = 100  # Discord's limit on a choice's name
MAX_QUERY = 200  # longer input is noise; cutting it bounds the work per keystroke

# Same articles the datasets module moves to the front of titles, plus their folded forms.
_ARTICLES = frozenset(
    "the a an les la le l il i lo gli der die das det den de en el los las un une una o da".split()
)
_TRAILING_ARTICLE = re.compile(
    r",\s*(" + "|".join(sorted(_ARTICLES, key=len, reverse=True)) + r")'?\s*$", re.IGNORECASE
)
_TRAILING_YEAR = re.compile(r"^(?P<rest>.*?)[\s,]*\(?(?P<year>(?:18|19|20)\d\d)\)?\s*$")
_NON_WORD = re.compile(r"[\W_]+")
_APOSTROPHES = re.compile(r"['’`´]")
_AKA = re.compile(r"^a\.?k\.?a\.?\s+", re.I)

FUZZY_CANDIDATES = 300  # titles re-scored with rapidfuzz on the whole string
WORD_MATCHES = 60  # vocabulary words kept per query word
PREFIX_WORDS = 200  # vocabulary words kept for a partly typed last word
MAX_TYPO_WORDS = 3  # query words looked up as possible misspellings
MAX_PREFIX_LEN = 12  # longer half-typed words are matched as whole words
SPARSE_MATCHES = 500  # fewer prefix matches than this: bisect; more: scan in popularity order
POPULARITY_WEIGHT = 6.0  # points (of 100) the most popular movie gains in the fuzzy tier


#: rapidfuzz token_sort_ratio (0-100) a title needs to be offered as a "did you mean" suggestion;
#: WRatio was too generous here ("zzzz qqqq" -> "I.Q.", "The City of Lost Children" for a LOTR typo)
SUGGEST_CUTOFF = 60
#: suggestions scoring this far below the best one are dropped as noise
SUGGEST_MARGIN = 10


def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation-free form of ``text`` used for every comparison."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = _APOSTROPHES.sub("", stripped.casefold())
    return _NON_WORD.sub(" ", stripped).strip()


def _key(folded: str) -> str:
    """Drop one leading article, unless nothing would be left ("The" alone, "A")."""
    head, _, rest = folded.partition(" ")
    return rest if head in _ARTICLES and rest else folded


def _parse(text: str, *, allow_year: bool) -> tuple[str, str, int | None]:
    """``text`` -> (folded with article, match key, year or None)."""
    text = text.strip()
    year = None
    if allow_year:
        match = _TRAILING_YEAR.match(text)
        if match and match["rest"].strip(" ,"):
            text, year = match["rest"], int(match["year"])
    moved = _TRAILING_ARTICLE.search(text)
    if moved and text[: moved.start()].strip():
        text = f"{moved.group(1)} {text[: moved.start()]}"
    full = fold(text)
    return full, _key(full), year


def _aliases(title: str) -> list[str]:
    """The main title and the alternative titles MovieLens keeps in parentheses."""
    parts = [p.strip(" )") for p in title.split(" (")]
    if len(parts) < 2:
        return []
    return [_AKA.sub("", p) for p in parts]


def display_name(movie: Movie, max_len: int = MAX_DISPLAY) -> str:
    """``movie.display`` cut to ``max_len`` characters, shortening the title so the year stays."""
    name = movie.display
    if len(name) <= max_len:
        return name
    suffix = f" ({movie.year})" if movie.year else ""
    return movie.title[: max_len - len(suffix) - 1].rstrip() + "…" + suffix


def _shortened(movie: Movie) -> Movie:
    if len(movie.display) <= MAX_DISPLAY:
        return movie
    suffix = len(f" ({movie.year})") if movie.year else 0
    title = movie.title[: MAX_DISPLAY - suffix - 1].rstrip() + "…"
    return Movie(movie.movie_id, title, movie.year, movie.genres)


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
        # Search results carry titles cut so that `display` fits a Discord choice (year kept).
        self._shown = [_shortened(m) for m in self._movies]
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

        # Word index for the fuzzy tier: typos are matched against the vocabulary, not every title.
        postings: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            for word in set(key.split()):
                postings.setdefault(word, []).append(i)
        self._vocab = sorted(postings)
        self._word_id = {w: j for j, w in enumerate(self._vocab)}
        self._postings = [np.array(postings[w], dtype=np.int32) for w in self._vocab]
        self._postings_cum = np.cumsum([0, *(len(p) for p in self._postings)])
        # Words by length: a typo (a letter dropped, added or swapped) changes the length by at most
        # one, two typos by two; so a misspelt word is only compared with words of similar length.
        by_len: dict[int, list[int]] = {}
        for j, w in enumerate(self._vocab):
            by_len.setdefault(len(w), []).append(j)
        self._near_length: dict[int, tuple[list[str], np.ndarray]] = {}
        for length in range(3, max(by_len, default=0) + 1):
            slack = 1 if length <= 7 else 2
            ids = [j for k in range(length - slack, length + slack + 1) for j in by_len.get(k, [])]
            self._near_length[length] = ([self._vocab[j] for j in ids], np.array(ids, dtype=np.int32))
        # Distinct word beginnings of each length, for a typo in a word still being typed
        # ("braparsa" -> "barparsa|rfa"): (prefixes, first vocab id, end vocab id) per length.
        self._prefixes: dict[int, tuple[list[str], np.ndarray, np.ndarray]] = {}
        for length in range(3, MAX_PREFIX_LEN + 2):
            texts: list[str] = []
            lows: list[int] = []
            highs: list[int] = []
            for j, w in enumerate(self._vocab):  # sorted, so equal prefixes are neighbours
                if len(w) < length:
                    continue
                head = w[:length]
                if texts and texts[-1] == head:
                    highs[-1] = j + 1
                else:
                    texts.append(head)
                    lows.append(j)
                    highs.append(j + 1)
            self._prefixes[length] = (texts, np.array(lows, dtype=np.int32), np.array(highs, dtype=np.int32))
        log.info("catalog: %d movies, %d distinct title words", n, len(self._vocab))

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
    def search(self, query: str, limit: int = MAX_RESULTS) -> list[Movie]:
        """Best matches for a partly typed title, at most ``limit`` (<= 25) of them.

        Returned movies have titles shortened (with "…") where needed so that ``display`` is at
        most 100 characters with the year kept; ``get``/``resolve`` return the full titles.
        """
        limit = max(0, min(int(limit), MAX_RESULTS))
        if limit == 0 or not self._movies:
            return []
        text = (query or "")[:MAX_QUERY]
        full, key, year = _parse(text, allow_year=True)
        if not key:
            return self._popular(limit, year)

        ranked: list[int] = []
        tiers: list[int] = []
        seen: set[int] = set()
        # With a year, look deeper so that the right remake can move up past other matches.
        want = limit if year is None else MAX_RESULTS * 4

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
        return [self._shown[i] for i in ranked[:limit]]

    def _popular(self, limit: int, year: int | None) -> list[Movie]:
        if year is None:
            return self._shown[:limit]
        same = np.flatnonzero(self._years == year)[:limit]
        rest = [i for i in range(limit + len(same)) if i < len(self._movies) and self._years[i] != year]
        return [self._shown[i] for i in [*same, *rest][:limit]]

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
        lo = bisect.bisect_left(self._vocab, first)
        hi = bisect.bisect_left(self._vocab, first + ("\U0010ffff" if not rest else "\x00"), lo)
        if self._postings_cum[hi] - self._postings_cum[lo] > SPARSE_MATCHES * 4:
            return self._matches(self._key_blob, self._key_starts, " " + key, most)
        if hi == lo:
            return []
        needle = " " + key
        candidates = np.unique(np.concatenate(self._postings[lo:hi]))
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

    def _word_matches(self, word: str, partial: bool, typo: bool) -> list[tuple[float, int]]:
        """(score, vocabulary id) for the words ``word`` may stand for; ``typo``: try misspellings."""
        matches: list[tuple[float, int]] = []
        exact = self._word_id.get(word)
        if exact is not None:
            matches.append((100.0, exact))
        if partial:
            # the member is still typing this word: every vocabulary word it begins counts in full
            lo = bisect.bisect_left(self._vocab, word)
            hi = bisect.bisect_left(self._vocab, word + "\U0010ffff", lo)
            matches += [(100.0, j) for j in range(lo, min(hi, lo + PREFIX_WORDS))]
        if (
            typo
            and exact is None
            and len(word) >= 3
            and partial
            and len(word) <= MAX_PREFIX_LEN
            and not matches
        ):
            # a typo in a word still being typed: compare with word beginnings of about its length
            length = len(word)
            cutoff = 70 if length >= 5 else 80
            for k in (length - 1, length, length + 1):
                if k not in self._prefixes:
                    continue
                texts, lows, highs = self._prefixes[k]
                scores = process.cdist(
                    [word], texts, scorer=fuzz.ratio, dtype=np.uint8, workers=1, score_cutoff=cutoff
                )[0]
                good = np.flatnonzero(scores)
                for p in good[np.argsort(-scores[good], kind="stable")[:WORD_MATCHES]]:
                    span = range(int(lows[p]), int(min(highs[p], lows[p] + WORD_MATCHES)))
                    matches += [(float(scores[p]), j) for j in span]
        elif typo and exact is None and len(word) >= 3 and (not partial or len(matches) < 3):
            # unknown word: a typo; compare with words of about the same length only
            length = len(word)
            longest = max(self._near_length, default=0)
            pool_words, pool = self._near_length.get(min(length, longest), ([], np.empty(0, np.int32)))
            if pool_words:
                cutoff = 70 if length >= 5 else 80
                scores = process.cdist(
                    [word], pool_words, scorer=fuzz.ratio, dtype=np.uint8, workers=1, score_cutoff=cutoff
                )[0]
                good = np.flatnonzero(scores >= cutoff)
                best = good[np.argsort(-scores[good], kind="stable")[:WORD_MATCHES]]
                matches += [(float(scores[k]), int(pool[k])) for k in best]
        return matches

    def _fuzzy(self, key: str, partial: bool, exclude: set[int]) -> list[int]:
        """Typo-tolerant matches: query words against the vocabulary, then whole-title re-scoring."""
        words = key.split()[:8]
        if not words or not self._vocab:
            return []
        n = len(self._movies)
        weights = np.array([len(w) for w in words], dtype=np.float32)
        coverage = np.zeros(n, dtype=np.float32)
        per_title = np.empty(n, dtype=np.float32)
        # Misspelt words cost a vocabulary scan each: try the longest few, which say the most.
        typo_ok = set(sorted(range(len(words)), key=lambda j: -len(words[j]))[:MAX_TYPO_WORDS])
        for j, word in enumerate(words):
            matches = self._word_matches(word, partial and j == len(words) - 1, j in typo_ok)
            if not matches:
                continue
            per_title.fill(0.0)
            for score, w in sorted(matches):  # ascending, so the best score per title is written last
                per_title[self._postings[w]] = score
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
            raise UnknownMovie(raw, [self._movies[i] for i in sorted(hits)[:5]])  # most popular first
        raise UnknownMovie(raw, self.suggest(raw))

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
        found = [self.get(m.movie_id) or m for m in self.search(raw, limit=limit)]
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
                found = [self.get(m.movie_id) or m for m in self.search(" ".join(words[:n]), limit=limit)]
                if found:
                    break
        return found
