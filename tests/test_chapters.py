"""Every chapter runs top to bottom (small), and then every exercise solution's code runs in
the chapter's namespace: a wrong solution fails the build.

Solutions are sphinx-exercise ``{solution}`` blocks in markdown cells; their code is the
blocks indented by four spaces. Each chapter is executed once, by nbmake's runner (what
``pytest --nbmake notebooks/`` uses; a Jupyter kernel, as the site build has), with its
solutions appended as extra cells.
"""

import re
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbmake.nb_run import NotebookRun

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[!.]*.ipynb"))  # not a copy left by a killed run
SOLUTION = re.compile(r"^```\{solution\} (\S+)\n(.*?)^```$", re.S | re.M)
pytestmark = pytest.mark.slow


def solution_code(markdown: str) -> dict[str, str]:
    """``{label: code}`` for every solution in ``markdown``: its 4-space-indented blocks."""
    out = {}
    for label, body in SOLUTION.findall(markdown):
        blocks, current = [], []
        for line in body.splitlines():
            if line.startswith("    ") or (current and not line.strip()):
                current.append(line)
            elif current:
                blocks.append(textwrap.dedent("\n".join(current)).strip())
                current = []
        if current:
            blocks.append(textwrap.dedent("\n".join(current)).strip())
        if blocks:
            out[label] = "\n\n".join(blocks)
    return out


def with_solutions(path: Path):
    """The chapter's code cells, then one cell per solution (tagged with its label)."""
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    cells = [nbformat.v4.new_code_cell(c.source) for c in nb.cells if c.cell_type == "code"]
    solutions = solution_code(markdown)
    cells += [nbformat.v4.new_code_cell(f"# solution {k}\n{v}") for k, v in solutions.items()]
    return nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata), solutions


def test_solutions_are_found():
    text = (
        "```{solution} ex-a\n:class: dropdown\n\nProse.\n\n"
        "    x = 1\n    y = x + 1\n\nMore.\n\n    print(y)\n```\n"
    )
    assert solution_code(text) == {"ex-a": "x = 1\ny = x + 1\n\nprint(y)"}
    counts = {p.stem: len(with_solutions(p)[1]) for p in CHAPTERS}
    assert all(n >= 3 for n in counts.values()), counts  # every chapter has exercises


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_and_its_solutions_run(path):
    nb, solutions = with_solutions(path)
    assert solutions, f"{path.name} has no exercise solution to run"
    copy = path.with_name(f".test-{path.name}")  # beside the chapter: the same working folder
    nbformat.write(nb, copy)
    try:
        result = NotebookRun(copy, default_timeout=900).execute()
    finally:
        copy.unlink()
    if result.error is not None:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", result.error.summary + result.error.trace)
        pytest.fail(f"{path.name}: {plain[-4000:]}", pytrace=False)
