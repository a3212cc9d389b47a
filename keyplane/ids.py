"""Random identifiers and secrets, shared by every domain that hands them out."""

from __future__ import annotations

import binascii
import os
import threading
import time

# Random bytes are read from the OS a block at a time: a getrandom call costs ~1.5 µs, and a key
# creation needs three draws (id, secret, salt), a bulk request one per document id.
_BLOCK = 4096
_lock = threading.Lock()  # ids are drawn on worker threads too: no two draws may share bytes
_block = b""
_used = 0


def _forget() -> None:
    """A forked child draws bytes of its own, never the rest of its parent's block."""
    global _block, _used
    _block, _used = b"", 0


os.register_at_fork(after_in_child=_forget)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS's cryptographically secure generator (as ``os.urandom``), each handed out once."""
    global _block, _used
    with _lock:
        if _used + n > len(_block):
            _block, _used = os.urandom(max(_BLOCK, n)), 0
        _used += n
        return _block[_used - n : _used]


def urlsafe(data: bytes) -> str:
    """Unpadded URL-safe base64, the alphabet of Elasticsearch's ids."""
    # base64.urlsafe_b64encode, without its two Python-level calls (four of these per key creation).
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE).decode()


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def new_id() -> str:
    """20 URL-safe characters: a millisecond timestamp then random bytes, so ids sort by time."""
    stamp = int(time.time() * 1000).to_bytes(6, "big")
    return urlsafe(stamp + random_bytes(9))


def new_secret() -> str:
    """22 URL-safe characters carrying 128 random bits."""
    return urlsafe(random_bytes(16))
