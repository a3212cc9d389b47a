"""Rendered answers kept per caller, for routes whose answer is the caller's alone.

``GET /_security/_authenticate`` answers who the caller is and nothing else: clients (Kibana, the
connectors service, health checks) send it again and again with one credential. Realms hand out one
:class:`~keyplane.security.identity.Authentication` per cached credential and never change it (a
change is a new object), so the bytes rendered for one caller object stay its answer: the next
request of that caller skips the handler and the rendering.
"""

from __future__ import annotations

from keyplane.security.identity import Authentication

# Callers whose answer is kept: a full map is emptied rather than kept in order (the busy callers
# come back at once), as the realms' own caller maps are.
_KEPT = 4_096


class KeptAnswers:
    """The JSON bytes of one route's plain answer (200, no query string) by caller object."""

    __slots__ = ("_answers",)

    def __init__(self) -> None:
        # Keyed by the object itself (Authentication hashes by identity): a kept caller's id is never reused.
        self._answers: dict[Authentication, bytes] = {}

    def get(self, auth: Authentication) -> bytes | None:
        return self._answers.get(auth)

    def put(self, auth: Authentication, payload: bytes) -> None:
        answers = self._answers
        if len(answers) >= _KEPT:
            answers.clear()
        answers[auth] = payload
