"""The vocabulary of title words, for typo-tolerant matching of each word a member types.

A misspelt word is compared only with vocabulary words of about its length, and a typo in a word
still being typed with word beginnings of about its length, which keeps the fuzzy tier fast on a
large catalogue.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np
from rapidfuzz import fuzz, process

__all__ = ["WordIndex"]

WORD_MATCHES = 60  # vocabulary words kept per query word
PREFIX_WORDS = 200  # vocabulary words kept for a partly typed last word
MAX_PREFIX_LEN = 12  # longer half-typed words are matched as whole words


class WordIndex:
    """Title words -> the titles holding them, plus length-bucketed pools for typo lookups."""

    def __init__(self, keys: Sequence[str]) -> None:
        # Word index for the fuzzy tier: typos are matched against the vocabulary, not every title.
        postings: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            for word in set(key.split()):
                postings.setdefault(word, []).append(i)
        self.vocab = sorted(postings)
        self.word_id = {w: j for j, w in enumerate(self.vocab)}
        self.postings = [np.array(postings[w], dtype=np.int32) for w in self.vocab]
        self.postings_cum = np.cumsum([0, *(len(p) for p in self.postings)])
        # Words by length: a typo (a letter dropped, added or swapped) changes the length by at most
        # one, two typos by two; so a misspelt word is only compared with words of similar length.
        by_len: dict[int, list[int]] = {}
        for j, w in enumerate(self.vocab):
            by_len.setdefault(len(w), []).append(j)
        self.near_length: dict[int, tuple[list[str], np.ndarray]] = {}
        for length in range(3, max(by_len, default=0) + 1):
            slack = 1 if length <= 7 else 2
            ids = [j for k in range(length - slack, length + slack + 1) for j in by_len.get(k, [])]
            self.near_length[length] = ([self.vocab[j] for j in ids], np.array(ids, dtype=np.int32))
        # Distinct word beginnings of each length, for a typo in a word still being typed
        # ("braparsa" -> "barparsa|rfa"): (prefixes, first vocab id, end vocab id) per length.
        self.prefixes: dict[int, tuple[list[str], np.ndarray, np.ndarray]] = {}
        for length in range(3, MAX_PREFIX_LEN + 2):
            texts: list[str] = []
            lows: list[int] = []
            highs: list[int] = []
            for j, w in enumerate(self.vocab):  # sorted, so equal prefixes are neighbours
                if len(w) < length:
                    continue
                head = w[:length]
                if texts and texts[-1] == head:
                    highs[-1] = j + 1
                else:
                    texts.append(head)
                    lows.append(j)
                    highs.append(j + 1)
            self.prefixes[length] = (texts, np.array(lows, dtype=np.int32), np.array(highs, dtype=np.int32))

    def matches(self, word: str, partial: bool, typo: bool) -> list[tuple[float, int]]:
        """(score, vocabulary id) for the words ``word`` may stand for; ``typo``: try misspellings."""
        matches: list[tuple[float, int]] = []
        exact = self.word_id.get(word)
        if exact is not None:
            matches.append((100.0, exact))
        if partial:
            # the member is still typing this word: every vocabulary word it begins counts in full
            lo = bisect.bisect_left(self.vocab, word)
            hi = bisect.bisect_left(self.vocab, word + "\U0010ffff", lo)
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
                if k not in self.prefixes:
                    continue
                texts, lows, highs = self.prefixes[k]
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
            longest = max(self.near_length, default=0)
            pool_words, pool = self.near_length.get(min(length, longest), ([], np.empty(0, np.int32)))
            if pool_words:
                cutoff = 70 if length >= 5 else 80
                scores = process.cdist(
                    [word], pool_words, scorer=fuzz.ratio, dtype=np.uint8, workers=1, score_cutoff=cutoff
                )[0]
                good = np.flatnonzero(scores >= cutoff)
                best = good[np.argsort(-scores[good], kind="stable")[:WORD_MATCHES]]
                matches += [(float(scores[k]), int(pool[k])) for k in best]
        return matches
