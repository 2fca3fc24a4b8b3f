"""Build variants of the site: ``python -m mlejax_helpers.editions {student,offline-math}``.

* ``student``: the same book with every exercise solution removed
  (sphinx-exercise's ``hide_solutions``), into ``_build/student/html``. The
  book uses only plain ``{solution}`` blocks, which ``hide_solutions``
  supports (gated solutions would crash it).
* ``offline-math``: the normal book with MathJax served from a local copy
  (the npm package ``mathjax@3``) instead of a CDN, into ``_build/offline/html``;
  the browser test uses it because the test machine has no internet.

Each variant is the root ``_config.yml`` plus a few overrides, written to
``_build/<variant>/_config.yml``; notebook executions are shared with the main
build through one execution cache, so a variant build re-executes nothing that
the main build already ran.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

from .config import book_root


def variant_config(variant: str, mathjax_dir: Path | None = None) -> dict:
    """The root ``_config.yml`` with the overrides of ``variant``."""
    root = book_root()
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    cfg.setdefault("execute", {})["cache"] = str(root / "_build" / ".jupyter_cache")
    cfg["bibtex_bibfiles"] = [str(root / p) for p in cfg.get("bibtex_bibfiles", [])]
    sphinx = cfg.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_static_path"] = [str(root / p) for p in sphinx.get("html_static_path", [])]
    if variant == "student":
        cfg["title"] = cfg["title"] + " (student edition)"
        sphinx["hide_solutions"] = True
    elif variant == "offline-math":
        if mathjax_dir is None or not (Path(mathjax_dir) / "tex-chtml.js").exists():
            raise ValueError(
                f"offline-math needs mathjax_dir holding tex-chtml.js (npm mathjax@3 es5/), "
                f"got {mathjax_dir}"
            )
        sphinx["html_static_path"].append(str(Path(mathjax_dir).resolve()))
        sphinx["mathjax_path"] = "tex-chtml.js"
    else:
        raise ValueError(f"variant must be 'student' or 'offline-math', got {variant!r}")
    return cfg


def build(variant: str, mathjax_dir=None, strict: bool = True) -> Path:
    """Build ``variant`` into ``_build/<name>/html`` and return that folder."""
    name = {"student": "student", "offline-math": "offline"}.get(variant, variant)
    root = book_root()
    out = root / "_build" / name
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "_config.yml"
    config_path.write_text(yaml.safe_dump(variant_config(variant, mathjax_dir), sort_keys=False))
    cmd = [
        "jupyter-book",
        "build",
        str(root),
        "--config",
        str(config_path),
        "--path-output",
        str(out),
    ]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    subprocess.run(cmd, check=True)
    return out / "_build" / "html"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlejax_helpers.editions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("variant", choices=["student", "offline-math"])
    parser.add_argument("--mathjax-dir", type=Path, help="folder with tex-chtml.js (offline-math)")
    args = parser.parse_args(argv)
    html = build(args.variant, args.mathjax_dir)
    print(f"built {args.variant}: {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
