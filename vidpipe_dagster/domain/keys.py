"""Key case of node JSON: the engine stores ``output`` snake_case, the editor reads camelCase.

The seed generation returns ``output`` as stored (``s3_key``); the editor generation returns
its top-level keys camelCase (``s3Key``). Whatever reads a stored output goes through
:func:`stored_output`, so rows written with either spelling work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def camel_key(key: str) -> str:
    """``s3_key`` -> ``s3Key``; keys without underscores are unchanged."""
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake_key(key: str) -> str:
    """``s3Key`` -> ``s3_key``; keys without capitals are unchanged."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key).lstrip("_")


def camel_keys(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``value`` with its top-level keys camelCase (nested values as stored)."""
    if value is None:
        return None
    return {camel_key(k) if isinstance(k, str) else k: v for k, v in value.items()}


def stored_output(output: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A node's stored ``output`` with snake_case keys, whichever spelling the row holds."""
    if not isinstance(output, Mapping):
        return None
    normal: dict[str, Any] = {}
    for key, value in output.items():
        name = snake_key(key) if isinstance(key, str) else key
        if name not in normal or name == key:
            normal[name] = value
    return normal
