"""The site: serve it locally, build it strictly, and run the whole test suite."""

import os
import shlex
from pathlib import Path

from recipes.taskdef import task

from recipes.errors import Failed
from recipes.lazy import lazy
from recipes.site import engines
from recipes.site.engines import QUIET

schema = lazy("recipes.settings")


@task(help={"addr": "address to bind (default: site.addr)", "port": "port to serve on (default: site.port)"})
def serve(c, addr=None, port=None):
    """Serve the site with live reload on http://127.0.0.1:8000 (no Datadog account needed)."""
    site = schema.of(c).site
    addr = site.addr if addr is None else schema.option("--addr", addr, schema.IpAddress)
    if port is None:
        port = site.port
    else:  # given as text: a number is checked as one, anything else is refused as not one
        port = schema.option("--port", int(port) if str(port).isdigit() else port, schema.Port)
    # Pages render the payloads and the tasks' help: a change there reloads the page too.
    c.run(f"mkdocs serve --strict --dev-addr {addr}:{port} --watch payloads --watch recipes", pty=False, env=QUIET)


@task(help={"out": "output folder (default: site.build_dir)",
            "engine": "mkdocs (Material for MkDocs) or zensical, its successor (default: site.engine)"})
def build(c, out=None, engine=None):
    """Build the site strictly: a broken link, a missing file or an unknown task fails the build.

    Both engines build the same mkdocs.yml and docs/. The output folder is replaced only by a build that
    succeeded: a failed one leaves the previous site as it was.
    """
    site = schema.of(c).site
    engine = schema.option("--engine", engine, schema.SiteEngine) if engine else site.engine
    result = engines.build(engine, Path(out or site.build_dir), site_url=site.url)
    if not result.ok:
        raise Failed(f"build: the {engine} build failed (exit {result.returncode}); its output is above")
    print(f"built the site with {engine} in {result.seconds:.1f} s")


@task(help={"k": "only tests whose names match this pytest -k expression",
            "marker": "only one layer, as a pytest -m expression (e2e, browser, fake_api, 'not e2e')",
            "workers": "test processes side by side (default: one per CPU and one more; 0 runs every test in this one)"})
def test(c, k="", marker="", workers=None):
    """Run the whole test suite; a layer that cannot run on this machine is skipped with its reason.

    The tests run in one process per CPU and one more (pytest-xdist): with one per CPU, the CPUs stood idle
    about a quarter of the time while the processes waited on test hosts and Chromium. Tests that share a test
    host or a built site stay in one process (tests/conftest.py).
    """
    args = ["pytest"]
    if k:
        args += ["-k", k]
    if marker:
        args += ["-m", marker]
    if workers is None:
        workers = (os.cpu_count() or 1) + 1
    else:  # given as text: a number is checked as one, anything else is refused as not one
        workers = schema.option("--workers", int(workers) if str(workers).isdigit() else workers, schema.Count)
    if workers != 0:
        args += ["-n", str(workers), "--dist", "loadscope"]  # tests/conftest.py: which tests share a process
    code = c.run(shlex.join(args), pty=False, warn=True).exited
    if code:
        raise Failed(f"tests failed (exit {code})")
