"""Domain errors. The bot turns each into one polite ephemeral message (bot/errors.py)."""

from __future__ import annotations

from collections.abc import Sequence

from recommender.core.types import Movie, RatingScale


class RecommenderError(Exception):
    """Base class: ``str(error)`` is a message fit to show a member."""


class UnknownMovie(RecommenderError):
    def __init__(self, query: str, suggestions: Sequence[Movie] = ()) -> None:
        self.query = query
        self.suggestions = list(suggestions)
        shown = query if len(query) <= 80 else query[:77] + "..."
        msg = f"I couldn't find a movie called “{shown}”."
        if self.suggestions:
            msg += " Did you mean: " + "; ".join(m.display for m in self.suggestions[:5]) + "?"
        super().__init__(msg)


class InvalidStars(RecommenderError):
    def __init__(self, stars: object, scale: RatingScale) -> None:
        self.stars = stars
        self.scale = scale
        super().__init__(f"Stars must be {scale.describe()}; {stars!r} isn't one of them.")


class NoModel(RecommenderError):
    def __init__(self, detail: str = "") -> None:
        super().__init__("No trained model is available yet." + (f" {detail}" if detail else ""))


class RetrainInProgress(RecommenderError):
    """This process is training already (the bot words what it will do about it)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or "A retrain is already running; /stats shows its result when it ends.")


class RetrainRunningElsewhere(RetrainInProgress):
    """Another process holds the retrain lock: a trainer the previous bot started, or another shard's."""

    def __init__(self, pid: int, host: str, since: float, trigger: str, *, same_host: bool) -> None:
        self.pid, self.host, self.since, self.trigger, self.same_host = pid, host, since, trigger, same_host
        super().__init__(
            f"A retrain is already running in another process (pid {pid} on {host}); "
            "/stats shows its result when it ends."
        )


class StorageUnavailable(RecommenderError):
    """The database refused a write (read-only file, full disk): nothing was changed."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "I couldn't save that right now (the database is not writable), so nothing was changed. "
            "Please try again later." + (f" ({detail})" if detail else "")
        )


class InvalidMovieDetails(RecommenderError):
    """An admin's movie details that can't be stored (unknown genre, impossible year, bad IMDb id)."""


class DuplicateMovie(InvalidMovieDetails):
    def __init__(self, movie: Movie) -> None:
        self.movie = movie
        super().__init__(
            f"“{movie.display}” is already in the catalogue (id {movie.movie_id}); nothing was added."
        )


class NotAddedMovie(RecommenderError):
    """Only movies added by an admin may be edited or removed; the dataset's are left as they are."""

    def __init__(self, movie: Movie) -> None:
        self.movie = movie
        super().__init__(
            f"“{movie.display}” comes from the MovieLens dataset: only movies added with /addmovie "
            "can be edited or removed."
        )
