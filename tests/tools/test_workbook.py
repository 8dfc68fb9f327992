"""The Azure Monitor workbook: built from the checked query files, parameters all defined."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.tools.kusto import errors, prime, query_files
from tools import workbook

# What a workbook puts in place of each parameter when it runs a query.
SAMPLE_VALUES = {
    "{TimeRange:start}": "datetime(2026-03-01T00:00:00Z)",
    "{TimeRange:end}": "datetime(2026-03-02T00:00:00Z)",
    "{TimeRange}": "> ago(1d)",
    "{Repository}": "'octo-demo/api','octo-demo/web'",
    "{Workflow}": "'CI'",
}


def committed() -> Any:
    return json.loads(workbook.WORKBOOK.read_text(encoding="utf-8"))


def items_of(type_: int) -> list[Any]:
    return [item for item in committed()["items"] if item["type"] == type_]


def test_the_committed_workbook_is_what_the_query_files_build() -> None:
    assert workbook.WORKBOOK.read_text(encoding="utf-8") == workbook.render()


def test_it_is_a_notebook_of_text_parameters_and_queries() -> None:
    book = committed()

    assert book["version"] == "Notebook/1.0"
    assert {item["type"] for item in book["items"]} == {1, 3, 9}
    (parameters,) = items_of(9)
    names = {p["name"]: p["type"] for p in parameters["content"]["parameters"]}
    assert names == {"TimeRange": 4, "Repository": 2, "Workflow": 2}


def test_each_query_item_is_a_query_file_with_its_parameters_filled() -> None:
    files = query_files()
    queries = {item["name"]: item["content"]["query"] for item in items_of(3)}

    assert set(queries) == {name.removesuffix(".kql") for name in files}
    for name, text in files.items():
        assert queries[name.removesuffix(".kql")] == workbook.fill(text)
        assert workbook.fill(text) != text or "let start_time" not in text


def test_every_parameter_a_query_references_is_defined() -> None:
    (parameters,) = items_of(9)
    defined = {p["name"] for p in parameters["content"]["parameters"]}
    used: set[str] = set()
    for item in [*items_of(3), *parameters["content"]["parameters"]]:
        text = item.get("content", item).get("query", "")
        used |= set(workbook.PARAMETER.findall(text))

    assert used == defined


def test_the_parameter_check_sees_an_undefined_parameter() -> None:
    assert workbook.PARAMETER.findall("where x in ({Branch}) and t > {TimeRange:start}") == [
        "Branch",
        "TimeRange",
    ]


def test_the_filled_queries_still_parse_once_the_workbook_substitutes_values() -> None:
    texts = {}
    for item in [*items_of(3), *items_of(9)[0]["content"]["parameters"]]:
        text = item.get("content", item).get("query")
        if text:
            for placeholder, value in SAMPLE_VALUES.items():
                text = text.replace(placeholder, value)
            assert not re.search(r"\{\w+", text)
            texts[f"filled-{item.get('name')}"] = text
    prime(texts)

    assert errors(texts) == {}
