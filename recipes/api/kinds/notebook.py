"""The Notebook: the exercise's answers in the account, section by section, with the live graphs that prove them.

Found again by its name and the line "Managed by dd-runbook." in its first markdown cell. Its graphs are the
dashboards' own widgets (``{"$widget": ...}`` in payloads/notebook.json, recipes/api/template.py), its links the
addresses of the other objects (``${LINK_<KEY>}``): it is applied after them. Its last markdown cell is the
scorecard, which ``./run verify-account --publish`` writes (``publish``): apply leaves a published scorecard as
it is, and a comparison takes it for the payload's own text.

The answers the fake copies (tests/fakedd/notebooks.py) are those of datadog-api-client-python's recorded
cassettes for notebooks: each cell comes back with an id, the list holds whole notebooks, last modified first,
paged by start/count.
"""

from __future__ import annotations

import copy
import re

from datadog_api_client.v1.model.notebook_create_request import NotebookCreateRequest
from datadog_api_client.v1.model.notebook_update_request import NotebookUpdateRequest

from recipes.api import same
from recipes.api.client import call
from recipes.api.kinds.base import Kind, created, query_problems
from recipes.api.kinds.dashboard import latency_problems
from recipes.api.models import to_json, to_model

NOTEBOOK_MARK = "Managed by dd-runbook."


def cells(notebook: dict) -> list[dict]:
    """The cells of a body (data.attributes.cells) or of a live notebook (attributes.cells)."""
    return (notebook.get("data", notebook).get("attributes") or {}).get("cells") or []


def definition(cell: dict) -> dict:
    return (cell.get("attributes") or {}).get("definition") or {}


def markdown_indexes(notebook: dict) -> list[int]:
    return [i for i, cell in enumerate(cells(notebook)) if definition(cell).get("type") == "markdown"]


def heading(text: str) -> str:
    return (text or "").split("\n", 1)[0].strip()


def scorecard_index(live: dict, body: dict) -> int | None:
    """The index of the live notebook's scorecard cell: its last markdown cell, if it opens with the heading of
    the payload's last markdown cell ("## Scorecard"), else None."""
    wanted, found = markdown_indexes(body), markdown_indexes(live)
    if not wanted or not found:
        return None
    want = heading(definition(cells(body)[wanted[-1]]).get("text"))
    return found[-1] if heading(definition(cells(live)[found[-1]]).get("text")) == want else None


def with_scorecard(body: dict, text: str) -> dict:
    """The body with its scorecard cell (its last markdown cell) saying `text`."""
    out = copy.deepcopy(body)
    definition(cells(out)[markdown_indexes(out)[-1]])["text"] = text
    return out


def slug(name: str) -> str:
    """A notebook's name in its web address: datadog-api-client-python's examples open notebooks at
    /notebook/<id>/<name with its spaces as dashes> (examples/v2/incidents/UpdateIncidentAttachment.py)."""
    return re.sub(r"[^\w-]+", "-", name).strip("-")


class NotebookKind(Kind):
    name = "notebook"
    model = NotebookCreateRequest
    mark_field = "data.attributes.name"
    links_others = True  # planned last: its ${LINK_<KEY>}s are the addresses of the other objects

    def lint(self, body: dict) -> list[str]:
        problems, marked = [], markdown_indexes(body)
        if not marked or NOTEBOOK_MARK not in (definition(cells(body)[marked[0]]).get("text") or ""):
            problems.append(f"data.attributes.cells: the first markdown cell must say {NOTEBOOK_MARK!r} "
                            "(the notebook is found again by it)")
        if len(marked) < 2:
            problems.append("data.attributes.cells: the last markdown cell is the scorecard "
                            "(./run verify-account --publish writes it): it needs one after the first")
        for i, cell in enumerate(cells(body)):
            path = f"data.attributes.cells[{i}].attributes.definition"
            found = definition(cell)
            for j, request in enumerate(found.get("requests") or []):
                if isinstance(request, dict) and "q" in request:
                    q = request["q"]
                    problems += [f"{path}.requests[{j}].q: {p}" for p in query_problems(q) + latency_problems(q)]
            if found.get("type") == "log_stream" and not (found.get("query") or "").strip():
                problems.append(f"{path}.query: a log stream needs a search query (an empty one shows every log)")
        return problems

    def mark(self, body: dict) -> str:
        return body["data"]["attributes"].get("name")

    def ours(self, live: dict) -> bool:
        marked = markdown_indexes(live)
        return bool(marked) and NOTEBOOK_MARK in (definition(cells(live)[marked[0]]).get("text") or "")

    def find(self, apis, body: dict) -> list[dict]:
        """The notebooks with the payload's name, whole (the list answers them with their cells), oldest first."""
        name = self.mark(body)
        with call("list notebooks", apis.where):  # every page: the list is last-modified first, 100 a page
            found = [to_json(n) for n in apis.notebooks.list_notebooks_with_pagination() if n.attributes.name == name]
        return sorted(found, key=self.age)

    def age(self, live: dict):
        return created(live["attributes"].get("created")), str(live.get("id"))

    def comparable(self, live: dict, body: dict) -> dict:
        """The live notebook in the payload's shape; a published scorecard reads as the payload's own text."""
        attributes = copy.deepcopy(live["attributes"])
        index = scorecard_index(live, body)
        if index is not None:
            wanted = definition(cells(body)[markdown_indexes(body)[-1]])["text"]
            definition(attributes["cells"][index])["text"] = wanted
        wanted = body["data"]["attributes"]
        return {"data": {"type": body["data"].get("type", "notebooks"), "attributes": same.project(attributes, wanted, self.rules)}}

    def page(self, live: dict) -> str:
        return f"/notebook/{live['id']}/{slug(live['attributes'].get('name') or '')}"

    def create(self, apis, body):
        return to_json(apis.notebooks.create_notebook(body=to_model(body, NotebookCreateRequest)))["data"]

    def update(self, apis, live, body):
        """PUT the payload's cells (the server replaces them all), the live scorecard kept as published."""
        index = scorecard_index(live, body)
        if index is not None:
            body = with_scorecard(body, definition(cells(live)[index])["text"])
        return self.put(apis, live, body)

    def put(self, apis, live, body):
        return to_json(apis.notebooks.update_notebook(live["id"], body=to_model(body, NotebookUpdateRequest)))["data"]

    def delete(self, apis, live):
        apis.notebooks.delete_notebook(live["id"])

    # --- verify-account --publish -------------------------------------------------------------------------
    def scorecard(self, live: dict, body: dict) -> str | None:
        """The text of the live scorecard cell (None: the live notebook has none where the payload has it)."""
        index = scorecard_index(live, body)
        return None if index is None else definition(cells(live)[index]).get("text")

    def with_cell(self, live: dict, body: dict, text: str) -> dict:
        """The update that changes only the scorecard cell: every live cell sent back as it is, with its id (the
        client's NotebookCellUpdateRequest), the scorecard's text replaced; name, time and status as they are."""
        index = scorecard_index(live, body)
        attributes = live["attributes"]
        sent = []
        for i, cell in enumerate(attributes["cells"]):
            cell = {"id": cell["id"], "type": cell.get("type", "notebook_cells"), "attributes": copy.deepcopy(cell["attributes"])}
            if i == index:
                cell["attributes"]["definition"]["text"] = text
            sent.append(cell)
        kept = {k: attributes[k] for k in ("name", "time", "status") if attributes.get(k) is not None}
        return {"data": {"type": "notebooks", "attributes": {**kept, "cells": sent}}}


NOTEBOOK = NotebookKind()
