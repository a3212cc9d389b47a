"""Small pieces behind items 6-8: inflation in slices, tracebacks without values, the durability setting."""

from __future__ import annotations

import asyncio
import gzip
import os
import zlib

import pytest

from keyplane import tracebacks
from keyplane.config import Settings, SettingsError
from keyplane.http import compression
from keyplane.http.errors import EsError
from keyplane.store.database import describe_error


@pytest.mark.parametrize("size", [0, 10, compression.INLINE_BYTES - 1, compression.INLINE_BYTES, 3_000_000])
def test_inflate_gives_back_every_byte_whether_or_not_it_goes_to_a_thread(size: int) -> None:
    data = os.urandom(size // 2) + b"a" * (size - size // 2)
    assert asyncio.run(compression.inflate(gzip.compress(data), "gzip")) == data
    assert asyncio.run(compression.inflate(zlib.compress(data), "deflate")) == data


def test_inflate_refuses_more_than_100_mb_and_broken_data() -> None:
    with pytest.raises(EsError) as too_big:
        asyncio.run(compression.inflate(gzip.compress(b" " * (100 * 1024 * 1024 + 1)), "gzip"))
    assert too_big.value.status == 413
    with pytest.raises(EsError) as broken:
        asyncio.run(compression.inflate(b"not gzip at all", "gzip"))
    assert broken.value.status == 400


def test_tracebacks_keep_frames_and_kinds_but_no_message() -> None:
    secret = "$2a$10$abcdefghijklmnopqrstuv"

    def fail() -> None:
        try:
            raise ValueError(f"Failing row contains (ann, {secret})")
        except ValueError as exc:
            raise RuntimeError(f"wrapped {secret}") from exc

    try:
        fail()
    except RuntimeError as exc:
        text = tracebacks.without_values(exc)
        summary = describe_error(exc)
    assert secret not in text and secret not in summary
    assert "builtins.RuntimeError" in text and "builtins.ValueError" in text and "in fail" in text
    assert "caused by" in text


def test_the_sqlite_synchronous_setting_is_checked() -> None:
    assert Settings().sqlite_synchronous == "full"
    assert Settings.from_env({"KEYPLANE_SQLITE_SYNCHRONOUS": "normal"}).sqlite_synchronous == "normal"
    with pytest.raises(SettingsError) as bad:
        Settings.from_env({"KEYPLANE_SQLITE_SYNCHRONOUS": "off"})
    assert bad.value.problems == ["KEYPLANE_SQLITE_SYNCHRONOUS must be full or normal, not [off]"]
