"""Password hashing and ``password_hash`` acceptance, as Elasticsearch's Hasher does them."""

from __future__ import annotations

import base64
import hashlib
import os

import bcrypt
import pytest

from keyplane.errors import InvalidArgument
from keyplane.security import passwords


def _pbkdf2(password: str, iterations: int, *, stretch: bool = False, salt_len: int = 32, key_len: int = 32) -> str:
    """A hash in Elasticsearch's format, built independently of the module under test."""
    secret = hashlib.sha512(password.encode()).hexdigest().encode() if stretch else password.encode()
    salt = os.urandom(salt_len)
    key = hashlib.pbkdf2_hmac("sha512", secret, salt, iterations, key_len)
    prefix = "{PBKDF2_STRETCH}" if stretch else "{PBKDF2}"
    return f"{prefix}{iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def test_long_passwords_count_their_first_72_bytes() -> None:
    long = "p" * 80
    hashed = passwords.hash_password(long)
    assert hashed.startswith("$2a$10$")
    assert passwords.verify_password(long, hashed)
    assert passwords.verify_password("p" * 72 + "something else", hashed)
    assert not passwords.verify_password("p" * 71, hashed)
    # Bytes, not characters: 30 three-byte characters are 90 bytes, cut at 72.
    wide = "€" * 30
    assert passwords.verify_password("€" * 24 + "x", passwords.hash_password(wide))


def test_long_password_against_a_hash_made_elsewhere() -> None:
    # A bcrypt hash of the first 72 bytes, as Elasticsearch's own BCrypt computes for a longer password.
    hashed = bcrypt.hashpw(b"k" * 72, bcrypt.gensalt(4)).decode().replace("$2b$", "$2a$", 1)
    assert passwords.verify_password("k" * 100, hashed)


@pytest.mark.parametrize("iterations", [1000, 10000])
@pytest.mark.parametrize("stretch", [False, True])
def test_pbkdf2_hashes_verify(iterations: int, stretch: bool) -> None:
    hashed = _pbkdf2("pbkdf2-secret", iterations, stretch=stretch)
    passwords.check_hash(hashed)
    assert passwords.verify_password("pbkdf2-secret", hashed)
    assert not passwords.verify_password("pbkdf2-secret!", hashed)


def test_pbkdf2_key_length_follows_the_stored_key() -> None:
    hashed = _pbkdf2("pw-pw-pw", 1000, key_len=64)
    assert passwords.verify_password("pw-pw-pw", hashed)


def test_malformed_pbkdf2_hashes_fail_without_raising() -> None:
    short_salt = _pbkdf2("pw-pw-pw", 1000, salt_len=4)
    assert not passwords.verify_password("pw-pw-pw", short_salt)
    assert not passwords.verify_password("pw-pw-pw", "{PBKDF2}1000$!!notbase64$abc")
    assert not passwords.verify_password("pw-pw-pw", "{PBKDF2}1000$c2FsdHNhbHQ=$")
    assert not passwords.verify_password("pw-pw-pw", "{PBKDF2}2000$c2FsdHNhbHQ=$abcd")
    assert not passwords.verify_password("pw-pw-pw", "{SSHA256}whatever")


def test_bcrypt_costs_and_spellings() -> None:
    for prefix in ("$2a$", "$2b$", "$2y$"):
        hashed = prefix + bcrypt.hashpw(b"cost-test", bcrypt.gensalt(4)).decode()[4:]
        passwords.check_hash(hashed)
        assert passwords.verify_password("cost-test", hashed)
    with pytest.raises(InvalidArgument, match=r"^unknown hash function \[bcrypt15\]$"):
        passwords.check_hash("$2a$15$" + "a" * 53)


def test_refused_hashes_name_every_accepted_algorithm() -> None:
    for refused in ("{SSHA256}abc", "{SHA}abc", "{MD5}abc", "clear-text", "", "$2a$xx$" + "a" * 53):
        with pytest.raises(InvalidArgument) as exc:
            passwords.check_hash(refused)
        assert str(exc.value).startswith("The provided password hash is not a hash or it could not be resolved")
        assert str(exc.value).endswith(
            "[bcrypt, bcrypt4, bcrypt5, bcrypt6, bcrypt7, bcrypt8, bcrypt9, bcrypt10, bcrypt11, bcrypt12, "
            "bcrypt13, bcrypt14, pbkdf2, pbkdf2_1000, pbkdf2_10000, pbkdf2_50000, pbkdf2_100000, pbkdf2_500000, "
            "pbkdf2_1000000, pbkdf2_stretch, pbkdf2_stretch_1000, pbkdf2_stretch_10000, pbkdf2_stretch_50000, "
            "pbkdf2_stretch_100000, pbkdf2_stretch_500000, pbkdf2_stretch_1000000]"
        )
    with pytest.raises(InvalidArgument, match=r"^unknown hash function \[pbkdf2_2000\]$"):
        passwords.check_hash("{PBKDF2}2000$abc$def")
    with pytest.raises(InvalidArgument, match=r"^unknown hash function \[pbkdf2_stretch_5\]$"):
        passwords.check_hash("{PBKDF2_STRETCH}5$abc$def")
    with pytest.raises(InvalidArgument, match="number of iterations could not be determined"):
        passwords.check_hash("{PBKDF2}abc")


def test_minimum_length_counts_utf16_units_as_elasticsearch() -> None:
    from keyplane.security.users import password_messages

    assert password_messages("\U0001f600" * 3) == []  # three emoji are six Java chars
    assert password_messages("é" * 5) == ["passwords must be at least [6] characters long"]
