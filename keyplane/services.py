"""Wiring: builds the store, repositories and services once, and starts and stops them."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from keyplane import tracebacks
from keyplane.apikeys.backends.expiring.sql import SqlExpiringKeyRepository
from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.expiring import ExpiringKeys
from keyplane.apikeys.grants import ApiKeyGrants
from keyplane.apikeys.lifetime import LifetimeLimit, LifetimePolicy
from keyplane.apikeys.realm import ApiKeyRealm
from keyplane.apikeys.service import ApiKeyService, ApiKeySettings
from keyplane.config import SETTINGS, Settings
from keyplane.connectors.backends.sql import SqlConnectorRepository, SqlSecretRepository, SqlSyncJobRepository
from keyplane.connectors.secrets import SecretBox
from keyplane.connectors.service import ConnectorService
from keyplane.errors import StoreUnavailable
from keyplane.indices.backends.sql import SqlDocumentRepository, SqlIndexRepository
from keyplane.indices.by_query_service import ByQueryService
from keyplane.indices.service import IndexService
from keyplane.profiles.backends.sql import SqlProfileRepository
from keyplane.profiles.service import ProfileService
from keyplane.security import file_roles
from keyplane.security.authentication import Authenticator, UserRealms
from keyplane.security.backends.sql import (
    SqlIndexSettingsRepository,
    SqlPrivilegeRepository,
    SqlRoleMappingRepository,
    SqlRoleRepository,
    SqlUserRepository,
)
from keyplane.security.file_realm import FileRealm
from keyplane.security.file_roles import FileRoles
from keyplane.security.outside_changes import OutsideChanges, notice_path
from keyplane.security.password_realm import PasswordRealm
from keyplane.security.privilege_service import PrivilegeService
from keyplane.security.role_mapping_service import RoleMappingService
from keyplane.security.role_service import RoleService
from keyplane.security.roles import RoleDescriptor
from keyplane.security.settings_service import SecuritySettingsService
from keyplane.security.user_service import UserService
from keyplane.security.users import User
from keyplane.service_accounts.backends.sql import SqlServiceTokenRepository
from keyplane.service_accounts.file_tokens import FileServiceTokens
from keyplane.service_accounts.realm import ServiceAccountRealm
from keyplane.service_accounts.service import ServiceAccountService
from keyplane.store import properties
from keyplane.store.database import Database, prepare_data_dir
from keyplane.store.migrations import migrate
from keyplane.timevalue import now_ms
from keyplane.tokens.backends.sql import SqlTokenRepository
from keyplane.tokens.service import TokenService
from keyplane.upstream.client import UpstreamClient
from keyplane.upstream.forward import Forwarder

if TYPE_CHECKING:
    from keyplane.audit.trail import AuditTrail
    from keyplane.metrics.exposition import Metrics

log = logging.getLogger("keyplane")


def _lifetime_policy(settings: Settings) -> LifetimePolicy:
    """The key-lifetime settings as the API-key rules take them, with the names their messages cite."""
    env = {declared.name: declared.env for declared in SETTINGS}

    def limit(label: str, prefix: str) -> LifetimeLimit:
        max_name, require_name = prefix + "max_expiration_ms", prefix + "require_expiration"
        return LifetimeLimit(
            label,
            getattr(settings, max_name),
            getattr(settings, require_name),
            max_setting=env[max_name],
            require_setting=env[require_name],
        )

    return LifetimePolicy(limit("API key", "api_key_"), limit("cross-cluster API key", "cross_cluster_api_key_"))


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.database_url:
            self.db = Database(settings.database_url, synchronous=settings.sqlite_synchronous)
            if not settings.secrets_key:
                prepare_data_dir(settings.data_dir)  # it holds the key file
        else:
            self.db = Database.for_data_dir(settings.data_dir, synchronous=settings.sqlite_synchronous)
        user_repo = SqlUserRepository(self.db)
        profile_repo = SqlProfileRepository(self.db)
        self.users = UserService(user_repo, profile_repo.by_user)
        self.privileges = PrivilegeService(SqlPrivilegeRepository(self.db))
        # roles.yml in the config dir, resolved between the built-in and the stored roles.
        self.file_roles = FileRoles(settings.config_dir / file_roles.NAME)
        self.roles = RoleService(SqlRoleRepository(self.db), self.privileges, self.file_roles)
        self.role_mappings = RoleMappingService(SqlRoleMappingRepository(self.db))
        self.security_settings = SecuritySettingsService(SqlIndexSettingsRepository(self.db))
        # The file realm (config dir's users and users_roles) before the native one, as in Elasticsearch.
        self.file_realm = FileRealm(settings.config_dir, self.roles)
        self.password_realm = PasswordRealm(user_repo, self.roles)
        self.passwords = UserRealms(self.file_realm, self.password_realm)
        self.apikeys = ApiKeyService(
            SqlApiKeyRepository(self.db),
            self._roles_of,
            ApiKeySettings(
                hash_algorithm=settings.api_key_hash,
                retention_ms=settings.api_key_retention_ms,
                last_used_granularity_ms=settings.api_key_last_used_granularity_ms,
                lifetime=_lifetime_policy(settings),
            ),
            profile_repo.by_user,
        )
        self.expiring_api_keys = ExpiringKeys(self.apikeys, SqlExpiringKeyRepository(self.db))
        self.tokens = TokenService(SqlTokenRepository(self.db), self.passwords)
        self.file_tokens = FileServiceTokens(settings.config_dir / "service_tokens")
        self.service_accounts = ServiceAccountService(SqlServiceTokenRepository(self.db), self.file_tokens)
        self.connectors = ConnectorService(
            SqlConnectorRepository(self.db),
            SqlSyncJobRepository(self.db),
            SqlSecretRepository(self.db),
            SecretBox.load(settings.secrets_key, settings.data_dir / "secrets.key"),
        )
        self.indices = IndexService(SqlIndexRepository(self.db), SqlDocumentRepository(self.db))
        self.by_query = ByQueryService(self.indices)
        self.authenticator = Authenticator(
            self.passwords,
            ApiKeyRealm(self.apikeys),
            self.tokens,
            ServiceAccountRealm(self.service_accounts, self.file_tokens),
        )
        self.api_key_grants = ApiKeyGrants(self.apikeys, self.authenticator)
        self.profiles = ProfileService(profile_repo, self.roles, self.privileges, self.authenticator)
        self.upstream = _forwarder(settings)
        # Set by the app when the settings turn them on (keyplane.app); None costs a request one check.
        self.audit: AuditTrail | None = None
        self.metrics: Metrics | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.cluster_uuid = ""
        self.node_id = secrets.token_urlsafe(16)[:22]
        self.db.on_change(self._on_change)
        # SQLite has no notices between processes: admin commands (reset-password) leave a file instead.
        outside = notice_path(self.db.url)
        self.outside_changes = None if outside is None else OutsideChanges(outside)

    async def _roles_of(self, user: User) -> list[RoleDescriptor]:
        descriptors, _ = await self.roles.resolve(user.roles)
        return descriptors

    def _on_change(self, kind: str) -> None:
        if kind in ("users", "*"):
            self.passwords.forget_users()
        if kind in ("roles", "*"):
            self.roles.invalidate()
        self.apikeys.on_change(kind)
        if kind in ("service_tokens", "*"):
            self.service_accounts.forget()
        self.tokens.on_change(kind)

    async def start(self) -> None:
        await self.db.open()
        await migrate(self.db)
        self.cluster_uuid = await properties.cluster_uuid(self.db)
        if not await self.users.bootstrap_elastic(self.settings.elastic_password):
            password = secrets.token_urlsafe(18)
            await self.users.bootstrap_elastic(password)
            # Printed once, plainly, as Elasticsearch does on its first start.
            print(
                "\n"
                f"  Keyplane generated a password for the 'elastic' superuser: {password}\n"
                "  Change it with: curl -u elastic -X POST http://HOST:PORT/_security/user/elastic/_password "
                "-H 'Content-Type: application/json' -d '{\"password\": \"...\"}'\n"
                "  or start with ELASTIC_PASSWORD=... to set it.\n",
                flush=True,
            )
        await self._read_files()
        if self.settings.upstream_url:
            log.info("content-index requests are forwarded to the upstream cluster %s", self.settings.upstream_url)
        if self.settings.test_mode:
            log.warning("KEYPLANE_TEST_MODE is on: POST /_keyplane/_reset wipes all state. Never use it in production.")
        self._tasks = [
            asyncio.create_task(self._every(1.0, self.apikeys.flush_last_used)),
            asyncio.create_task(self._every(1.0, self._read_files)),
            asyncio.create_task(self._every(3600.0, self._remove_inactive, first=5.0)),
        ]

    async def _read_files(self) -> None:
        """Read the config dir's realm and roles files again when they changed, and what commands announced."""
        if await self.file_roles.refresh():
            self.roles.invalidate()
        await self.file_realm.refresh()
        await self.file_tokens.refresh()
        if self.outside_changes is not None:
            for kind in await self.outside_changes.changes():
                self._on_change(kind)

    async def _remove_inactive(self) -> None:
        started = time.perf_counter()
        removed = await self.apikeys.remove_inactive()
        if self.metrics is not None:
            self.metrics.recorder.swept(removed, time.perf_counter() - started)
        if removed:
            log.info("removed %d API keys invalidated or expired before the retention period", removed)
        for name, seconds in await self.apikeys.compact_counts():
            log.info("rewrote %s in %.0f ms: its file had grown far beyond its rows", name, seconds * 1000)
        await self.tokens.remove_expired(now_ms() - 86_400_000)

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[Any]], first: float | None = None) -> None:
        """Run a maintenance job forever; a failure is logged and retried at the next tick."""
        await asyncio.sleep(seconds if first is None else first)
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                # An outage is expected and already reported by the store; the job runs again next tick.
                log.warning("background job %s skipped: %s", getattr(job, "__name__", job), exc)
            except Exception as exc:  # noqa: BLE001 - keep maintenance alive
                log.error("background job %s failed\n%s", getattr(job, "__name__", job), tracebacks.without_values(exc))
            await asyncio.sleep(seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.apikeys.flush_last_used()
        except Exception:  # noqa: BLE001 - the store may already be gone
            log.warning("could not write the last use of API keys at shutdown")
        await self.db.close()

    async def reset(self) -> None:
        """Test mode only: remove everything a test can create, keeping ``elastic``."""
        await self.users.delete_all_except("elastic")
        await self.roles.delete_all()
        await self.privileges.delete_all()
        await self.role_mappings.delete_all()
        await self.security_settings.delete_all()
        await self.profiles.delete_all()
        await self.service_accounts.delete_all()
        await self.apikeys.delete_all()
        await self.tokens.delete_all()
        await self.connectors.reset()
        await self.indices.reset()
        async with self.db.transaction() as conn:
            conn.notify("*")


def _forwarder(settings: Settings) -> Forwarder | None:
    """The forwarding of content-index requests, when an upstream cluster is set."""
    if settings.upstream_url is None:
        return None
    client = UpstreamClient(
        settings.upstream_url,
        api_key=settings.upstream_api_key,
        username=settings.upstream_username,
        password=settings.upstream_password,
        ca_certs=settings.upstream_ca_certs,
        verify=settings.upstream_verify_certificates,
        timeout_ms=settings.upstream_timeout_ms,
    )
    return Forwarder(client)
