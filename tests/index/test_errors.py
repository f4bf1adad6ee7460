"""Every refusal is a CiteqaError whose HTTP status and exit status are the ones the table in index/errors.py says."""

from __future__ import annotations

import re

import pytest

import index.errors
import ui.remote
import ui.server  # noqa: F401  # imports every layer, so every refusal class is defined
from index.errors import CiteqaError


def every_refusal() -> list[type[CiteqaError]]:
    found, todo = [], [CiteqaError]
    while todo:
        for kind in todo.pop().__subclasses__():
            found.append(kind)
            todo.append(kind)
    return found


def table() -> dict[str, tuple[str, str]]:
    """Class name → (HTTP, exit) as the module's docstring lists them."""
    rows = {}
    for line in index.errors.__doc__.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            for name in re.findall(r"`(\w+)`", cells[0]):
                rows[name] = (cells[1], cells[2])
    return rows


@pytest.mark.parametrize("kind", every_refusal(), ids=lambda kind: kind.__name__)
def test_each_refusal_is_in_the_table_with_its_statuses(kind):
    http, exit_code = table()[kind.__name__]
    assert str(kind.exit_code) == exit_code
    if http != "–":
        assert http.startswith(str(kind.http_status))
        assert ("Retry-After" in http) == (kind.retry_after_s is not None)


def test_the_table_names_no_class_that_is_gone():
    assert set(table()) == {kind.__name__ for kind in every_refusal()}
