"""report.html in a real browser: headless Chromium loads it and every image decodes. Skipped where
Chromium is absent (Debian's package ``chromium``; .ci/run installs it when it can)."""

import functools
import http.server
import shutil
import subprocess
import threading

import pytest

from bench.report import build
from tests.helpers import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")

CHECK = """<!doctype html><html><body><iframe id="r" src="report.html" width="1200" height="800"></iframe>
<script>
document.getElementById("r").onload = function () {
  var doc = this.contentDocument, imgs = doc.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  document.title = "IMAGES " + ok + " OF " + imgs.length;
  var p = document.createElement("p"); p.id = "result"; p.textContent = document.title; document.body.appendChild(p);
};
</script></body></html>"""


def test_every_image_of_the_report_loads_in_chromium(tmp_path):
    r = run_cli("-m", "estimator=score_function,reparameterization", "n_samples=1,4", "n_replicates=20000",
                "timing_min_run_time=0.01", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    report = build([tmp_path])
    drawn = sum(f.path is not None for f in report.figures)
    (tmp_path / "check.html").write_text(CHECK)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/check.html"
        out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                              "--no-first-run", "--disable-background-networking", "--disable-component-update",
                              "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                              "--virtual-time-budget=10000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert f"IMAGES {drawn} OF {drawn}" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert drawn >= 4
