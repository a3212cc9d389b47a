"""API-key use cases: create, grant, get, query, update, invalidate, authenticate.

Each use case checks the caller's privileges itself, because ``manage_own_api_key`` allows an
action only when the request concerns the caller's own keys, which only the request tells.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from keyplane import ids
from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.base import ApiKeyRepository, KeyFilter
from keyplane.apikeys.cache import LastUse, Verified, VerifiedKeys
from keyplane.apikeys.core import ApiKey, CreatedKey, Creator
from keyplane.apikeys.lifetime import LifetimePolicy
from keyplane.apikeys.query import key_is, owned_by
from keyplane.errors import (
    Conflict,
    CredentialsRejected,
    Forbidden,
    InvalidArgument,
    KeyplaneError,
    NotFound,
    StatusError,
    ValidationError,
)
from keyplane.query.aggs import Agg, AggResult
from keyplane.query.tree import Bool, Query, SortKey
from keyplane.security import privileges as privs
from keyplane.security.identity import Authentication
from keyplane.security.permission import denial_message
from keyplane.security.roles import IndicesPrivileges, RoleDescriptor
from keyplane.security.users import ProfileLookup, User, profile_uids
from keyplane.timevalue import now_ms, parse_duration_ms

ACTION = "cluster:admin/xpack/security/api_key/"
_MAX_ATTEMPTS = 30  # compare-and-set rounds before a concurrent update gives up
_APPLY_SLICE = 250  # keys of a bulk update changed in memory between two yields to the event loop
_MAX_WRITTEN = 1_024  # keys whose last written form this node keeps (ApiKeyService._written)
CREATE = ACTION + "create"
GRANT = ACTION + "grant"
BULK_GRANT = ACTION + "grant/bulk"
GET = ACTION + "get"
QUERY = ACTION + "query"
UPDATE = ACTION + "update"
BULK_UPDATE = ACTION + "bulk_update"
INVALIDATE = ACTION + "invalidate"
CLONE = ACTION + "clone"
CLONED_FROM = "_cloned_from"  # the metadata key a clone names its source by (reserved for the server)
CC_CREATE = "cluster:admin/xpack/security/cross_cluster/api_key/create"
CC_UPDATE = "cluster:admin/xpack/security/cross_cluster/api_key/update"


@dataclass
class ApiKeySettings:
    hash_algorithm: str = hashing.SSHA256
    retention_ms: int = 7 * 86_400_000
    last_used_granularity_ms: int = 3_600_000
    cache_max_keys: int = 25_000
    cache_ttl_seconds: float = 3600.0
    lifetime: LifetimePolicy = field(default_factory=LifetimePolicy)


@dataclass
class KeySpec:
    """What a create or grant request asks for."""

    name: str | None
    expiration: str | None = None
    role_descriptors: list[RoleDescriptor] | None = None
    metadata: dict[str, Any] | None = None
    certificate_identity: str | None = None  # cross-cluster keys only
    # Whether the request gave the name as a JSON string; a grant refuses any other name (grants.key_messages).
    name_is_string: bool = True


@dataclass
class CloneSpec:
    """What a clone request asks for: a new key with the source key's roles and owner."""

    credential: str | None  # the source key's encoded credential
    name: str | None
    keep_expiration: bool = True  # no ``expiration`` field: the source's own expiry time
    expiration: str | None = None  # a duration from now; ``None`` with keep_expiration False: never
    metadata: dict[str, Any] | None = None  # ``None``: the source's metadata


@dataclass
class UpdateSpec:
    ids: list[str]
    role_descriptors: list[RoleDescriptor] | None = None
    metadata: dict[str, Any] | None = None
    expiration: str | None = None
    access: tuple[list[IndicesPrivileges], list[IndicesPrivileges]] | None = None
    # Cross-cluster keys: replace the certificate identity (None clears it) when set_certificate_identity.
    set_certificate_identity: bool = False
    certificate_identity: str | None = None


@dataclass
class GetSpec:
    id: str | None = None
    name: str | None = None
    username: str | None = None
    realm_name: str | None = None
    owner: bool = False
    with_limited_by: bool = False
    active_only: bool = False
    with_profile_uid: bool = False


@dataclass
class QuerySpec:
    query: Query
    sort: list[SortKey]
    start: int
    size: int
    search_after: list[Any] | None
    aggs: list[Agg]
    with_limited_by: bool = False
    with_profile_uid: bool = False
    typed_keys: bool = False  # a rendering option, read by the edge


@dataclass
class BulkResult:
    updated: list[str] = field(default_factory=list)
    noops: list[str] = field(default_factory=list)
    errors: dict[str, KeyplaneError] = field(default_factory=dict)


@dataclass
class KeyList:
    keys: list[ApiKey]
    # with_profile_uid: {(username, realm name): profile uid} of the keys' owners that have one
    profile_uids: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 0.3 µs more to build, per key of a page
class QueryHit:
    key: ApiKey
    sort: list[Any] | None  # the key's values of the sort keys; ``None`` when the query does not sort


@dataclass
class QueryResult:
    total: int
    hits: list[QueryHit]
    aggregations: dict[str, AggResult] | None = None  # typed results; the edge renders them
    profile_uids: dict[tuple[str, str], str] = field(default_factory=dict)  # as in KeyList


@dataclass
class InvalidateResult:
    invalidated: list[str]
    errors: list[KeyplaneError]  # keys the caller may not invalidate


def is_api_key(auth: Authentication) -> bool:
    """Whether the caller is an API key itself (not a user, nor a user run as through a key)."""
    return auth.type == "api_key" and not auth.is_run_as


# Callers whose keys' owner is kept (``ApiKeyService._creator``).
_MAX_CREATORS = 1024


def owner_realm(auth: Authentication) -> dict[str, str]:
    return auth.lookup_realm


class _Turn:
    """One update's turn at a key on this node (``ApiKeyService._turns``): updates of one key wait
    for each other in arrival order (asyncio.Lock is FIFO), so each starts from the form the one before
    wrote (``_update_written``) instead of finding it taken and reading the key again (one more read,
    a round trip on PostgreSQL), or losing the compare-and-set to it."""

    __slots__ = ("_turns", "_key_id", "_entry")

    def __init__(self, turns: dict[str, list[Any]], key_id: str) -> None:
        self._turns = turns
        self._key_id = key_id

    async def __aenter__(self) -> None:
        entry = self._turns.get(self._key_id)
        if entry is None:
            entry = self._turns[self._key_id] = [asyncio.Lock(), 0]
        entry[1] += 1  # updates holding or waiting for the turn: the entry goes with the last one
        self._entry = entry
        try:
            await entry[0].acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._entry[0].release()
        self._leave()

    def _leave(self) -> None:
        entry = self._entry
        entry[1] -= 1
        if not entry[1]:
            del self._turns[self._key_id]


class ApiKeyService:
    def __init__(
        self,
        repo: ApiKeyRepository,
        roles_of: Callable[[User], Awaitable[list[RoleDescriptor]]],
        settings: ApiKeySettings | None = None,
        profiles: ProfileLookup | None = None,
    ) -> None:
        self.repo = repo
        self.profiles = profiles
        self.roles_of = roles_of
        self.settings = settings or ApiKeySettings()
        self.verified = VerifiedKeys(self.settings.cache_max_keys, self.settings.cache_ttl_seconds)
        self.last_use = LastUse(self.settings.last_used_granularity_ms)
        # The keys this node last wrote by update, by (id, owner's username, owner's realm): the next
        # update of one starts from it instead of reading it again (``_update_written``).
        self._written: dict[tuple[str, str, str], ApiKey] = {}
        # The key ids being updated one at a time on this node, each with its lock and how many
        # updates hold or wait for it (``_Turn``).
        self._turns: dict[str, list[Any]] = {}
        # Owners of new keys by their caller's identity (``_creator``).
        self._creators: dict[int, tuple[Authentication, Creator]] = {}

    # -- authorization --------------------------------------------------------------------------------

    @staticmethod
    def authorize(auth: Authentication, action: str, *, own: bool) -> None:
        """Allow the action, or the owner-scoped form of it when the request is about own keys."""
        if auth.permission.grants_action(action):
            return
        if own and auth.permission.grants_own(action):
            return
        raise Forbidden(denial_message(action, auth.subject(), privs.privileges_granting(action, own=own)))

    # -- create -----------------------------------------------------------------------------------------

    def _validate(self, spec: KeySpec, kind: str = core.REST) -> None:
        messages = core.name_messages(spec.name) + core.metadata_messages(spec.metadata)
        messages += core.descriptor_messages(spec.role_descriptors or [])
        messages += self.lifetime_messages(spec, kind)
        if messages:
            raise ValidationError(*messages)
        core.check_restrictions(spec.role_descriptors or [])

    def lifetime_messages(self, spec: KeySpec, kind: str = core.REST) -> list[str]:
        """Why the key-lifetime policy refuses the expiration a new key asks for; empty when allowed."""
        return self.settings.lifetime.limit(kind).messages(spec.expiration)

    def _expiration(self, value: str | None, now: int, *, update: bool = False) -> int | None:
        if value is None:
            return None
        ms = parse_duration_ms(value, "expiration")
        if update and ms <= 0:
            raise ValidationError("API key expiration must be in the future")
        # Elasticsearch truncates the duration to whole seconds.
        return now + (ms // 1000) * 1000

    def _creator(self, auth: Authentication) -> Creator:
        """The owner of keys ``auth`` creates: one object per caller while it is the same one (realms hand
        out one Authentication per cached credential, never changed), so keys of one caller share it
        and whatever is kept by its identity (its text in the verified-key cache's grants, its part of
        the stored doc: backends/sql.py ``_doc_text``)."""
        found = self._creators.get(id(auth))
        if found is not None and found[0] is auth:
            return found[1]
        user, realm = auth.user, owner_realm(auth)
        creator = Creator(user.username, user.full_name, user.email, user.metadata, realm["name"], realm["type"])
        if len(self._creators) >= _MAX_CREATORS:
            self._creators.clear()
        self._creators[id(auth)] = (auth, creator)  # holds the caller, so its id is not reused meanwhile
        return creator

    async def _creator_and_snapshot(self, auth: Authentication) -> tuple[Creator, list[RoleDescriptor]]:
        creator = self._creator(auth)
        if is_api_key(auth):
            return creator, []
        return creator, core.owner_snapshot(await self.roles_of(auth.user))

    async def create(self, auth: Authentication, spec: KeySpec, *, check: bool = True) -> CreatedKey:
        if check:
            self.authorize(auth, CREATE, own=True)
        self._validate(spec)
        if is_api_key(auth) and not core.is_derivation_allowed(spec.role_descriptors):
            raise InvalidArgument(
                "creating derived api keys requires an explicit role descriptor that is empty (has no privileges)"
            )
        creator, snapshot = await self._creator_and_snapshot(auth)
        return await self._insert(core.REST, spec, creator, spec.role_descriptors or [], snapshot)

    async def bulk_create(self, auth: Authentication, specs: list[KeySpec]) -> tuple[list[CreatedKey], BulkResult]:
        """Keys granted to ``auth`` in one request: all are validated first, then each is created on its own.

        A key that cannot be stored is reported under its pre-assigned id and does not stop the others.
        """
        for spec in specs:
            self._validate(spec)
        creator, snapshot = await self._creator_and_snapshot(auth)
        created: list[CreatedKey] = []
        failed = BulkResult()
        for spec in specs:
            key_id = ids.new_id()
            try:
                created.append(
                    await self._insert(core.REST, spec, creator, spec.role_descriptors or [], snapshot, key_id=key_id)
                )
            except KeyplaneError as exc:
                failed.errors[key_id] = exc
        return created, failed

    async def _insert(
        self,
        kind: str,
        spec: KeySpec,
        creator: Creator,
        descriptors: list[RoleDescriptor],
        snapshot: list[RoleDescriptor],
        *,
        key_id: str | None = None,
        expires_at: int | None = None,
    ) -> CreatedKey:
        """Store a new key; its expiry is ``spec.expiration`` from now, or ``expires_at`` when given."""
        now = now_ms()
        secret = ids.new_secret()
        algorithm = self.settings.hash_algorithm
        if algorithm == hashing.PBKDF2:
            stored = await asyncio.to_thread(hashing.hash_secret, secret, algorithm)
        else:
            stored = hashing.hash_secret(secret, algorithm)
        key = ApiKey(
            id=key_id or ids.new_id(),
            name=spec.name,
            type=kind,
            creation=now,
            expiration=expires_at if expires_at is not None else self._expiration(spec.expiration, now),
            invalidated=False,
            invalidation=None,
            hash=stored,
            creator=creator,
            role_descriptors=descriptors,
            limited_by=snapshot,
            metadata=spec.metadata,
            certificate_identity=spec.certificate_identity,
        )
        await self.repo.insert(key)
        created = CreatedKey(key.id, key.name, key.expiration, secret)
        # A new key is known good, as Elasticsearch caches it; the cache keeps this very object.
        self.verified.put(key, secret, own=True)
        return created

    async def create_cross_cluster(
        self, auth: Authentication, spec: KeySpec, search: list[IndicesPrivileges], replication: list[IndicesPrivileges]
    ) -> CreatedKey:
        self.authorize(auth, CC_CREATE, own=False)
        if is_api_key(auth):
            raise InvalidArgument(
                "authentication via API key not supported: An API key cannot be used to create a cross-cluster API key"
            )
        descriptor = core.descriptor_from_access(search, replication)
        self._validate(KeySpec(spec.name, spec.expiration, None, spec.metadata), core.CROSS_CLUSTER)
        core.check_certificate_identity(spec.certificate_identity)
        creator, _ = await self._creator_and_snapshot(auth)
        return await self._insert(core.CROSS_CLUSTER, spec, creator, [descriptor], [])

    async def clone(self, auth: Authentication, spec: CloneSpec) -> CreatedKey:
        """A new REST key with the roles, limits and owner of the key whose credential the request holds."""
        self.authorize(auth, CLONE, own=False)
        messages = [] if spec.credential else ["api key credential is required"]
        messages += core.name_messages(spec.name) + core.metadata_messages(spec.metadata)
        if not spec.keep_expiration:
            messages += self.settings.lifetime.rest.messages(spec.expiration)
        if messages:
            raise ValidationError(*messages)
        assert spec.credential is not None
        parts = hashing.decode(spec.credential)
        if parts is None:
            raise StatusError("invalid API key credential: invalid ApiKey value")
        try:
            verified = (await self.authenticate(*parts)).key
        except CredentialsRejected:
            raise Forbidden("Failed to clone API key") from None
        # The verified-key cache keeps no metadata: the clone copies the stored key's.
        source = await self.repo.get(verified.id) or verified
        metadata = dict(source.metadata or {}) if spec.metadata is None else dict(spec.metadata)
        metadata[CLONED_FROM] = source.id
        if spec.keep_expiration:
            expires_at = source.expiration
            # A clone is a new key: it may not keep an expiry the policy would refuse to a new one.
            refused = self.settings.lifetime.rest.inherited_messages(expires_at, now_ms())
            if refused:
                raise ValidationError(*refused)
        else:
            expires_at = self._expiration(spec.expiration, now_ms())
        clone = KeySpec(spec.name, None, source.role_descriptors, metadata)
        return await self._insert(
            core.REST, clone, source.creator, source.role_descriptors, source.limited_by, expires_at=expires_at
        )

    # -- read -------------------------------------------------------------------------------------------

    def _owned(self, auth: Authentication, spec: GetSpec) -> bool:
        """Whether a get or invalidate request only reaches the caller's own keys."""
        if is_api_key(auth):
            return spec.id is not None and auth.api_key is not None and spec.id == auth.api_key["id"]
        if spec.owner:
            return True
        return spec.username == auth.user.username and spec.realm_name == owner_realm(auth)["name"]

    async def get(self, auth: Authentication, spec: GetSpec) -> KeyList:
        """The keys a get request selects. ``with_limited_by`` decides here who may ask; the edge shows the roles."""
        messages = []
        if (spec.id or spec.name) and (spec.username or spec.realm_name):
            messages.append(
                "username or realm name must not be specified when the api key id or api key name is specified"
            )
        if spec.owner and (spec.username or spec.realm_name):
            messages.append("neither username nor realm-name may be specified when retrieving owned API keys")
        if spec.id and spec.name:
            messages.append("only one of [api key id, api key name] can be specified")
        if messages:
            raise ValidationError(*messages)
        own = self._owned(auth, spec) and not (is_api_key(auth) and spec.with_limited_by)
        # An API key may always read itself by id, whatever its privileges (Elasticsearch's same-user
        # rule); with_limited_by shows its owner's roles, which needs manage_api_key or higher.
        if not (own and is_api_key(auth)):
            self.authorize(auth, GET, own=own)
        selector = KeyFilter(
            ids=[spec.id] if spec.id else None,
            name=spec.name,
            username=spec.username,
            realm=spec.realm_name,
            active_only=spec.active_only,
        )
        if spec.owner:
            selector.username, selector.realm = auth.user.username, owner_realm(auth)["name"]
        keys = await self.repo.find(selector, now_ms())
        return KeyList(keys, await self._owner_profiles(keys) if spec.with_profile_uid else {})

    async def _owner_profiles(self, keys: list[ApiKey]) -> dict[tuple[str, str], str]:
        return await profile_uids(self.profiles, [key.creator.principal for key in keys])

    async def query(self, auth: Authentication, spec: QuerySpec) -> QueryResult:
        if is_api_key(auth) and spec.with_limited_by:
            self.authorize(auth, QUERY, own=False)
        query = spec.query
        if not auth.permission.grants_action(QUERY):
            self.authorize(auth, QUERY, own=True)
            query = self._only_own(auth, query)
        if spec.start + spec.size > 10_000:
            raise InvalidArgument(
                "Result window is too large, from + size must be less than or equal to: [10000] but was "
                f"[{spec.start + spec.size}]"
            )
        page = await self.repo.search(query, spec.sort, spec.start, spec.size, spec.search_after, now_ms())
        hits = [
            QueryHit(key, sort_values if spec.sort else None)
            for key, sort_values in zip(page.keys, page.sort_values, strict=True)
        ]
        result = QueryResult(page.total, hits)
        if spec.with_profile_uid:
            result.profile_uids = await self._owner_profiles(page.keys)
        if spec.aggs and page.total > 0:
            result.aggregations = await self.repo.aggregate(query, spec.aggs)
        return result

    @staticmethod
    def _only_own(auth: Authentication, query: Query) -> Query:
        if is_api_key(auth) and auth.api_key is not None:
            owner = key_is(auth.api_key["id"])
        else:
            owner = owned_by(auth.user.username, owner_realm(auth)["name"])
        return Bool(filter=(query, owner))

    # -- update -----------------------------------------------------------------------------------------

    async def update_one(self, auth: Authentication, spec: UpdateSpec, *, kind: str) -> bool:
        """Update the one key of ``spec``: whether it changed; its error, when it has one, is raised."""
        result = await self.update(auth, spec, kind=kind, bulk=False)
        if result.errors:
            raise next(iter(result.errors.values()))
        return bool(result.updated)

    async def update(self, auth: Authentication, spec: UpdateSpec, *, kind: str, bulk: bool) -> BulkResult:
        if kind == core.CROSS_CLUSTER:
            # Request validation, before authorization as in Elasticsearch; the only message when it applies.
            nothing = core.cross_cluster_update_messages(
                spec.access, spec.metadata, sets_certificate_identity=spec.set_certificate_identity
            )
            if nothing:
                raise ValidationError(*nothing)
        action = CC_UPDATE if kind == core.CROSS_CLUSTER else (BULK_UPDATE if bulk else UPDATE)
        self.authorize(auth, action, own=kind == core.REST)
        if is_api_key(auth):
            raise InvalidArgument("authentication via API key not supported: only the owner user can update an API key")
        messages = core.metadata_messages(spec.metadata) + core.descriptor_messages(spec.role_descriptors or [])
        if spec.expiration is not None and parse_duration_ms(spec.expiration, "expiration") <= 0:
            messages.append("API key expiration must be in the future")
        elif spec.expiration is not None:
            # Only an expiration the update sets is bounded: left out, the key keeps its own (lifetime.py).
            messages += self.settings.lifetime.limit(kind).messages(spec.expiration)
        if messages:
            raise ValidationError(*messages)
        if spec.role_descriptors:
            core.check_restrictions(spec.role_descriptors)
        core.check_certificate_identity(spec.certificate_identity)
        new_descriptors = spec.role_descriptors
        if spec.access is not None:
            new_descriptors = [core.descriptor_from_access(*spec.access)]
        creator, snapshot = await self._creator_and_snapshot(auth)
        if kind == core.CROSS_CLUSTER:
            snapshot = []
        ids = list(dict.fromkeys(spec.ids))
        if len(ids) != 1:
            return await self._update_read(ids, creator, snapshot, new_descriptors, spec, kind)
        async with _Turn(self._turns, ids[0]):
            if await self._update_written(ids[0], creator, snapshot, new_descriptors, spec, kind):
                return BulkResult(updated=[ids[0]])
            return await self._update_read(ids, creator, snapshot, new_descriptors, spec, kind)

    async def _update_read(
        self,
        ids: list[str],
        creator: Creator,
        snapshot: list[RoleDescriptor],
        new_descriptors: list[RoleDescriptor] | None,
        spec: UpdateSpec,
        kind: str,
    ) -> BulkResult:
        """Update the keys of ``ids`` from what a read finds of them, again for those another writer
        changed first (compare-and-set on ``seq_no``)."""
        result = BulkResult()
        owned = KeyFilter(ids=ids, username=creator.principal, realm=creator.realm)
        found = {k.id: k for k in await self.repo.find(owned, now_ms())}
        outcome: dict[str, str] = {}
        pending = [found[i] for i in ids if i in found]
        for attempt in range(_MAX_ATTEMPTS):
            to_write = []
            for n, key in enumerate(pending):
                if n and n % _APPLY_SLICE == 0:
                    await asyncio.sleep(0)  # a bulk update of thousands of keys lets other requests run
                try:
                    changed = self._apply(key, creator, snapshot, new_descriptors, spec, kind)
                except InvalidArgument as exc:
                    result.errors[key.id] = exc
                    continue
                if changed:
                    to_write.append(key)
                else:
                    outcome[key.id] = "noop"
            written = await self.repo.replace_many(to_write)
            for key_id in written:
                outcome[key_id] = "updated"
                self.verified.drop(key_id)
            if len(ids) == 1 and written:
                self._remember(to_write[0])
            lost = [k.id for k in to_write if k.id not in written]
            if not lost:
                break
            # Another writer changed these first: start again from what they wrote.
            await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
            owned.ids = lost
            pending = await self.repo.find(owned, now_ms())
        for key_id in ids:
            if key_id not in found:
                result.errors[key_id] = NotFound(f"no API key owned by requesting user found for ID [{key_id}]")
            elif outcome.get(key_id) == "updated":
                result.updated.append(key_id)
            elif outcome.get(key_id) == "noop":
                result.noops.append(key_id)
            elif key_id not in result.errors:
                # Elasticsearch reports a write that lost to a concurrent one as a version conflict.
                result.errors[key_id] = Conflict(
                    f"[{key_id}]: version conflict, too many concurrent updates of API key"
                )
        return result

    async def _update_written(
        self,
        key_id: str,
        creator: Creator,
        snapshot: list[RoleDescriptor],
        descriptors: list[RoleDescriptor] | None,
        spec: UpdateSpec,
        kind: str,
    ) -> bool:
        """Update a key from the form this node last wrote of it for this owner, without reading it
        first: True when written so. The write is a compare-and-set on the ``seq_no`` written, and
        every change of a stored key but its last use (which no update writes) raises ``seq_no``: so
        it succeeds only when the stored key is still that form, the key a read would have found.
        Anything else (a noop, an error, a key changed since) is decided by ``update`` on a fresh read.
        """
        # Taken out: ``_apply`` sets fields of the key it is given, and only a key written goes back.
        key = self._written.pop((key_id, creator.principal, creator.realm), None)
        if key is None:
            return False
        try:
            if not self._apply(key, creator, snapshot, descriptors, spec, kind):
                return False
        except InvalidArgument:
            return False
        if not await self.repo.replace_many([key]):
            return False
        self.verified.drop(key_id)
        self._remember(key)
        return True

    def _remember(self, key: ApiKey) -> None:
        """Keep ``key`` as just written (owned by its creator, as ``update`` set it); the caller no longer
        uses it, so it is kept as it is, not copied."""
        if len(self._written) >= _MAX_WRITTEN:
            del self._written[next(iter(self._written))]  # the oldest
        self._written[(key.id, key.creator.principal, key.creator.realm)] = key

    def _apply(
        self,
        key: ApiKey,
        creator: Creator,
        snapshot: list[RoleDescriptor],
        descriptors: list[RoleDescriptor] | None,
        spec: UpdateSpec,
        kind: str,
    ) -> bool:
        """Apply an update to a key in memory; False when Elasticsearch's noop rule holds."""
        now = now_ms()
        if key.invalidated:
            raise InvalidArgument(f"cannot update invalidated API key [{key.id}]")
        if key.is_expired(now):
            raise InvalidArgument(f"cannot update expired API key [{key.id}]")
        if key.name is None:
            raise InvalidArgument(f"cannot update legacy API key [{key.id}] without name")
        if key.type != kind:
            raise InvalidArgument(f"cannot update API key of type [{key.type}] while expected type is [{kind}]")
        noop = (
            key.version == core.DOC_VERSION
            and spec.expiration is None
            and key.creator == creator
            and (spec.metadata is None or (key.metadata is not None and key.metadata == spec.metadata))
            and (descriptors is None or core.same_descriptors(key.role_descriptors, descriptors))
            and core.same_descriptors(key.limited_by, snapshot)
            and (not spec.set_certificate_identity or key.certificate_identity == spec.certificate_identity)
        )
        if noop:
            return False
        key.creator = creator
        key.limited_by = snapshot
        key.version = core.DOC_VERSION
        if descriptors is not None:
            key.role_descriptors = descriptors
        if spec.metadata is not None:
            key.metadata = spec.metadata
        if spec.expiration is not None:
            key.expiration = self._expiration(spec.expiration, now, update=True)
        if spec.set_certificate_identity:
            key.certificate_identity = spec.certificate_identity
        return True

    # -- invalidate -------------------------------------------------------------------------------------

    async def invalidate(
        self,
        auth: Authentication,
        ids: list[str] | None,
        name: str | None,
        username: str | None,
        realm_name: str | None,
        owner: bool,
    ) -> InvalidateResult:
        messages = []
        if not (ids or name or username or realm_name) and not owner:
            messages.append(
                "One of [api key id(s), api key name, username, realm name] must be specified if [owner] flag is false"
            )
        if (ids or name) and (username or realm_name):
            messages.append(
                "username or realm name must not be specified when the api key id(s) or api key name are specified"
            )
        if owner and (username or realm_name):
            messages.append("neither username nor realm-name may be specified when invalidating owned API keys")
        if ids and name:
            messages.append("only one of [api key id(s), api key name] can be specified")
        if messages:
            raise ValidationError(*messages)
        if is_api_key(auth) and auth.api_key is not None:
            own = bool(ids) and all(i == auth.api_key["id"] for i in ids or [])
        else:
            own = owner or (username == auth.user.username and realm_name == owner_realm(auth)["name"])
        self.authorize(auth, INVALIDATE, own=own)
        selector = KeyFilter(ids=ids, name=name, username=username, realm=realm_name, exclude_invalidated=True)
        if owner:
            selector.username, selector.realm = auth.user.username, owner_realm(auth)["name"]
        keys = await self.repo.find(selector, now_ms())
        may_cross_cluster = auth.permission.grants_action(CC_UPDATE)
        errors: list[KeyplaneError] = []
        targets = []
        for key in keys:
            if key.type == core.CROSS_CLUSTER and not may_cross_cluster:
                errors.append(
                    Forbidden(
                        f"Cannot invalidate cross-cluster API key [{key.id}]. "
                        "This requires [manage_security] cluster privilege or higher"
                    )
                )
            else:
                targets.append(key.id)
        done = await self.repo.invalidate(targets, now_ms())
        for key_id in done:
            self.verified.drop(key_id)
        return InvalidateResult(done, errors)

    def clear_cache(self, ids: list[str]) -> None:
        if not ids or "*" in ids or "_all" in ids:
            self.verified.clear()
            return
        for key_id in ids:
            self.verified.drop(key_id)

    def on_change(self, kind: str) -> None:
        if kind in ("api_keys", "*"):
            self.verified.clear()
        elif kind.startswith("api_key:"):
            self.verified.drop(kind.split(":", 1)[1])

    # -- authentication ---------------------------------------------------------------------------------

    async def authenticate(self, key_id: str, secret: str) -> Verified:
        """The verified key with its permission, or CredentialsRejected with Elasticsearch's reason."""
        return self.cached(key_id, secret) or await self.verify(key_id, secret)

    def cached(self, key_id: str, secret: str) -> Verified | None:
        """:meth:`authenticate` for a key the cache verified already (the realm's every request awaits
        nothing then); None when the cache does not hold it with this secret: :meth:`verify` decides."""
        entry = self.verified.get(key_id, secret)
        return None if entry is None else self._usable(entry, key_id)

    async def verify(self, key_id: str, secret: str) -> Verified:
        """:meth:`authenticate` from the stored key, which the cache then holds."""
        key = await self.repo.get(key_id)
        if key is None:
            raise CredentialsRejected(f"unable to find apikey with id {key_id}")
        if key.invalidated:
            raise CredentialsRejected(f"api key [{key_id}] has been invalidated")
        if hashing.is_slow(key.hash):
            ok = await asyncio.to_thread(hashing.verify_secret, secret, key.hash)
        else:
            ok = hashing.verify_secret(secret, key.hash)
        if not ok:
            raise CredentialsRejected(f"invalid credentials for API key [{key_id}]")
        return self._usable(self.verified.put(key, secret), key_id)

    def _usable(self, entry: Verified, key_id: str) -> Verified:
        """The verified key when it may authenticate a REST request now (its last use recorded)."""
        key = entry.key
        if key.invalidated:
            raise CredentialsRejected(f"api key [{key_id}] has been invalidated")
        if key.type != core.REST:
            raise CredentialsRejected(
                f"authentication expected API key type of [rest], but API key [{key_id}] has type [{key.type}]",
                terminal=True,
            )
        now = now_ms()
        if key.is_expired(now):
            raise CredentialsRejected("api key is expired")
        self.last_use.touch(key, now)
        return entry

    async def flush_last_used(self) -> None:
        await self.repo.record_last_used(self.last_use.take())

    async def remove_inactive(self) -> int:
        return await self.repo.delete_inactive(now_ms() - self.settings.retention_ms)

    async def compact_counts(self) -> list[tuple[str, float]]:
        """The store's own upkeep of its key counts, after a sweep (see the repository)."""
        return await self.repo.compact_counts()

    async def delete_all(self) -> None:
        """Test mode's reset: every key goes; the change notice that follows empties the caches."""
        await self.repo.delete_all()
