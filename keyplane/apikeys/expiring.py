"""Keys expiring soon: live keys whose expiry falls within a window from now, soonest first.

What Kibana users ask for before a key lapses (kibana#211636); the query API can say the same with
a ``range`` on ``expiration``, but this read is one call with one parameter, pages past 10,000 keys
by ``search_after`` on (expiration, id) without ties, and is an index range whatever the key count
(``backends/expiring/sql.py``). Callers see what the query API shows them: every key with
``manage_api_key`` or ``read_security``, their own with ``manage_own_api_key``, an API key itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyplane.apikeys.backends.base import KeyFilter
from keyplane.apikeys.backends.expiring.base import ExpiringKeyRepository, ExpiringWindow
from keyplane.apikeys.core import ApiKey
from keyplane.apikeys.service import QUERY, ApiKeyService, is_api_key, owner_realm
from keyplane.errors import InvalidArgument, ValidationError
from keyplane.security.identity import Authentication
from keyplane.timevalue import now_ms

DEFAULT_WITHIN_MS = 7 * 86_400_000
MAX_WINDOW = 10_000  # from + size, as the query API's result window


@dataclass(frozen=True)
class ExpiringSpec:
    within_ms: int = DEFAULT_WITHIN_MS
    start: int = 0
    size: int = 10
    # search_after: the ``_sort`` of the last key of the previous page, [expiration, id]
    search_after: list[Any] | None = None


@dataclass(frozen=True)
class ExpiringKey:
    key: ApiKey
    sort: list[Any]  # [expiration, id]: what search_after takes back


@dataclass(frozen=True)
class ExpiringResult:
    total: int
    keys: list[ExpiringKey]


def spec_messages(spec: ExpiringSpec) -> list[str]:
    messages = []
    if spec.within_ms <= 0:
        messages.append("[within] must be a positive duration")
    if spec.start < 0:
        messages.append(f"[from] parameter cannot be negative but was [{spec.start}]")
    if spec.size < 0:
        messages.append(f"[size] parameter cannot be negative but was [{spec.size}]")
    return messages


def parse_after(values: list[Any] | None) -> tuple[int, str] | None:
    """``search_after`` as (expiration, id); clients may send the number back as a string."""
    if values is None:
        return None
    if len(values) != 2 or not isinstance(values[1], str) or isinstance(values[0], bool):
        raise InvalidArgument("[search_after] must be the [expiration, id] of the last key of the previous page")
    try:
        return int(values[0]), values[1]
    except (TypeError, ValueError):
        raise InvalidArgument(f"[search_after] expiration [{values[0]}] is not epoch milliseconds") from None


class ExpiringKeys:
    def __init__(self, apikeys: ApiKeyService, repo: ExpiringKeyRepository) -> None:
        self.apikeys = apikeys
        self.repo = repo

    async def expiring(self, auth: Authentication, spec: ExpiringSpec) -> ExpiringResult:
        messages = spec_messages(spec)
        if messages:
            raise ValidationError(*messages)
        after = parse_after(spec.search_after)
        # As the query API (and Elasticsearch's max_result_window), search_after included: a page is bounded.
        if spec.start + spec.size > MAX_WINDOW:
            raise InvalidArgument(
                f"Result window is too large, from + size must be less than or equal to: [{MAX_WINDOW}] but was "
                f"[{spec.start + spec.size}]"
            )
        owner, key_id = None, None
        # The query API's rule: without the privilege over every key, the caller's own keys only.
        if not auth.permission.grants_action(QUERY):
            self.apikeys.authorize(auth, QUERY, own=True)
            if is_api_key(auth) and auth.api_key is not None:
                key_id = auth.api_key["id"]
            else:
                owner = (auth.user.username, owner_realm(auth)["name"])
        now = now_ms()
        window = ExpiringWindow(now, now + spec.within_ms, spec.start, spec.size, after, owner, key_id)
        page = await self.repo.expiring(window)
        found = {k.id: k for k in await self.apikeys.repo.find(KeyFilter(ids=page.ids), now)} if page.ids else {}
        # A key removed between the two reads (the retention sweep) is left out of the page.
        keys = [found[i] for i in page.ids if i in found]
        return ExpiringResult(page.total, [ExpiringKey(k, [k.expiration, k.id]) for k in keys])
