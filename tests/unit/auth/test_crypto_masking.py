"""Field encryption (AES-GCM, key ids) and masking — pure."""

from __future__ import annotations

import os

import pytest

from auth.crypto import FieldCipher, mask
from auth.masking import mask_numbers
from auth.passwords import Passwords
from auth.ratelimit import LoginThrottle


def test_sealed_fields_round_trip_rotate_and_refuse_tampering():
    k1, k2 = os.urandom(32), os.urandom(32)
    old = FieldCipher({"k1": k1}, ["rrn"])
    sealed = old.seal_attributes({"rrn": "900101-1234567", "tier": "gold"})
    assert sealed["tier"] == "gold" and sealed["rrn"].startswith("enc:v1:k1:") and "1234567" not in sealed["rrn"]
    assert old.open_attributes(sealed)["rrn"] == "************67"  # masked unless revealed
    rotated = FieldCipher({"k2": k2, "k1": k1}, ["rrn"])  # new key first, the old one still decrypts
    assert rotated.open_attributes(sealed, reveal=True)["rrn"] == "900101-1234567"
    assert rotated.seal_attributes({"rrn": "x"})["rrn"].startswith("enc:v1:k2:")
    blob = sealed["rrn"]
    tampered = blob[:-4] + ("AAAA" if not blob.endswith("AAAA") else "BBBB")
    assert rotated.open_attributes({"rrn": tampered}, reveal=True)["rrn"] == "********"
    with pytest.raises(ValueError):  # ciphertext bound to its field
        rotated.decrypt("card_token", blob)
    with pytest.raises(ValueError):
        FieldCipher({"k": b"short"}, ["rrn"])
    assert mask("12") == "**"


def test_caller_numbers_masked_at_any_depth():
    payload = {"caller_num": "01012345678", "customer": {"phone": "0212345678", "phones": ["01099998888"], "name": "홍길동"}}
    masked = mask_numbers(payload)
    assert masked["caller_num"] == "010****5678" and masked["customer"]["phones"] == ["010****8888"]
    assert masked["customer"]["name"] == "홍길동" and payload["caller_num"] == "01012345678"


def test_argon2_rehash_when_parameters_change():
    from argon2 import PasswordHasher

    weak = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    stored = weak.hash("pin-1234")
    ok, new = Passwords().verify("pin-1234", stored)
    assert ok and new is not None and new.startswith("$argon2id$")
    assert Passwords().verify("wrong", stored) == (False, None)


def test_throttle_window_and_unlock():
    now = [1000.0]
    t = LoginThrottle(lambda: now[0], account_failures=2, address_failures=100, window=10, lockout=30)
    assert t.failure("a", "ip") == []
    now[0] += 11  # outside the window: the first failure no longer counts
    assert t.failure("a", "ip") == []
    assert t.failure("a", "ip") == ["account"] and t.retry_after("a", "ip") == 30
    now[0] += 31
    assert t.retry_after("a", "ip") is None
