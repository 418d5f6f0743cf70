"""Provider API keys: held as :class:`pydantic.SecretStr`, revealed only to build a header.

So a key never appears in a repr, a log line or an error message; a missing one raises
:class:`~.errors.MissingApiKeyError` naming the environment variable to set.
"""

from __future__ import annotations

from pydantic import SecretStr

from vidpipe_dagster.resources.providers.errors import MissingApiKeyError


def reveal(key: SecretStr | str | None) -> str | None:
    """The plain value of an API key (``None`` or empty stays ``None``)."""
    if key is None:
        return None
    value = key.get_secret_value() if isinstance(key, SecretStr) else key
    return value or None


def require_key(key: SecretStr | str | None, *, env_var: str, provider: str) -> SecretStr:
    """``key`` as a SecretStr, or :class:`MissingApiKeyError` naming ``env_var``."""
    value = reveal(key)
    if value is None:
        raise MissingApiKeyError(env_var, provider=provider)
    return SecretStr(value)
