"""The report in a real browser: headless Chromium loads every page with no console
message, every figure decodes, nothing is fetched, and markup from a plug-in's label
or error shows as text without running. Skipped where Chromium is not installed
(Debian: ``apt-get install -y chromium``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib import image as mpimg
from test_report import MARKUP, TASKS, built_report

from vibench.report.build import page_name

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--enable-logging=stderr", "--v=0",
    "--virtual-time-budget=5000",
)
# Injected first in <head>, before the page's Content-Security-Policy, so it runs: it
# records an alert() call and, once loaded, what the page holds and fetched.
PROBE = """<script>
window.alert = function () { document.documentElement.dataset.alerted = "yes"; };
window.addEventListener("load", function () {
  var found = document.documentElement.dataset, images = Array.from(document.images);
  found.images = images.length;
  found.decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  found.scripts = document.scripts.length;
  found.tables = document.querySelectorAll("table").length;
  found.fetched = JSON.stringify(performance.getEntriesByType("resource").map(function (e) { return e.name; }));
});
</script>"""


class RootAttributes(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.attrs: dict[str, str] = {}
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "html":
            self.attrs = dict(attrs)

    def handle_data(self, data):
        self.text.append(data)


def load(page: Path, tmp_path: Path) -> tuple[dict[str, str], str, list[str]]:
    """``(what the probe found, the page's text, console messages)`` of ``page`` with the
    probe injected, from Chromium's DOM after load and its log."""
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    dom = RootAttributes(done.stdout)
    return dom.attrs, "".join(dom.text), console


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    return built_report(tmp_path_factory.getbasetemp())


def test_the_probe_catches_scripts_errors_and_fetches(tmp_path):
    """The checks below can fail: a page that runs markup, throws and fetches is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head></head><body><table></table>"
        f"{MARKUP}<img src='http://vibench.invalid/x.png'><script>undefined_function()</script>"
        "</body></html>"
    )
    found, _, console = load(bad, tmp_path)
    assert found["data-alerted"] == "yes" and found["data-scripts"] == "3"
    assert found["data-images"] == "1" and found["data-decoded"] == "0"
    assert json.loads(found["data-fetched"]) == ["http://vibench.invalid/x.png"]
    assert any("undefined_function" in line for line in console)


@pytest.mark.parametrize("name", ["index", *TASKS])
def test_page_loads_cleanly_in_chromium(report_dir, tmp_path, name):
    page = report_dir / ("index.html" if name == "index" else page_name(name))
    found, text, console = load(page, tmp_path)
    assert console == []
    assert "data-alerted" not in found  # no alert() ran
    assert found["data-scripts"] == "1"  # the probe's own: no markup became a script
    assert json.loads(found["data-fetched"]) == []  # figures and CSS are inline
    assert int(found["data-tables"]) >= 3
    images = int(found["data-images"])
    assert found["data-decoded"] == str(images)
    if name == "index":
        assert images == 0 and MARKUP in text  # the plug-in's label and error, as text
    else:
        assert images >= 3  # accuracy against cost, traces, k-hat (and SBC on linreg)
    if name == "gaussian[dim=2]":
        assert images == 4 and "Posterior draws" in text  # and each method's draws over the reference
    if name == "linreg":
        assert MARKUP in text and images >= 5


def test_screenshot_is_not_blank(report_dir, tmp_path):
    shot = tmp_path / "index.png"
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600",
         f"--screenshot={shot}", (report_dir / page_name(TASKS[0])).as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (1600, 1280) and pixels.std() > 0.05
