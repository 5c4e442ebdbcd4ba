"""Every Python example of the README and the documentation runs as written.

The blocks of one page run in order in one namespace (a page reads like a notebook: a later block may use
what an earlier one made), in a fresh working folder. Nothing is mocked: the examples load the bundled
model, start Spark, train, serve the app.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import matplotlib
import pytest

from .conftest import REPO

matplotlib.use("Agg")

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=lambda p: p.relative_to(REPO).as_posix())
def test_examples_run_as_written(page: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict = {"__name__": "__docs_example__"}
    for i, code in enumerate(_blocks(page)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # examples may warn (e.g. Spark, sktime); they must not fail
            try:
                exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{page.name}, block {i} failed: {type(exc).__name__}: {exc}\n{code}") from exc
    assert os.getcwd() == str(tmp_path)
