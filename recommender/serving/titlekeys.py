"""Title keys for matching: folding (accents, case, punctuation), articles, a trailing year, aliases.

"Amélie", "AMELIE" and "amelie" fold alike; a leading article is dropped from the match key and a
trailing one ("thing, the", as MovieLens sorts titles) is moved, so "the thing", "thing, the" and
"thing" all find "The Thing".
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["aliases", "fold", "match_key", "parse"]

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


def fold(text: str) -> str:
    """Lower-case, accent-free, punctuation-free form of ``text`` used for every comparison."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = _APOSTROPHES.sub("", stripped.casefold())
    return _NON_WORD.sub(" ", stripped).strip()


def match_key(folded: str) -> str:
    """Drop one leading article, unless nothing would be left ("The" alone, "A")."""
    head, _, rest = folded.partition(" ")
    return rest if head in _ARTICLES and rest else folded


def parse(text: str, *, allow_year: bool) -> tuple[str, str, int | None]:
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
    return full, match_key(full), year


def aliases(title: str) -> list[str]:
    """The main title and the alternative titles MovieLens keeps in parentheses."""
    parts = [p.strip(" )") for p in title.split(" (")]
    if len(parts) < 2:
        return []
    return [_AKA.sub("", p) for p in parts]
