from keyplane.security.backends.base import StoredUser
from keyplane.security.password_realm import CredentialCache
from keyplane.security.passwords import hash_password, is_supported_hash, verify_password
from keyplane.security.users import User


def test_bcrypt_in_elasticsearch_format() -> None:
    hashed = hash_password("s3cret-pw")
    assert hashed.startswith("$2a$10$") and is_supported_hash(hashed)
    assert verify_password("s3cret-pw", hashed)
    assert not verify_password("other", hashed)
    assert verify_password("s3cret-pw", "$2y$" + hashed[4:])
    assert not verify_password("x", None)
    assert not is_supported_hash("{PBKDF2}abc")


def test_credential_cache_keeps_no_clear_password() -> None:
    cache = CredentialCache(max_entries=2)
    stored = StoredUser(User("a"), "h")
    cache.put("a", "pw", stored)
    assert cache.get("a", "pw") is stored
    assert cache.get("a", "wrong") is None
    assert all(b"pw" not in entry[0] for entry in cache._entries.values())
    cache.put("b", "pw", stored)
    cache.put("c", "pw", stored)
    assert cache.get("a", "pw") is None  # evicted, oldest first
    cache.clear()
    assert cache.get("c", "pw") is None
