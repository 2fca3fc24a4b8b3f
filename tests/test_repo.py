"""The book's plumbing: notebooks stored clean, the table of contents complete."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []

    def walk(entries):
        for entry in entries:
            files.append(entry["file"])
            walk(entry.get("sections", []))  # a chapter's later parts (chapter 2's)

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return files


def test_the_readme_lists_exactly_the_chapters_on_disk():
    listed = re.findall(r"`notebooks/(\d\d[a-z]?_\w+)\.ipynb`", (ROOT / "README.md").read_text())
    assert listed and listed == [p.stem for p in NOTEBOOKS], listed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs; clear them before committing"


def test_toc_and_notebooks_list_the_same_chapters():
    in_toc = {f for f in toc_files() if f.startswith("notebooks/")}
    on_disk = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    assert in_toc == on_disk, (
        f"only in _toc.yml: {in_toc - on_disk}; only on disk: {on_disk - in_toc}"
    )


def test_every_toc_file_exists():
    for f in toc_files():
        matches = list(ROOT.glob(f + ".*"))
        assert matches, f"_toc.yml names {f}, which does not exist"


def test_chapters_are_numbered_in_order():
    """The file names follow the numbers the table of contents gives the chapters: 01 to
    09, and a chapter's later part as its number and a letter, right after it (02b)."""
    stems = [p.name.split("_")[0] for p in NOTEBOOKS]
    chapters = [s for s in stems if s.isdigit()]
    assert [int(s) for s in chapters] == list(range(1, len(chapters) + 1)), stems
    for part in (s for s in stems if not s.isdigit()):
        assert part[:-1] in chapters and part[-1].isalpha(), part
        assert stems.index(part) > stems.index(part[:-1]), part
    in_toc = [f for f in toc_files() if f.startswith("notebooks/")]
    assert in_toc == [f"notebooks/{p.stem}" for p in NOTEBOOKS], in_toc  # the same order


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_reads_the_size_knob(path):
    text = path.read_text()
    assert "config.pick(" in text, f"{path.name} never asks config.pick for its sizes"


# Decimals the prose may state because they are inputs, not measurements: start values
# and simulation parameters the code sets, and the arguments of the code shown in tables.
INPUTS = {"0.0", "0.1", "0.5", "0.7", "1.0"}


def prose(markdown: str) -> str:
    """A markdown cell without its math, code spans, code blocks and indented code."""
    for pattern, flags in (
        (r"```.*?```", re.S),
        (r"\$\$.*?\$\$", re.S),
        (r"\$[^$\n]*\$", 0),
        (r"`[^`\n]*`", 0),
        (r"^    .*$", re.M),
    ):
        markdown = re.sub(pattern, " ", markdown, flags=flags)
    return markdown


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_prose_types_a_measured_number(path):
    """A number that depends on a measurement is printed by a code cell, never typed into
    the prose: no decimal in a markdown cell but section and equation numbers and the
    inputs above."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            text = prose("".join(cell["source"]))
            found = [
                m.group()
                for m in re.finditer(r"(?<![\w.])\d+\.\d+(?![\w.])", text)
                if m.group() not in INPUTS and not text[: m.start()].endswith(("section ", "eq. "))
            ]
            assert not found, f"{path.name}: a number typed into the prose: {found}"
