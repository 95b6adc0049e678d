"""The token filter never raises, and the token never reaches formatted output, whatever is logged."""

from __future__ import annotations

import io
import logging

import pytest

import bot.__main__ as cli
from recommender.core.config import Secret, Settings

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789ABCD"


@pytest.fixture
def captured() -> io.StringIO:
    out = io.StringIO()
    cli.setup_logging(Settings(discord_token=Secret(TOKEN), log_level="DEBUG"), stream=out)
    return out


def test_arguments_that_do_not_fit_the_format_do_not_raise(captured, capsys):
    log = logging.getLogger("bot.test")
    log.info("%s %s", 1)  # one argument short: logging would raise TypeError inside the filter
    log.info("%d", TOKEN)  # wrong type, and the token among the arguments
    log.info("no placeholders", TOKEN)
    text = captured.getvalue()
    assert text.count("\n") == 3
    assert "log arguments did not fit" in text
    assert TOKEN not in text and TOKEN not in capsys.readouterr().err  # nor in logging's error report


def test_a_discord_gateway_record_is_redacted(captured):
    logging.getLogger("discord.gateway").info("Shard ID %s sent IDENTIFY %s", None, {"token": TOKEN})
    text = captured.getvalue()
    assert "discord.gateway" in text and "IDENTIFY" in text
    assert TOKEN not in text and "**********" in text


def test_a_chained_exception_with_the_token_inside_is_redacted(captured):
    log = logging.getLogger("bot.test")
    try:
        try:
            raise ValueError(f"bad header Bot {TOKEN}")
        except ValueError as inner:
            raise RuntimeError("login failed") from inner
    except RuntimeError:
        log.exception("gateway closed")
    try:
        raise KeyError(TOKEN)
    except KeyError as error:
        log.error("with exc_info given directly", exc_info=error)
    log.info("stack too, %s", TOKEN, stack_info=True)
    text = captured.getvalue()
    assert "ValueError" in text and "RuntimeError" in text and "direct cause" in text
    assert "KeyError" in text and "Stack (most recent call last)" in text
    assert TOKEN not in text
    assert text.count("**********") >= 3


def test_an_unprintable_argument_does_not_raise(captured):
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

        __repr__ = __str__

    logging.getLogger("bot.test").info("%s and %s", Hostile())
    assert "unprintable" in captured.getvalue() or "did not fit" in captured.getvalue()
