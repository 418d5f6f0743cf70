"""Fake provider servers on loopback that speak each provider's wire format.

One module per provider (:mod:`.elevenlabs`, :mod:`.heygen`, :mod:`.veo`, :mod:`.runway`,
:mod:`.remotion`), all built on :class:`.server.FakeServer` (fault switches, request log);
:mod:`.media` makes the tiny real media they serve; :mod:`.fixtures` exposes them as pytest
fixtures.
"""
