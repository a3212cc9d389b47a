"""The fuzz run's callers and seeded objects, and a keeper that restores the callers it revokes.

The superuser fuzzes every API, so it may well invalidate the caller API key (``owner: true``) or
change the unprivileged caller's password; that is fine, but later requests would then test only
401s. The keeper checks the callers every half second and re-creates what was lost.
"""

from __future__ import annotations

import threading
from typing import Any

import bcrypt
import httpx

from tests.e2e.server import PASSWORD
from tests.fuzz.requests import Accounts, basic

USER_PASSWORD = "fz-caller-password"
ADMIN_PASSWORD = "fz-admin-password"
SEED_PASSWORD = "fz-seed-password"
KEY_ROLES = {"fz_key": {"cluster": ["manage_own_api_key", "manage_connector", "monitor"], "indices": []}}


def _ok(res: httpx.Response) -> dict[str, Any]:
    if res.status_code >= 300:
        raise RuntimeError(f"fuzz setup: {res.request.method} {res.request.url} -> {res.status_code} {res.text}")
    return res.json() if res.content else {}


def _caller_key(admin: httpx.Client) -> str:
    key = _ok(admin.post("/_security/api_key", json={"name": "fz-caller-key", "role_descriptors": KEY_ROLES}))
    return "ApiKey " + key["encoded"]


def _cheap_hash(password: str) -> str:
    """bcrypt at cost 4 (Elasticsearch accepts 4 to 14): verifying it takes ~1 ms, not ~70 ms.

    Every user change empties the server's credential cache, and each worker's next request then
    verifies its caller's password again; at cost 10 that alone would cost most of the run's time.
    """
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4, prefix=b"2a")).decode()


def _user(admin: httpx.Client, name: str, password: str, roles: list[str]) -> str:
    body = {"password_hash": _cheap_hash(password), "roles": roles, "enabled": True}
    _ok(admin.put(f"/_security/user/{name}", json=body))
    return basic(name, password)


def _caller_user(admin: httpx.Client) -> str:
    return _user(admin, "fz_caller", USER_PASSWORD, [])


def _caller_admin(admin: httpx.Client) -> str:
    return _user(admin, "fz_admin", ADMIN_PASSWORD, ["superuser"])


def provision(url: str) -> Accounts:
    admin_auth = basic("elastic", PASSWORD)
    with httpx.Client(base_url=url, headers={"authorization": admin_auth}, timeout=30) as admin:
        for name in ("fz_u1", "fz_u2", "fz_u3"):
            _ok(admin.put(f"/_security/user/{name}", json={"password": SEED_PASSWORD, "roles": ["viewer"]}))
        for name in ("fz_r1", "fz_r2"):
            _ok(admin.put(f"/_security/role/{name}", json={"cluster": ["monitor"]}))
        _ok(admin.put("/_security/privilege", json={"fz-app": {"p1": {"actions": ["data:read/*"]}}}))
        for cid in ("fz-c1", "fz-c2", "fz-c3"):
            _ok(admin.put(f"/_connector/{cid}", json={"index_name": f"search-{cid}", "service_type": "fz"}))
        keys = [_ok(admin.post("/_security/api_key", json={"name": f"fz-key-{i}"}))["id"] for i in range(3)]
        ccs_body = {"name": "fz-ccs", "access": {"search": [{"names": ["*"]}]}}
        ccs = _ok(admin.post("/_security/cross_cluster/api_key", json=ccs_body))
        jobs = [_ok(admin.post("/_connector/_sync_job", json={"id": cid}))["id"] for cid in ("fz-c1", "fz-c2")]
        secret = _ok(admin.post("/_connector/_secret", json={"value": "fz-secret-value"}))["id"]
        grant = {"grant_type": "password", "username": "fz_u1", "password": SEED_PASSWORD}
        profile = _ok(admin.post("/_security/profile/_activate", json=grant))["uid"]
        token = _ok(admin.post("/_security/oauth2/token", json=grant))
        ids = {
            "key": keys,
            "ccskey": [ccs["id"]],
            "job": jobs,
            "secret": [secret],
            "profile": [profile],
            "token": [token["access_token"]],
            "refresh": [token["refresh_token"]],
        }
        return Accounts(admin_auth, _caller_admin(admin), _caller_user(admin), _caller_key(admin), ids)


class Keeper(threading.Thread):
    def __init__(self, url: str, accounts: Accounts) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.accounts = accounts
        self.stopping = threading.Event()
        self.restored = 0
        self.lost_superuser = False

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stopping.wait(0.5):
                try:
                    self._check(client)
                except (httpx.HTTPError, RuntimeError):
                    continue  # the server is busy, locked or down; the fuzz tests report that themselves

    def _check(self, client: httpx.Client) -> None:
        acc = self.accounts
        check = "/_security/_authenticate"
        if client.get(check, headers={"authorization": acc.elastic}).status_code == 401:
            self.lost_superuser = True
            return
        admin = httpx.Client(base_url=self.url, headers={"authorization": acc.elastic}, timeout=30)
        with admin:
            if client.get(check, headers={"authorization": acc.admin}).status_code == 401:
                acc.admin = _caller_admin(admin)
                self.restored += 1
            if client.get(check, headers={"authorization": acc.user}).status_code == 401:
                acc.user = _caller_user(admin)
                self.restored += 1
            if client.get(check, headers={"authorization": acc.apikey}).status_code == 401:
                acc.apikey = _caller_key(admin)
                self.restored += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
