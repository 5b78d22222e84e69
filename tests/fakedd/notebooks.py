"""v1 notebooks as the real API answers them (datadog-api-client-python's cassettes,
tests/v1/cassettes/test_scenarios/test_*notebook*): JSON:API bodies, cells echoed with ids, full notebooks
listed newest-modified first and paged by start/count, a 204 on delete and a 404 the second time."""

from __future__ import annotations

import copy
import random
import string

from tests.fakedd.common import ApiError, first, stamp, utc_now
from tests.fakedd.rules import copies

CELL_TYPES = {"markdown", "timeseries", "toplist", "heatmap", "distribution", "log_stream"}
AUTHOR = {"name": None, "handle": "fake@example.com", "email": "fake@example.com", "icon": None, "title": None,
          "verified": True, "disabled": False, "status": "Active"}


def check(body) -> dict:
    """The request's data.attributes, or a 400 as the API's validation answers one."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("type") != "notebooks" or not isinstance(data.get("attributes"), dict):
        raise ApiError(400, "Invalid notebook: expected data.type notebooks and data.attributes")
    attributes = data["attributes"]
    for required in ("name", "cells", "time"):
        if required not in attributes:
            raise ApiError(400, f"Invalid notebook: missing '{required}'")
    for i, cell in enumerate(attributes["cells"]):
        kind = (cell.get("attributes") or {}).get("definition", {}).get("type")
        if cell.get("type") != "notebook_cells" or kind not in CELL_TYPES:
            raise ApiError(400, f"Invalid cell {i}: unknown type {kind!r}")
    return attributes


def cell_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


@copies("notebook", "each cell comes back with an 8-character id; its attributes are echoed as sent "
        "(test_create_a_notebook_returns_ok_response)")
def cells_with_ids(cells: list, kept: set) -> list:
    """`kept`: the ids of the notebook's current cells; a cell sent with one of them keeps it (the client's
    NotebookCellUpdateRequest: "update an existing cell" by id), any other gets a new id."""
    out = []
    for cell in cells:
        cell = copy.deepcopy(cell)
        if cell.get("id") not in kept:
            cell["id"] = cell_id()
        out.append(cell)
    return out


@copies("notebook", "adds id (an integer), metadata {take_snapshots, is_template, is_favorite: false, type: null}, "
        "template_variables: [], status: published, created = modified, author "
        "(test_create_a_notebook_returns_ok_response, test_get_a_notebook_returns_ok_response)")
def server_fields(attributes: dict, created: str, modified: str) -> None:
    metadata = {"take_snapshots": False, "is_template": False, "is_favorite": False, "type": None}
    attributes["metadata"] = {**metadata, **(attributes.get("metadata") or {})}
    attributes.setdefault("template_variables", [])
    attributes.setdefault("status", "published")
    attributes.update(created=created, modified=modified, author=dict(AUTHOR))


@copies("notebook", "PUT replaces the attributes whole: cells sent without an id get new ids, created is kept, "
        "modified moves (test_update_a_notebook_returns_ok_response)")
def replaced(old: dict, attributes: dict) -> dict:
    kept = {cell["id"] for cell in old["attributes"]["cells"]}
    new = copy.deepcopy(attributes)
    new["cells"] = cells_with_ids(new["cells"], kept)
    server_fields(new, old["attributes"]["created"], stamp(utc_now()))
    return {"type": "notebooks", "id": old["id"], "attributes": new}


@copies("notebook", "GET /api/v1/notebooks returns whole notebooks (cells included), last modified first, paged by "
        "start/count (50 a page when count is not sent), meta.page.total_count = every notebook "
        "(test_get_all_notebooks_returns_ok_response, test_get_all_notebooks_returns_ok_response_with_pagination)")
def notebooks_page(notebooks, query: dict) -> dict:
    newest_first = sorted(notebooks, key=lambda n: n["attributes"]["modified"], reverse=True)
    start, count = int(first(query, "start", "0")), int(first(query, "count", "50"))
    page = newest_first[start : start + count]
    return {"data": copy.deepcopy(page),
            "meta": {"page": {"total_count": len(newest_first), "total_filtered_count": min(count, len(newest_first))}}}


@copies("notebook", "DELETE answers 204 with no body; a notebook that is not there answers 404 "
        "{\"errors\": [\"Notebook not found\"]} (test_delete_a_notebook_returns_ok_response, "
        "test_delete_a_notebook_returns_not_found_response)")
def gone(fake, notebook_id: int):
    if notebook_id not in fake.state.notebooks:
        raise ApiError(404, "Notebook not found")
    del fake.state.notebooks[notebook_id]
    return 204, None


def store(fake, notebook_id: int, attributes: dict, created: str) -> dict:
    stored = copy.deepcopy(attributes)
    stored["cells"] = cells_with_ids(stored["cells"], set())
    server_fields(stored, created, created)  # a new notebook: modified when created
    fake.state.notebooks[notebook_id] = {"type": "notebooks", "id": notebook_id, "attributes": stored}
    return fake.state.notebooks[notebook_id]


def create(fake, query, body):
    return 200, {"data": store(fake, fake.new_id(), check(body), stamp(utc_now()))}


def list_all(fake, query, body):
    return 200, notebooks_page(fake.state.notebooks.values(), query)


def get(fake, query, body, notebook_id):
    found = fake.state.notebooks.get(int(notebook_id))
    if found is None:
        raise ApiError(404, "Notebook not found")
    return 200, {"data": found}


def update(fake, query, body, notebook_id):
    old = get(fake, query, body, notebook_id)[1]["data"]
    fake.state.notebooks[old["id"]] = replaced(old, check(body))
    return 200, {"data": fake.state.notebooks[old["id"]]}


def delete(fake, query, body, notebook_id):
    return gone(fake, int(notebook_id))


ROUTES = [
    (r"/api/v1/notebooks", "POST", create),
    (r"/api/v1/notebooks", "GET", list_all),
    (r"/api/v1/notebooks/(\d+)", "GET", get),
    (r"/api/v1/notebooks/(\d+)", "PUT", update),
    (r"/api/v1/notebooks/(\d+)", "DELETE", delete),
]
