"""Tests of the editor's REST API through the real app on a real database."""
