"""Regenerate the screenshot tour of the ML view: ``docs/ui-tour.md`` and the PNGs in ``docs/ui-tour/``.

Run it from the repository root with the project's virtualenv (needs Playwright and Chromium, like
the browser tests; about 10 minutes)::

    .venv/bin/python dev/ui_tour.py

It runs the Chromium tests ``tests/test_ui_e2e.py`` and ``tests/test_ui_charts_e2e.py`` with
``MLOPS_UPDATE_TOUR=1``: every ``screenshot(page, name, caption)`` of those tests writes a
256-colour copy of its PNG to ``docs/ui-tour/<name>.png`` and its caption to a list this script
reads. The markdown is then written from that list, in the order of the names, so the tour shows
exactly what the tests asserted on. Old PNGs are removed first; if a test fails, nothing is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOUR = REPO / "docs" / "ui-tour"
MARKDOWN = REPO / "docs" / "ui-tour.md"
TESTS = ["tests/test_ui_e2e.py", "tests/test_ui_charts_e2e.py"]

HEADER = """# A tour of the ML view

Screenshots of Airflow 3's UI with the provider's ML view, taken by the browser tests
`tests/test_ui_e2e.py` and `tests/test_ui_charts_e2e.py` (headless Chromium through Playwright,
logged in through Airflow's own login page, every page opened by clicking Airflow's tabs and
menus) on the DAGs those tests run: `mlops_e2e_pipeline`, run twice (the second version adds the
`@ml_task` `add_ratio`, a column and a row, and changes `evaluate`), `mlops_chart_fifty` (50 runs)
and `mlops_chart_failing` (a failed run). Regenerate the pictures and this page with
`.venv/bin/python dev/ui_tour.py`; the captions live next to the screenshot calls in the tests.
"""


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mlops-ui-tour-") as tmp:
        captions = Path(tmp) / "captions.jsonl"
        for old in TOUR.glob("*.png"):
            old.unlink()
        env = {**os.environ, "MLOPS_UPDATE_TOUR": "1", "MLOPS_TOUR_CAPTIONS": str(captions)}
        command = [sys.executable, "-m", "pytest", *TESTS, "-p", "no:cacheprovider", "-q"]
        if subprocess.run(command, cwd=REPO, env=env).returncode != 0:
            print("The browser tests failed: docs/ui-tour.md not written.", file=sys.stderr)
            return 1
        shots = {}
        for line in captions.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            shots[entry["name"]] = entry["caption"]
    missing = [name for name in shots if not (TOUR / f"{name}.png").exists()]
    if missing:
        print(f"Screenshots without a PNG in {TOUR}: {missing}", file=sys.stderr)
        return 1
    parts = [HEADER]
    for name in sorted(shots):
        title = name.split("-", 1)[1].replace("-", " ")
        parts.append(f"![{title}](ui-tour/{name}.png)\n{shots[name]}\n")
    MARKDOWN.write_text("\n".join(parts), encoding="utf-8")
    size = sum(p.stat().st_size for p in TOUR.glob("*.png"))
    print(f"Wrote {MARKDOWN.relative_to(REPO)}: {len(shots)} screenshots, {size / 1024:.0f} KiB of PNG.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
