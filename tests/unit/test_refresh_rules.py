"""The refresh rules: the ``refresh`` parameter of writes and which indices show writes at once."""

from __future__ import annotations

import pytest

from keyplane.errors import InvalidArgument
from keyplane.indices.core import IndexMeta
from keyplane.indices.refresh import Refresh, parse_refresh, refreshes_on_write, visible_at_once

MANUAL = IndexMeta("m", "u", 0, {"index.refresh_interval": "-1"})
AUTO = IndexMeta("a", "u", 0)


def test_refresh_parameter_values() -> None:
    assert parse_refresh(None) is Refresh.NONE
    assert parse_refresh("false") is Refresh.NONE
    assert parse_refresh("true") is Refresh.IMMEDIATE
    assert parse_refresh("") is Refresh.IMMEDIATE  # an empty value means true, as in Elasticsearch
    assert parse_refresh("wait_for") is Refresh.WAIT_FOR
    with pytest.raises(InvalidArgument, match=r"Unknown value for refresh: \[soon\]\."):
        parse_refresh("soon")


def test_only_a_disabled_interval_hides_writes() -> None:
    assert refreshes_on_write(AUTO) and refreshes_on_write(IndexMeta("b", "u", 0, {"index.refresh_interval": "30s"}))
    assert not refreshes_on_write(MANUAL)
    assert not visible_at_once(MANUAL, Refresh.NONE)
    assert visible_at_once(MANUAL, Refresh.IMMEDIATE) and visible_at_once(MANUAL, Refresh.WAIT_FOR)
    assert visible_at_once(AUTO, Refresh.NONE)
