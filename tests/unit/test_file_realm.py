"""The file realm's formats, its realm and place in the chain, file service tokens and outside-change notices."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from keyplane.errors import CredentialsRejected, Unauthenticated
from keyplane.security import realm_files
from keyplane.security.authentication import UserRealms
from keyplane.security.file_realm import FILE_REALM, FileRealm
from keyplane.security.identity import Authentication
from keyplane.security.outside_changes import OutsideChanges, announce, notice_path
from keyplane.security.passwords import hash_password, verify_password
from keyplane.security.permission import Permission
from keyplane.security.users import User
from keyplane.service_accounts import core, file_tokens
from keyplane.service_accounts.core import TokenId
from keyplane.service_accounts.file_tokens import FileServiceTokens
from keyplane.service_accounts.realm import ServiceAccountRealm

URI = "/_security/_authenticate"


def _pbkdf2(password: str, iterations: int = 10000) -> str:
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 32)
    return f"{{PBKDF2}}{iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


class Roles:
    def known_permission(self, names: list[str]) -> tuple[Permission, list[str], list[str]] | None:
        return None

    async def permission(self, names: list[str]) -> tuple[Permission, list[str], list[str]]:
        return Permission([]), list(names), []


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_users_file_skips_malformed_lines_and_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    bcrypt_hash = hash_password("ann-secret")
    lines = [
        "# a comment",
        f"ann:{bcrypt_hash}",
        "",
        "no-colon-here",
        "carl:",
        "elastic:" + bcrypt_hash,  # the built-in users stay reserved
        "dora:plain-text-password",  # clear text is refused
        f"  bob:{_pbkdf2('bob-secret')}  ",
    ]
    users, problems = realm_files.parse_users(lines, path)
    assert sorted(users) == ["ann", "bob"]
    assert [p.split("line [")[1].split("]")[0] for p in problems] == ["4", "5", "6", "7"]
    assert all(str(path) in p for p in problems)
    assert not any("plain-text-password" in p or bcrypt_hash in p for p in problems)  # never the line's text


def test_users_roles_file_reads_role_to_users_lines_as_user_to_roles(tmp_path: Path) -> None:
    lines = ["admin:ann, bob", "# comment", "viewer:bob", "broken", "viewer:", "admin:ann"]
    roles, problems = realm_files.parse_users_roles(lines, tmp_path / "users_roles")
    assert roles == {"ann": ["admin"], "bob": ["admin", "viewer"]}
    assert len(problems) == 2 and "line [4]" in problems[0] and "line [5]" in problems[1]
    text = realm_files.users_roles_text(roles)
    assert text == "admin:ann,bob\nviewer:bob\n"
    assert realm_files.parse_users_roles(text.splitlines(), tmp_path)[0] == roles


def test_files_are_written_atomically_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "config" / "users"
    realm_files.write_atomically(path, "ann:hash\n")
    realm_files.write_atomically(path, realm_files.users_text({"bob": "h2", "ann": "h1"}))
    assert path.read_text() == "ann:h1\nbob:h2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["users"]  # no temporary file left


def _write_users(config: Path, users: dict[str, str], roles: dict[str, list[str]]) -> None:
    realm_files.write_atomically(config / "users", realm_files.users_text(users))
    realm_files.write_atomically(config / "users_roles", realm_files.users_roles_text(roles))


def test_file_realm_authenticates_from_the_files_and_rereads_them_on_change(tmp_path: Path) -> None:
    _write_users(tmp_path, {"ann": hash_password("ann-secret")}, {"ann": ["viewer", "editor"]})
    realm = FileRealm(tmp_path, Roles())
    assert realm.reload_if_changed() and not realm.reload_if_changed()

    auth = _run(realm.authenticate("ann", "ann-secret"))
    assert auth.user.username == "ann" and auth.user.roles == ["editor", "viewer"]
    # One user object while the files stay (the native realm's callers are kept by it).
    assert realm.user("ann") is realm.user("ann") is auth.user
    assert _run(realm.authenticate("ann", "ann-secret")) is not None
    assert (realm.cache.hits, realm.cache.misses, len(realm.cache)) == (1, 1, 1)
    assert auth.authentication_realm == FILE_REALM == auth.lookup_realm and auth.user.realm == FILE_REALM
    assert _run(realm.authenticate("ann", "wrong")) is None
    assert _run(realm.authenticate("nobody", "ann-secret")) is None

    # A rewrite (new inode) is seen; the cached check of the old hash does not outlive it.
    _write_users(tmp_path, {"ann": _pbkdf2("new-secret"), "bob": hash_password("bob-secret")}, {})
    _run(realm.refresh())
    assert _run(realm.authenticate("ann", "ann-secret")) is None
    assert _run(realm.authenticate("ann", "new-secret")).user.roles == []
    assert realm.user("ann") is not auth.user and realm.user("ann").roles == []  # type: ignore[union-attr]
    assert realm.user("bob") is not None and realm.user("carl") is None

    (tmp_path / "users").unlink()
    _run(realm.refresh())
    assert not realm.knows("ann") and _run(realm.authenticate("ann", "new-secret")) is None


class Native:
    """The native realm: its users and passwords in memory."""

    def __init__(self) -> None:
        self.users = {"ann": (User("ann", roles=["native_role"]), "native-secret")}
        self.forgotten = 0

    async def authenticate(self, username: str, password: str, uri: str) -> Authentication:
        found = self.users.get(username)
        if found is None or found[1] != password:
            raise Unauthenticated(f"unable to authenticate user [{username}] for REST request [{uri}]")
        return await self.for_user(found[0])

    async def lookup(self, username: str) -> User | None:
        found = self.users.get(username)
        return None if found is None else found[0]

    async def for_user(self, user: User, authenticating: Authentication | None = None) -> Authentication:
        return Authentication(user, user, user.realm, user.realm, "realm", user.roles, [], Permission([]))

    def forget_users(self) -> None:
        self.forgotten += 1


def test_the_file_realm_comes_before_the_native_one_and_a_wrong_password_goes_on(tmp_path: Path) -> None:
    _write_users(tmp_path, {"ann": hash_password("file-secret"), "bob": hash_password("bob-secret")}, {})
    file_realm = FileRealm(tmp_path, Roles())
    file_realm.reload_if_changed()
    native = Native()
    chain = UserRealms(file_realm, native)

    assert _run(chain.authenticate("ann", "file-secret", URI)).authentication_realm == FILE_REALM
    # As in Elasticsearch: a user the file realm knows but whose password does not match there is
    # tried by the native realm, which may know the same name with another password.
    assert _run(chain.authenticate("ann", "native-secret", URI)).authentication_realm["name"] == "default_native"
    with pytest.raises(Unauthenticated):
        _run(chain.authenticate("bob", "wrong", URI))
    assert _run(chain.lookup("ann")).realm == FILE_REALM  # run-as and token owners: file first
    by_token = _run(chain.for_user(_run(chain.lookup("bob"))))
    assert by_token.lookup_realm == FILE_REALM
    chain.forget_users()
    assert native.forgotten == 1 and file_realm.cache.get("ann", "file-secret") is None


def test_service_token_file_hash_is_elasticsearch_pbkdf2_stretch() -> None:
    hashed = file_tokens.hash_token_secret("s3cr3t")
    assert hashed.startswith("{PBKDF2_STRETCH}10000$")
    assert verify_password("s3cr3t", hashed) and not verify_password("other", hashed)


def test_service_tokens_file_parse_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "service_tokens"
    good = file_tokens.hash_token_secret("right")
    path.write_text(
        "\n".join(
            [
                f"elastic/fleet-server/tok1:{good}",
                "elastic/fleet-server/tok2",  # no hash
                f"elastic/fleet-server:{good}",  # no token name
                "elastic/kibana/clear:clear-text",  # not a hash
                f"elastic/kibana/k1:{hash_password('kibana-secret')}",
            ]
        )
    )
    tokens, problems = file_tokens.read(path)
    assert sorted(tokens) == ["elastic/fleet-server/tok1", "elastic/kibana/k1"]
    assert [p.split("line [")[1][0] for p in problems] == ["2", "3", "4"]

    store = FileServiceTokens(path)
    _run(store.refresh())
    assert store.names("elastic/fleet-server") == ["tok1"] and store.names("elastic/auto-ops") == []
    tok1 = TokenId("elastic/fleet-server", "tok1")
    assert _run(store.verify(tok1, "right")) and _run(store.verify(tok1, "right"))  # the second from the cache
    assert not _run(store.verify(tok1, "wrong"))
    assert _run(store.verify(TokenId("elastic/kibana", "k1"), "kibana-secret"))


class IndexTokens:
    """The stored tokens: only elastic/fleet-server/tok1 with the secret 'index-secret'."""

    async def authenticate(self, token: TokenId, secret: str) -> str:
        if (token.key, secret) != ("elastic/fleet-server/tok1", "index-secret"):
            raise CredentialsRejected(f"failed to authenticate service account [{token.account}]")
        return token.account


def test_file_tokens_are_tried_before_stored_ones_and_show_their_source(tmp_path: Path) -> None:
    path = tmp_path / "service_tokens"
    path.write_text(f"elastic/fleet-server/tok1:{file_tokens.hash_token_secret('file-secret')}\n")
    store = FileServiceTokens(path)
    _run(store.refresh())
    realm = ServiceAccountRealm(IndexTokens(), store)  # type: ignore[arg-type]
    tok1 = TokenId("elastic/fleet-server", "tok1")

    auth = _run(realm.authenticate(core.encode(tok1, "file-secret")))
    assert auth.user.username == "elastic/fleet-server" and auth.token == {
        "name": "tok1",
        "type": "_service_account_file",
    }
    # The same name in the store with another secret: the file does not match, the store does.
    auth = _run(realm.authenticate(core.encode(tok1, "index-secret")))
    assert auth.token == {"name": "tok1", "type": "_service_account_index"}
    with pytest.raises(CredentialsRejected):
        _run(realm.authenticate(core.encode(tok1, "neither")))


def test_outside_change_notices_are_seen_once(tmp_path: Path) -> None:
    assert notice_path("postgresql://db/x") is None
    path = notice_path(f"sqlite:///{tmp_path / 'keyplane.db'}")
    assert path == tmp_path / "keyplane.db.changes"
    announce(path, ["users"])  # before the server started: not for it
    changes = OutsideChanges(path)
    assert changes.poll() == []
    announce(path, ["users", "nonsense"])
    assert changes.poll() == ["users"]
    assert changes.poll() == []
    announce(path, ["users"])  # the same text again is a new notice (a new file)
    assert _run(changes.changes()) == ["users"]


def test_an_unreadable_file_counts_as_empty_for_the_server_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "users").write_bytes(b"ann:\xff\xfe\n")
    realm_files.write_atomically(tmp_path / "users_roles", "viewer:ann\n")
    realm = FileRealm(tmp_path, Roles())
    assert realm.reload_if_changed() and not realm.knows("ann")
    (tmp_path / "service_tokens").write_bytes(b"\xff")
    tokens, problems = file_tokens.read_leniently(tmp_path / "service_tokens")
    assert tokens == {} and problems == [
        f"could not read service_tokens file [{tmp_path / 'service_tokens'}] (it is not UTF-8 text); it counts as empty"
    ]
    with pytest.raises(UnicodeDecodeError):  # the commands must not rewrite what they could not read
        file_tokens.read(tmp_path / "service_tokens")
