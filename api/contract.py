"""The generation of the contract the API speaks (``VIDPIPE_API_CONTRACT``): a thin layer.

Both generations share the routes and the domain; :class:`Contract` holds what differs:
the validation policy handed to the domain (``seed`` refuses invalid inputs, ``editor``
stores drafts), how nodes are serialised (``output`` keys camelCase for the editor), and
the shapes of execute's answers (seed: 202 ``{node, run_id}``; editor: 200 ``{node}``, a
node that is not ready 422 ``{"error": "Node is not ready to execute: ..."}``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.schemas import node_public
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.errors import ValidationError
from vidpipe_dagster.domain.nodes import node_validity, pipeline_node_uuids
from vidpipe_dagster.domain.validation import EDITOR


@dataclass(frozen=True)
class Contract:
    """One generation of the REST contract: ``seed`` or ``editor``."""

    name: str

    @property
    def editor(self) -> bool:
        """True for the later generation the admin editor speaks."""
        return self.name == EDITOR

    def node(self, session: Session, node: Node) -> dict[str, Any]:
        """One node's JSON (its validity judged against its pipeline's nodes)."""
        return self._node(node, pipeline_node_uuids(session, node.pipeline_id))

    def nodes(self, nodes: Iterable[Node]) -> list[dict[str, Any]]:
        """The JSON of nodes of one pipeline, given all of them."""
        nodes = list(nodes)
        known = {node.uuid for node in nodes}
        return [self._node(node, known) for node in nodes]

    def node_among(self, node: Node, known_uuids: set[str]) -> dict[str, Any]:
        """One node's JSON, its validity judged against ``known_uuids`` (its pipeline's
        nodes as the caller knows them, e.g. a live-status stream following its events)."""
        return self._node(node, known_uuids)

    def _node(self, node: Node, known: set[str]) -> dict[str, Any]:
        return node_public(
            node,
            validity=node_validity(node, known_uuids=known, contract=self.name),
            camel_output=self.editor,
        )

    def executed(self, node: dict[str, Any], run_id: str) -> JSONResponse:
        """The answer to executing one node."""
        if self.editor:
            return JSONResponse({"node": node})
        return JSONResponse({"node": node, "run_id": run_id}, status_code=202)

    def refused(self, error: ValidationError) -> JSONResponse | None:
        """The editor's flat ``{"error": message}`` for a refused execute (seed: None, the
        usual error shape)."""
        if not self.editor:
            return None
        return JSONResponse({"error": error.message}, status_code=error.status_code)


async def get_contract(request: Request) -> Contract:
    """The app's contract generation, from its settings."""
    return Contract(request.app.state.settings.api_contract)


ContractDep = Annotated[Contract, Depends(get_contract)]
