"""Random identifiers and secrets, shared by every domain that hands them out."""

from __future__ import annotations

import base64
import os
import time


def urlsafe(data: bytes) -> str:
    """Unpadded URL-safe base64, the alphabet of Elasticsearch's ids."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def new_id() -> str:
    """20 URL-safe characters: a millisecond timestamp then random bytes, so ids sort by time."""
    stamp = int(time.time() * 1000).to_bytes(6, "big")
    return urlsafe(stamp + os.urandom(9))


def new_secret() -> str:
    """22 URL-safe characters carrying 128 random bits."""
    return urlsafe(os.urandom(16))
