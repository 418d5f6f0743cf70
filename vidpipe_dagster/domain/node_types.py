"""Node types and their input schemas, exactly as the editor and the seed system define them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class InputSlot:
    """One named input of a node type.

    The seed contract holds every slot as an array of node UUIDs; the editor contract holds
    a ``multiple`` slot as an array and any other as one node UUID string.
    """

    name: str
    required: bool
    min_items: int | None = None
    multiple: bool = False


INPUT_SCHEMAS: Final[dict[str, tuple[InputSlot, ...]]] = {
    "asset": (),
    "merge-videos": (InputSlot("segments", required=True, min_items=2, multiple=True),),
    "mix-audio": (InputSlot("video", required=True), InputSlot("audio", required=True)),
    "compose-video": (
        InputSlot("background", required=True),
        InputSlot("overlay", required=True),
    ),
    "talking-head": (InputSlot("script", required=False),),
    "generate-animation": (
        InputSlot("prompt", required=False),
        InputSlot("referenceImage", required=False),
    ),
    "generate-voiceover": (InputSlot("script", required=False),),
    "render-code": (InputSlot("config", required=False),),
}

NODE_TYPES: Final[tuple[str, ...]] = tuple(INPUT_SCHEMAS)

TYPE_ALIASES: Final[dict[str, str]] = {"generate-talking-head": "talking-head"}
"""Names of the editor generation for seed types: stored and returned as sent, run as the
seed type."""

EDITOR_NODE_TYPES: Final[tuple[str, ...]] = tuple(
    {v: k for k, v in TYPE_ALIASES.items()}.get(name, name) for name in NODE_TYPES
)


@dataclass(frozen=True)
class ConfigField:
    """A rule of the editor generation on one ``config`` key (the later Rails rules)."""

    name: str
    kind: str = "string"
    required: bool = False
    allowed: tuple[str, ...] | None = None


def _provider(*names: str) -> ConfigField:
    return ConfigField("provider", required=True, allowed=names)


CONFIG_SCHEMAS: Final[dict[str, tuple[ConfigField, ...]]] = {
    "asset": (),
    "merge-videos": (_provider("ffmpeg"),),
    "mix-audio": (_provider("ffmpeg"),),
    "compose-video": (_provider("ffmpeg"),),
    "talking-head": (
        _provider("heygen"),
        ConfigField("avatarId", required=True),
        ConfigField("voiceId", required=True),
    ),
    "generate-animation": (_provider("veo3", "runway", "stability"),),
    "generate-voiceover": (_provider("elevenlabs"),),
    "render-code": (_provider("remotion"),),
}
"""What the editor generation checks in ``config``, per (canonical) node type."""


def canonical_type(node_type: str) -> str:
    """The seed name of a node type (``generate-talking-head`` -> ``talking-head``)."""
    return TYPE_ALIASES.get(node_type, node_type) if isinstance(node_type, str) else node_type


STATUSES: Final[tuple[str, ...]] = ("pending", "in_progress", "completed", "failed")

AI_TYPES: Final[frozenset[str]] = frozenset(
    {"talking-head", "generate-animation", "generate-voiceover", "render-code"}
)

DEFAULT_PROVIDERS: Final[dict[str, str]] = {
    "asset": "storage",
    "merge-videos": "ffmpeg",
    "mix-audio": "ffmpeg",
    "compose-video": "ffmpeg",
    "talking-head": "local",
    "generate-animation": "local",
    "generate-voiceover": "local",
    "render-code": "local",
}
"""What runs a node without ``config.provider``: AI nodes render locally unless a paid provider
is named explicitly, so nothing is ever spent by default. Which providers can render a type
is declared by the providers themselves (``resources.providers.registry.providers_for``)."""


def effective_provider(node_type: str, config: dict | None, *, force_local: bool = False) -> str:
    """The provider that runs a node (its "effective provider"): ``config.provider`` or the
    type's default. The one function every caller uses (executors, admission, estimates,
    the compiler's pools).

    ``force_local`` (``VIDPIPE_PROVIDERS=local``) makes every AI node render locally. The
    name is returned lower-cased and unchecked; executors refuse names they cannot run.
    """
    node_type = canonical_type(node_type)
    if node_type in AI_TYPES and force_local:
        return "local"
    requested = (config or {}).get("provider") if isinstance(config, dict) else None
    if node_type in AI_TYPES and isinstance(requested, str) and requested.strip():
        return requested.strip().lower()
    return DEFAULT_PROVIDERS.get(node_type, "")


def is_known_type(node_type: str) -> bool:
    """True when ``node_type`` is one of the eight node types, by either generation's name."""
    return isinstance(node_type, str) and canonical_type(node_type) in INPUT_SCHEMAS


def referenced_uuids(inputs: dict | None) -> list[str]:
    """Every node UUID named by ``inputs``, in slot then item order, without duplicates.

    A slot's value may be an array of UUIDs (the seed generation) or a single UUID string
    (the editor generation, and rows written straight into the shared database); ``""`` is
    an unconnected single slot.
    """
    seen: dict[str, None] = {}
    for value in (inputs or {}).values() if isinstance(inputs, dict) else ():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and item:
                seen.setdefault(item, None)
    return list(seen)
