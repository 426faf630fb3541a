"""One tree of auth errors; callers map them to 401/403 or protocol codes at their edge."""


class AuthError(Exception):
    """A token was refused; ``str(err)`` says why, for logs (never echo it to attackers verbatim)."""


class TokenInvalid(AuthError):
    """Malformed, badly signed, wrong algorithm, unknown kid, wrong audience, not yet valid."""


class TokenExpired(AuthError):
    """Well-formed and signed, but past ``exp``: the client should fetch a fresh token."""


class UntrustedIssuer(TokenInvalid):
    """The issuer is unknown, or the key's issuer differs from the token's ``iss``."""
