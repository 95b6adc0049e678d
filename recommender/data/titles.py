"""MovieLens titles: ``"Thing, The (1982)"`` -> ``("The Thing", 1982)``.

Split out of :mod:`recommender.data.movielens` (which re-exports :func:`parse_title`) to keep files short.
"""

from __future__ import annotations

import re

__all__ = ["parse_title"]

# MovieLens files sort titles by moving the article to the end ("Thing, The"); we move it back so
# that a member reads "The Thing". The catalog's search still matches "thing, the".
_ARTICLES = (
    "The", "A", "An", "Les", "La", "Le", "L'", "Il", "I", "Lo", "Gli", "Der", "Die", "Das", "Det",
    "Den", "De", "En", "El", "Los", "Las", "Un", "Une", "Una", "O", "Da",
)  # fmt: skip
_ARTICLE_RE = re.compile(r"^(?P<rest>.+), (?P<article>" + "|".join(map(re.escape, _ARTICLES)) + r")$")
# "(1995)", "(2006-2007)", "(2006–2007)", "(2006-)", then optional markers such as ml-100k's "(V)".
_YEAR_RE = re.compile(
    r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)(?:\s*\([A-Z]{1,2}\))*$"
)


def _front_article(text: str) -> str:
    match = _ARTICLE_RE.match(text.strip())
    if not match:
        return text.strip()
    article = match["article"]
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match['rest']}"


def _split_aliases(text: str) -> tuple[str, list[str]]:
    """``"Main (alias one) (alias two)"`` -> ``("Main", ["alias one", "alias two"])``."""
    aliases: list[str] = []
    while text.endswith(")"):
        depth = 0
        for i in range(len(text) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(text[i], 0)
            if depth == 0:
                break
        if depth != 0 or i == 0:  # unbalanced, or the whole title is in parentheses: leave it
            break
        aliases.insert(0, text[i + 1 : -1])
        text = text[:i].rstrip()
    return text, aliases


def parse_title(raw: str) -> tuple[str, int | None]:
    """Split a MovieLens title into a display title and a year.

    ``"City of Lost Children, The (Cité des enfants perdus, La) (1995)"`` becomes
    ``("The City of Lost Children (La Cité des enfants perdus)", 1995)``; ``"Seven (a.k.a. Se7en)
    (1995)"`` keeps its alias; a year range keeps its first year; no year gives ``None``.
    """
    text = " ".join(raw.split())  # trailing spaces and doubled blanks occur in the files
    year: int | None = None
    match = _YEAR_RE.match(text)
    if match and match["title"]:
        text, year = match["title"], int(match["year"])
    main, aliases = _split_aliases(text)
    parts = [_front_article(main)] + [f"({_front_article(alias)})" for alias in aliases]
    title = " ".join(p for p in parts if p)
    return title or text, year
