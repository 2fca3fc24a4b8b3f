"""The built site, tested in a real browser (headless Chromium) over localhost.

Runs only when ``MLEJAX_SITE_HTML`` names a built ``html`` folder (``.ci/run``
builds one with MathJax served locally and sets it); otherwise every test here
is skipped. ``MLEJAX_STUDENT_HTML`` names the student edition's folder.
"""

from __future__ import annotations

import functools
import html as html_lib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = os.environ.get("MLEJAX_SITE_HTML")
STUDENT = os.environ.get("MLEJAX_STUDENT_HTML")
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))

needs_site = pytest.mark.skipif(not SITE, reason="set MLEJAX_SITE_HTML to a built site (.ci/run)")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.imgs, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src"):
            self.imgs.append(a["src"])


# Injected into every page the test server serves: after the page (and MathJax) settle,
# it lists every code cell, output and table wider than the article at this window size,
# and writes the list into the DOM, where --dump-dom can read it.
PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const article = document.querySelector("article.bd-article") || document.body;
  const limit = article.getBoundingClientRect().right + 2;
  const found = [];
  const sel = "div.cell_input pre, div.cell_output pre, div.cell_output table, "
    + "div.cell_output img, article table, div.highlight pre";
  for (const el of document.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    const cut = el.scrollWidth > el.clientWidth + 2;
    if (cut || r.right > limit) {
      found.push({tag: el.tagName, scroll: el.scrollWidth, width: el.clientWidth,
                  right: Math.round(r.right), limit: Math.round(limit),
                  text: (el.innerText || el.alt || "").slice(0, 80)});
    }
  }
  const out = document.createElement("pre");
  out.id = "mlejax-overflow";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
  // The page's own facts: its height, whether its contents (or their button) show,
  // and every output figure without a caption.
  const shown = (el) => !!el && el.offsetParent !== null && el.getBoundingClientRect().width > 0;
  const toggle = document.querySelector(".secondary-toggle, .pst-navbar-icon.secondary-toggle");
  const figures = [...document.querySelectorAll("div.cell_output img")];
  const bare = figures.filter((img) => {
    const fig = img.closest("figure");
    const cap = fig && fig.querySelector("figcaption");
    return !(cap && cap.innerText.trim().length > 20 && img.alt && img.alt.length > 5);
  });
  const facts = document.createElement("pre");
  facts.id = "mlejax-page";
  facts.textContent = JSON.stringify({
    height: document.documentElement.scrollHeight,
    contents: shown(document.querySelector(".bd-sidebar-secondary")),
    contents_button: shown(toggle),
    figures: figures.length,
    uncaptioned: bare.map((img) => img.src.split("/").pop()),
  });
  document.body.appendChild(facts);
}, 3000));
</script>"""


class ProbingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site; HTML pages get :data:`PROBE` before ``</body>``."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        body = path.read_bytes().replace(b"</body>", PROBE.encode() + b"</body>", 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


@functools.cache
def probed(url) -> str:
    """``url`` at 1280 x 800 px (a laptop) after :data:`PROBE` has run, as DOM text."""
    out = chromium("--virtual-time-budget=25000", "--window-size=1280,800", "--dump-dom", url)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def probe(url, name):
    """One of :data:`PROBE`'s reports on ``url``: ``overflow`` or ``page``."""
    found = re.search(rf'<pre id="mlejax-{name}">(.*?)</pre>', probed(url), re.S)
    assert found, f"{url}: the {name} probe did not run"
    return json.loads(html_lib.unescape(found.group(1)))


def overflowing(url) -> list[dict]:
    """What overflows the article on ``url`` at 1280 px (see :data:`PROBE`)."""
    return probe(url, "overflow")


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(ProbingHandler, directory=SITE)
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def chromium(*args, timeout=120):
    if not CHROMIUM:
        pytest.fail("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def rendered_dom(url):
    out = chromium("--virtual-time-budget=20000", "--dump-dom", url)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def page(name):
    return "notebooks/" + name + ".html"


@needs_site
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_math_renders_and_figures_load(server, chapter):
    url = server + page(chapter)
    dom = rendered_dom(url)
    assert "mjx-container" in dom, f"{chapter}: MathJax typeset nothing"
    assert "<mjx-merror" not in dom and "data-mjx-error" not in dom, f"{chapter}: MathJax error"
    raw = re.findall(r'class="math[^"]*"[^>]*>\s*(\\\[|\\\()', dom)
    assert not raw, f"{chapter}: {len(raw)} equations left untypeset"
    prose = re.sub(r"<(pre|code|script|style|mjx-container)\b.*?</\1>", "", dom, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", prose)  # what a reader sees as text
    stray = re.findall(
        r".{0,30}(?:\$|\\(?:frac|rho|qquad|nabla|sigma|theta|mathrm)\b).{0,30}", text
    )
    assert not stray, f"{chapter}: TeX shown as text (math not parsed): {stray[:5]}"
    parser = Links()
    parser.feed(dom)
    assert parser.imgs, f"{chapter}: no figure on the page"
    for src in parser.imgs:
        target = urljoin(url, src)
        if urlparse(target).hostname != "127.0.0.1":
            continue
        with urllib.request.urlopen(target) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("image/"), src
            assert len(resp.read()) > 500, f"{chapter}: image {src} is empty"


@needs_site
def test_no_broken_internal_links():
    site = Path(SITE)
    broken = []
    for html in site.rglob("*.html"):
        if "_static" in html.parts or "_sources" in html.parts:
            continue
        parser = Links()
        parser.feed(html.read_text(errors="replace"))
        for href in parser.hrefs:
            parts = urlparse(href)
            if parts.scheme or href.startswith(("mailto:", "javascript:")):
                continue
            target = (html.parent / parts.path).resolve() if parts.path else html
            if parts.path.endswith("/"):
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{html.relative_to(site)} -> {href}")
            elif parts.fragment and target.suffix == ".html":
                ids = Links()
                ids.feed(target.read_text(errors="replace"))
                if parts.fragment not in ids.ids:
                    broken.append(f"{html.relative_to(site)} -> {href} (no such anchor)")
    assert not broken, "\n".join(broken[:30])


@needs_site
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_nothing_is_wider_than_the_page(server, chapter):
    found = overflowing(server + page(chapter))
    report = "\n".join(
        f"  {f['tag']} {f['scroll']}px in {f['width']}px: {f['text']!r}" for f in found
    )
    assert not found, f"{chapter}: {len(found)} element(s) wider than the page at 1280 px\n{report}"


@needs_site
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_page_contents_show_at_1280_px_and_every_figure_has_a_caption(server, chapter):
    facts = probe(server + page(chapter), "page")
    assert facts["contents"] or facts["contents_button"], (
        f"{chapter}: neither the page's contents nor their button is visible at 1280 px"
    )
    assert facts["figures"] and not facts["uncaptioned"], (
        f"{chapter}: figures without a caption and alt text: {facts['uncaptioned']}"
    )


# Chapter 7 is rebuilt around its verdicts to about 12 screens of a 1280 x 800 laptop
# (issue 24); a later addition that makes it a lab notebook again fails here.
SCREEN_PX = 800


@needs_site
def test_the_benchmark_chapter_stays_about_twelve_screens(server):
    height = probe(server + page("07_benchmark"), "page")["height"]
    assert height <= 13 * SCREEN_PX, f"chapter 7 is {height / SCREEN_PX:.1f} screens at 1280 px"


@needs_site
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_screenshots_of_chapters(server, chapter):
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{chapter}.png"
    out = chromium(
        "--virtual-time-budget=20000",
        "--window-size=1280,2600",
        f"--screenshot={shot}",
        server + page(chapter),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000


@needs_site
def test_every_chapter_has_a_download_link_and_no_link_to_a_repository_it_lacks():
    for chapter in CHAPTERS:
        html = (Path(SITE) / page(chapter)).read_text()
        assert f"{chapter}.ipynb" in html, f"{chapter}: no download link for the notebook"
        for dead in ("colab.research.google.com", "mybinder.org", "github.com/mlejax"):
            assert dead not in html, f"{chapter}: a link to {dead}, but no public repository exists"


@pytest.mark.skipif(not STUDENT, reason="set MLEJAX_STUDENT_HTML to the student edition")
def test_student_edition_has_no_solutions():
    student = Path(STUDENT)
    pages = [student / page(c) for c in CHAPTERS]
    for p in pages:
        html = p.read_text()
        assert re.search(r'class="[^"]*\bexercise\b', html), f"{p.name}: exercises missing"
        assert not re.search(r'class="[^"]*\bsolution\b', html), f"{p.name}: a solution is shown"
        assert "Solution to" not in html, f"{p.name}: solution text present"
