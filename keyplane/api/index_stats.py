"""Placeholder: routes are added by the work in progress on issue 10."""

from __future__ import annotations

from keyplane.http.routing import Router


def register(router: Router) -> None:
    del router
