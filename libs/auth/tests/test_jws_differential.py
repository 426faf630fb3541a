"""Differential test: our compact-JWS verifier gives PyJWT's verdict on every token of a corpus.

PyJWT (``jwt.decode`` with the key the ``kid`` names, ``algorithms=[its algorithm]``, our audience,
the key's issuer, leeway and required claims) is the oracle: the same tokens are accepted, with the
same claims, and refused ones raise the error class PyJWT's exception maps to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256

from flashline_auth import KeySet, SigningKey, TokenExpired, TokenInvalid, TokenVerifier, UntrustedIssuer
from flashline_auth.errors import AuthError
from flashline_auth.verification import _REQUIRED, _b64url

AUD = "flashline"
LEEWAY = 5.0
NOW = int(time.time())

ED = SigningKey.generate(kid="ed-1", issuer="flashline-identity")
ES = SigningKey(kid="es-1", issuer="flashline-cart", private_key=ec.generate_private_key(ec.SECP256R1()))
RS = SigningKey.generate(kid="rs-1", issuer="idp.example", algorithm="RS256")
STRANGER = SigningKey.generate(kid="nobody", issuer="flashline-identity")
RS_STRANGER = SigningKey.generate(kid="rs-nobody", issuer="idp.example", algorithm="RS256")
KEYS = KeySet.of([ED.trusted(), ES.trusted(["cart"]), RS.trusted()])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    """A base64url segment from a JSON value, or from raw bytes as they are."""
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


def sign(key: SigningKey, signing_input: str) -> str:
    private = key.private_key
    if isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(SHA256())))
        return b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    if isinstance(private, rsa.RSAPrivateKey):
        return b64(private.sign(signing_input.encode(), PKCS1v15(), SHA256()))
    return b64(private.sign(signing_input.encode()))


def claims(**changes: Any) -> dict[str, Any]:
    """A valid claim set; ``None`` removes a claim."""
    base: dict[str, Any] = {
        "iss": ED.issuer,
        "aud": AUD,
        "iat": NOW,
        "exp": NOW + 600,
        "jti": "j-1",
        "sub": "alice",
        "role": "customer",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(
    key: SigningKey = ED, header: Any = None, payload: Any = None, *, signer: SigningKey | None = None, **changes: Any
) -> str:
    """A token signed by ``signer`` (default: the key it names) over exactly these segments."""
    head = header if header is not None else {"alg": key.algorithm, "kid": key.kid, "typ": "JWT"}
    body = payload if payload is not None else claims(**{"iss": key.issuer, **changes})
    signing_input = f"{segment(head)}.{segment(body)}"
    return f"{signing_input}.{sign(signer or key, signing_input)}"


def signed(key: SigningKey, header_segment: str, payload_segment: str) -> str:
    """A token signed over these exact segments (however they are spelled)."""
    signing_input = f"{header_segment}.{payload_segment}"
    return f"{signing_input}.{sign(key, signing_input)}"


def with_segment(tok: str, index: int, change: Callable[[str], str]) -> str:
    parts = tok.split(".")
    parts[index] = change(parts[index])
    return ".".join(parts)


def hs256_with_public_key(key: SigningKey) -> str:
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{segment({'alg': 'HS256', 'kid': key.kid, 'typ': 'JWT'})}.{segment(claims())}"
    return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def signature_of(tok: str) -> bytes:
    return base64.urlsafe_b64decode(tok.split(".")[2] + "==")


def with_signature(tok: str, signature: bytes) -> str:
    return tok.rpartition(".")[0] + "." + b64(signature)


def non_canonical(seg: str) -> str:
    """The same bytes, spelled with non-zero unused bits in the last character (when it has any)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if len(seg) % 4 in (2, 3):
        return seg[:-1] + alphabet[alphabet.index(seg[-1]) + 1]
    return seg


def corpus() -> Iterator[tuple[str, str]]:
    valid_ed, valid_es, valid_rs = token(ED), token(ES), token(RS)
    yield "valid EdDSA", valid_ed
    yield "valid ES256", valid_es
    yield "valid RS256", valid_rs
    strangers = {"ed": token(ED, signer=STRANGER), "es": token(ES, signer=ED), "rs": token(RS, signer=RS_STRANGER)}
    # signatures
    for tok, alg in ((valid_ed, "ed"), (valid_es, "es"), (valid_rs, "rs")):
        raw = signature_of(tok)
        for i in (0, 31, 32, len(raw) - 1):
            yield f"{alg} signature byte {i} flipped", with_signature(tok, raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :])
        yield f"{alg} signature truncated", with_signature(tok, raw[:-1])
        yield f"{alg} signature extended", with_signature(tok, raw + b"\0")
        yield f"{alg} signature doubled", with_signature(tok, raw + raw)
        yield f"{alg} signature empty", with_signature(tok, b"")
        yield f"{alg} signature non-canonical", with_segment(tok, 2, non_canonical)
        yield f"{alg} signed by a stranger", strangers[alg]
    es_raw = signature_of(valid_es)
    yield "ES256 signature r||s of zeros", with_signature(valid_es, bytes(64))
    yield "ES256 s with a leading zero byte", with_signature(valid_es, es_raw[:32] + b"\0" + es_raw[32:])
    head, _, sig = valid_ed.split(".")
    yield "payload swapped under a signature", f"{head}.{segment(claims(sub='bob'))}.{sig}"
    # base64url spelling
    for index, name in ((0, "header"), (1, "payload"), (2, "signature")):
        yield f"{name} with '!'", with_segment(valid_ed, index, lambda s: s[:5] + "!" + s[6:])
        yield f"{name} with '+'", with_segment(valid_ed, index, lambda s: s[:5] + "+" + s[6:])
        yield f"{name} with '/'", with_segment(valid_ed, index, lambda s: s[:5] + "/" + s[6:])
        yield f"{name} with a space", with_segment(valid_ed, index, lambda s: s[:5] + " " + s[6:])
        yield f"{name} with a newline", with_segment(valid_ed, index, lambda s: s + "\n")
        yield f"{name} with a non-ASCII letter", with_segment(valid_ed, index, lambda s: s[:5] + "é" + s[6:])
        yield f"{name} with a middle '='", with_segment(valid_ed, index, lambda s: s[:4] + "=" + s[4:])
        yield f"{name} one char short", with_segment(valid_ed, index, lambda s: s[:-1])
        for pad in ("=", "==", "===", "===="):
            yield f"{name} + {pad!r}", with_segment(valid_ed, index, lambda s, p=pad: s + p)
        yield f"{name} correctly padded", with_segment(valid_ed, index, lambda s: s + "=" * (-len(s) % 4))
        yield f"{name} non-canonical", with_segment(valid_ed, index, non_canonical)
    # spellings the signature covers: padding and unused bits, at every segment length modulo 4
    for n in range(3):
        head = segment({"alg": "EdDSA", "kid": ED.kid, "x": "x" * n})
        body = segment(claims(x="x" * n))
        for label, change in (
            ("padded", lambda s: s + "=" * (-len(s) % 4)),
            ("+ '='", lambda s: s + "="),
            ("+ '=='", lambda s: s + "=="),
            ("non-canonical", non_canonical),
        ):
            yield f"signed header {label}, length {len(head)}", signed(ED, change(head), body)
            yield f"signed payload {label}, length {len(body)}", signed(ED, head, change(body))
    # segments
    for name, bad in (
        ("empty", ""),
        ("one segment", valid_ed.split(".")[0]),
        ("two segments", ".".join(valid_ed.split(".")[:2])),
        ("four segments", valid_ed + ".AAAA"),
        ("dots only", ".."),
        ("empty header", "." + valid_ed.partition(".")[2]),
        ("empty payload", with_segment(valid_ed, 1, lambda _: "")),
        ("leading space", " " + valid_ed),
        ("trailing newline", valid_ed + "\n"),
    ):
        yield name, bad
    # algorithms and keys
    yield "alg none, no signature", f"{segment({'alg': 'none', 'kid': ED.kid})}.{segment(claims())}."
    yield "alg none, real signature", token(ED, header={"alg": "none", "kid": ED.kid})
    yield "HS256 signed with the public key", hs256_with_public_key(ED)
    yield "HS256 signed with the RSA public key", hs256_with_public_key(RS)
    yield "alg RS256 on an EdDSA kid", token(ED, header={"alg": "RS256", "kid": ED.kid}, signer=RS)
    yield "alg EdDSA on an RS256 kid", token(RS, header={"alg": "EdDSA", "kid": RS.kid}, signer=ED)
    yield "alg RS384 on an RS256 kid", token(RS, header={"alg": "RS384", "kid": RS.kid})
    yield "alg PS256 on an RS256 kid", token(RS, header={"alg": "PS256", "kid": RS.kid})
    yield "alg ES256 on an EdDSA kid", token(ED, header={"alg": "ES256", "kid": ED.kid})
    yield "alg EdDSA on an ES256 kid", token(ES, header={"alg": "EdDSA", "kid": ES.kid}, signer=ED)
    yield "no alg", token(ED, header={"kid": ED.kid})
    yield "unknown kid", token(STRANGER)
    yield "no kid", token(ED, header={"alg": "EdDSA"})
    yield "kid is a number", token(ED, header={"alg": "EdDSA", "kid": 1})
    yield "kid is null", token(ED, header={"alg": "EdDSA", "kid": None})
    yield "duplicate alg keys", token(ED, header=b'{"alg":"none","alg":"EdDSA","kid":"ed-1"}')
    # headers
    for crit_name, crit_header in (
        ("crit unknown", {"crit": ["exp"], "exp": 1}),
        ("crit b64 with b64 true", {"crit": ["b64"], "b64": True}),
        ("crit b64 without b64", {"crit": ["b64"]}),
        ("crit empty", {"crit": []}),
        ("crit not a list", {"crit": "b64", "b64": True}),
        ("crit number", {"crit": [1]}),
        ("crit unhashable", {"crit": [["b64"]]}),
        ("crit null", {"crit": None}),
        ("b64 false with crit", {"crit": ["b64"], "b64": False}),
        ("b64 false without crit", {"b64": False}),
        ("b64 true", {"b64": True}),
        ("b64 zero", {"b64": 0}),
    ):
        yield crit_name, token(ED, header={"alg": "EdDSA", "kid": ED.kid, **crit_header})
    detached_head = segment({"alg": "EdDSA", "kid": ED.kid, "crit": ["b64"], "b64": False})
    yield "b64 false, detached payload", f"{detached_head}..{sign(ED, detached_head + '.' + json.dumps(claims()))}"
    for name, value in (("list", [1, 2]), ("string", "x"), ("number", 1), ("null", None)):
        yield f"header is a {name}", token(ED, header=json.dumps(value).encode())
        yield f"payload is a {name}", token(ED, payload=json.dumps(value).encode())
    yield "header not JSON", token(ED, header=b"not json")
    yield "payload not JSON", token(ED, payload=b"not json")
    yield "payload UTF-16 JSON", token(ED, payload=json.dumps(claims()).encode("utf-16"))
    yield "payload with a BOM", token(ED, payload=b"\xef\xbb\xbf" + json.dumps(claims()).encode())
    yield "payload nested deeply", token(ED, payload=b'{"info":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    yield "payload huge zeros", with_segment(valid_ed, 1, lambda _: "A" * 200_000)
    rnd = random.Random(7)
    yield "payload random bytes", token(ED, payload=rnd.randbytes(3000))
    yield "garbage segments", ".".join("".join(rnd.choice("abc-_!.=é ") for _ in range(50)) for _ in range(3))
    # claims
    for name, changes in (
        ("wrong aud", {"aud": "other"}),
        ("aud list with ours", {"aud": ["other", AUD]}),
        ("aud list without ours", {"aud": ["other"]}),
        ("aud list with a number", {"aud": [AUD, 1]}),
        ("aud empty list", {"aud": []}),
        ("aud empty string", {"aud": ""}),
        ("aud object", {"aud": {AUD: 1}}),
        ("aud number", {"aud": 1}),
        ("wrong iss", {"iss": "flashline-orders"}),
        ("iss number", {"iss": 1}),
        ("expired", {"exp": NOW - 3600}),
        ("expired within leeway", {"exp": NOW - 2}),
        ("expired and wrong iss", {"exp": NOW - 3600, "iss": "x"}),
        ("expired and wrong aud", {"exp": NOW - 3600, "aud": "x"}),
        ("expired and nbf in future", {"exp": NOW - 3600, "nbf": NOW + 3600}),
        ("exp float", {"exp": NOW + 600.5}),
        ("exp numeric string", {"exp": str(NOW + 600)}),
        ("exp word", {"exp": "soon"}),
        ("exp bool", {"exp": True}),
        ("exp list", {"exp": [NOW]}),
        ("exp huge", {"exp": 10**30}),
        ("exp NaN", {"exp": float("nan")}),
        ("exp infinite", {"exp": float("inf")}),
        ("nbf in future", {"nbf": NOW + 600}),
        ("nbf within leeway", {"nbf": NOW + 2}),
        ("nbf past", {"nbf": NOW - 600}),
        ("nbf word", {"nbf": "later"}),
        ("iat in future", {"iat": NOW + 600}),
        ("iat within leeway", {"iat": NOW + 2}),
        ("iat word", {"iat": "now"}),
        ("iat float", {"iat": NOW + 0.5}),
        ("sub number", {"sub": 1}),
        ("sub empty", {"sub": ""}),
        ("jti number", {"jti": 1}),
        ("extra claims", {"info": {"a": [1, 2]}, "channels": ["x"]}),
    ):
        yield name, token(ED, **changes)
    for claim in ("nbf", "iat", "exp", "sub", "jti"):
        yield f"{claim} null", token(ED, payload={**claims(), claim: None})
    for claim in _REQUIRED:
        yield f"{claim} missing", token(ED, payload=claims(**{claim: None}))
        yield f"{claim} null", token(ED, payload={**claims(), claim: None})
    # random single-character mutations of valid tokens
    for i in range(300):
        base = (valid_ed, valid_es, valid_rs)[i % 3]
        at = rnd.randrange(len(base))
        op = rnd.choice("sdi")
        char = rnd.choice("AZaz09-_+/=!. \x00")
        mutated = base[:at] + (char if op != "d" else "") + base[at + (op != "i") :]
        yield f"mutation {i}", mutated


def pyjwt_verdict(tok: str) -> tuple[type[AuthError] | None, dict[str, Any] | None]:
    """What ``jwt.decode`` says, with the key the header names, mapped to our error classes."""
    try:
        header = jwt.get_unverified_header(tok)
    except jwt.PyJWTError:
        return TokenInvalid, None
    kid = header.get("kid")
    key = KEYS.get(kid) if isinstance(kid, str) else None
    if key is None:
        return TokenInvalid, None
    try:
        decoded = jwt.decode(
            tok,
            key.public_key,
            algorithms=[key.algorithm],
            audience=AUD,
            issuer=key.issuer,
            leeway=LEEWAY,
            options={"require": _REQUIRED},
        )
    except jwt.ExpiredSignatureError:
        return TokenExpired, None
    except jwt.InvalidIssuerError:
        return UntrustedIssuer, None
    except jwt.PyJWTError:
        return TokenInvalid, None
    return None, decoded


def our_verdict(tok: str) -> tuple[type[AuthError] | None, dict[str, Any] | None]:
    try:
        decoded, _ = TokenVerifier(KEYS, audience=AUD, leeway_seconds=LEEWAY).decode(tok)
    except AuthError as exc:
        return type(exc), None
    return None, decoded


CORPUS = list(corpus())


@pytest.mark.parametrize(("name", "tok"), CORPUS, ids=[name for name, _ in CORPUS])
def test_same_verdict_as_pyjwt(name: str, tok: str) -> None:
    ours, theirs = our_verdict(tok), pyjwt_verdict(tok)
    assert ours == theirs


def test_the_corpus_exercises_every_verdict() -> None:
    verdicts = {pyjwt_verdict(tok)[0] for _, tok in CORPUS}
    assert verdicts == {None, TokenInvalid, TokenExpired, UntrustedIssuer}
    accepted = [name for name, tok in CORPUS if pyjwt_verdict(tok)[0] is None]
    assert {"valid EdDSA", "valid ES256", "valid RS256", "aud list with ours", "crit b64 with b64 true"} <= set(
        accepted
    )


def test_base64url_segments_decode_as_pyjwt_decodes_them() -> None:
    """Every short spelling over an alphabet with the tricky characters, against PyJWT's decoder."""
    rnd = random.Random(11)
    alphabet = "AQgwBb09-_+/=! \n"
    for _ in range(20_000):
        seg = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 11))).encode()
        try:
            expected: bytes | None = jwt.api_jws.PyJWS._decode_base64url_segment(seg, "x")
        except jwt.DecodeError:
            expected = None
        try:
            got: bytes | None = _b64url(seg, "x")
        except TokenInvalid:
            got = None
        assert got == expected, seg
