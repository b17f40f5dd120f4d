"""Access tokens made by hand: unsigned or re-signed JWTs for what a client gets wrong or
forges, and a correctly signed but expired one made with auth's real signing key."""

import base64
import hashlib
import hmac
import json
import sqlite3
import time

from .platform import INTERNAL_SECRET


def b64url(data):
    """base64url without padding, as JWTs use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsigned_token(header, claims, signature=b""):
    """A JWT of the `header` and `claims` objects with `signature` as its third part."""
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()),
                     b64url(signature)])


def token_claims(token):
    """The claims object of a JWT (not verified)."""
    return json.loads(b64url_decode(token.split(".")[1]))


def forged_token(token, **changes):
    """`token` with its claims changed and its signature kept: a forgery."""
    header, _, signature = token.split(".")
    claims = dict(token_claims(token), **changes)
    return ".".join([header, b64url(json.dumps(claims).encode()), signature])


def expired_token(data_dir, claims, secret=INTERNAL_SECRET):
    """A token signed with auth's real current key, but expired an hour ago. The key is
    read from auth's SQLite database under `data_dir` and decrypted the way
    docs/services.md describes: PyNaCl's XChaCha20-Poly1305 with the key id as associated
    data, under HMAC-SHA256(secret, "vigil key derivation v1: auth signing keys at rest")."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
    db = sqlite3.connect(data_dir / "auth.db")
    try:
        kid, stored = db.execute(
            "SELECT kid, secret_key FROM signing_keys ORDER BY created_at DESC LIMIT 1").fetchone()
    finally:
        db.close()
    if not stored.startswith("v1."):
        raise AssertionError("the private key is not stored encrypted")
    sealed = b64url_decode(stored[3:])
    storage_key = hmac.new(secret.encode(), b"vigil key derivation v1: auth signing keys at rest",
                           hashlib.sha256).digest()
    private = crypto_aead_xchacha20poly1305_ietf_decrypt(sealed[24:], kid.encode(), sealed[:24],
                                                         storage_key)
    key = Ed25519PrivateKey.from_private_bytes(private[:32])
    now = int(time.time())
    header = b64url(json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": kid}).encode())
    body = b64url(json.dumps(dict(claims, iat=now - 7200, nbf=now - 7200, exp=now - 3600)).encode())
    return f"{header}.{body}." + b64url(key.sign(f"{header}.{body}".encode()))


def identity_header(subject, secret, valid_for=60):
    """An X-Vigil-Identity value for `subject` signed with `secret`, as the services sign
    it between themselves: v1.<subject>.<expiry>.<hex HMAC-SHA256 of what precedes>."""
    signed = f"v1.{subject}.{int(time.time()) + valid_for}"
    return signed + "." + hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
