"""The browsable leaderboard page (``index.html``, harness/report/html.py), opened from disk in a
real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by selenium).

The page is written by :func:`write_leaderboards` from tests/report_scenario.py's results in the
``paper`` profile (every kind of table, published numbers beside ours, failures, fallbacks, notes)
with real PNG plots; the browser then sorts a column, filters a language, a model group and a task,
opens a model's plots, and its DOM is checked cell by cell against the JSON tables (numbers) and the
markdown tables (text) written beside it. The committed ``leaderboards/embedded/index.html`` is
checked the same way, and its screenshot is the one README links (docs/leaderboard.png; refresh it
with ``BENCH_UPDATE_SCREENSHOT=1``).

Without the browser these tests skip and say how to install it; the page's own checks do not
need it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.config import Workspace
from harness.report import Cell, Table, build_tables, load_published, write_leaderboards
from harness.report.html import TIED_MARK, column_facets, render_html
from tests.conftest import REPO, copy_workspace
from tests.test_leaderboard import write

# Debian's paths; elsewhere (e.g. a runner with Google Chrome and its driver) point these at them.
CHROMIUM = Path(os.environ.get("BENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("BENCH_CHROMEDRIVER", "/usr/bin/chromedriver"))
INSTALL = ("apt-get install -y chromium chromium-driver && pip install -e '.[test]' (selenium), or set "
           "BENCH_CHROMIUM and BENCH_CHROMEDRIVER to a Chromium or Chrome and its driver")
COMMITTED = REPO / "leaderboards" / "embedded"
SCREENSHOT = REPO / "docs" / "leaderboard.png"
PLOTTED = "hubert_base"  # the scenario row given real plots


# --------------------------------------------------------------------------- the page, without a browser
@pytest.fixture(scope="module")
def scenario_tables() -> list[Any]:
    from tests.report_scenario import scenario

    return build_tables(scenario("paper", "librispeech"), published=load_published(), profile="paper", n_boot=50)


def test_column_facets_from_keys() -> None:
    langs = ("en", "fi", "fr")
    assert column_facets("gender.fi.f1_micro", langs) == ("gender", "fi")
    assert column_facets("gender.fi.f1_micro.paper", langs) == ("gender", "fi")
    assert column_facets("matched.fr", langs) == ("word_discrimination", "fr")
    assert column_facets("emotion_discrimination.en", langs) == ("emotion_discrimination", "en")
    assert column_facets("params", langs) == column_facets("capacity_k", langs) == ("", "")


def test_page_is_self_contained_and_lists_every_table(scenario_tables: list[Any]) -> None:
    page = render_html(scenario_tables, profile="paper", languages={"en": "En", "fi": "Fi", "fr": "Fr"})
    assert page.count("<section class=\"board\"") == len(scenario_tables) == 9
    for t in scenario_tables:
        assert f"data-table=\"{t.name}\"" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "nothing is fetched from a network"
    assert "<link" not in page and "<script src" not in page
    assert "class=\"paper\"" in page, "the paper profile shows the published number beside ours"
    assert "id=\"deviations\"" not in page
    assert render_html(scenario_tables, profile="paper") == render_html(scenario_tables, profile="paper")


def test_footers_written_for_markdown_read_as_prose(scenario_tables: list[Any]) -> None:
    from dataclasses import replace

    table = replace(scenario_tables[0], footer=("\\* no model: see `reference/x.yaml` <here>",))
    page = render_html([table], profile="paper")
    assert "<p class=\"footer\">* no model: see <code>reference/x.yaml</code> &lt;here&gt;</p>" in page


def test_deviations_and_significance_are_rendered_when_present(scenario_tables: list[Any]) -> None:
    """A cell as the significance test marks it (``tied_with_best``), a table with its legend, and a
    deviations table: shown when present (the page works without them, as above)."""
    from dataclasses import dataclass, fields, replace

    @dataclass(frozen=True)
    class TestedCell(Cell):
        tied_with_best: bool | None = None

    @dataclass(frozen=True)
    class TestedTable(Table):
        significance: str = ""

    table = scenario_tables[0]
    row = table.rows[0]
    col = next(c for c in table.columns if c.kind == "score" and row.cells[c.key].status == "ok")
    plain = row.cells[col.key]
    tied = TestedCell(**{f.name: getattr(plain, f.name) for f in fields(Cell)} | {"best": False, "tied_with_best": True})
    tested = TestedTable(**{f.name: getattr(table, f.name) for f in fields(Table)}
                         | {"rows": (replace(row, cells={**row.cells, col.key: tied}), *table.rows[1:]),
                            "significance": "paired bootstrap, 95%: not worse than the best",
                            "footer": tuple(f for f in table.footer if not f.startswith(TIED_MARK))})
    from pydantic import BaseModel

    class Row(BaseModel):  # a deviations row as a pydantic record
        what: str
        here: int

    deviations = [{"what": "corpus", "paper": "IEMOCAP", "here": "synthetic"}, Row(what="seeds", here=2)]
    page = render_html([tested], profile="paper", deviations=deviations)
    assert "<section id=\"deviations\">" in page and "<th scope=\"col\">paper</th>" in page
    assert "<td>IEMOCAP</td>" in page and "<td>2</td>" in page and page.count("<td></td>") == 1
    cell = re.search(rf"<td[^>]*data-col=\"{re.escape(col.key)}\"[^>]*>.*?</td>", page).group(0)  # type: ignore[union-attr]
    assert "data-tied=\"true\"" in cell and "class=\"tied\"" in cell and "<strong>" not in cell
    assert f"{TIED_MARK}</span>: paired bootstrap, 95%: not worse than the best" in page, "the legend says how tested"
    explained = replace(tested, footer=(*tested.footer, f"{TIED_MARK} the footer's own statement"))
    assert "paired bootstrap" not in render_html([explained], profile="paper"), "no legend twice"


# --------------------------------------------------------------------------- a page on disk
def _copy_png(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


@pytest.fixture(scope="module")
def scenario_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """leaderboards/paper written by write_leaderboards from the scenario's result files and real plots."""
    from tests.report_scenario import scenario

    root = copy_workspace(tmp_path_factory.mktemp("html") / "ws")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("BENCH_CACHE", "BENCH_RESULTS", "BENCH_MODELS", "BENCH_CARDS", "BENCH_LEADERBOARDS", "BENCH_ROOT"):
            mp.delenv(var, raising=False)
        ws = Workspace.discover(root)
        results = ws.path("results")
        for res in scenario("paper", "librispeech"):
            if "profile" in res["cell"]:  # one hand-made record has no cell profile, so no file path
                write(results, res)
        pngs = sorted((COMMITTED / "plots").rglob("*.png"))
        assert len(pngs) >= 3, "the committed embedded leaderboard has plots to borrow"
        for rel, src in zip((f"sweeps/{PLOTTED}/gender/en.png", f"capacity/{PLOTTED}/gender/en/seed0.png",
                             f"umap/umap_{PLOTTED}_en.png"), pngs, strict=False):
            _copy_png(src, results / "paper" / rel)
        return write_leaderboards(ws, profile="paper", timestamp=False, n_boot=50)


def test_write_leaderboards_writes_the_page_beside_the_index(scenario_folder: Path) -> None:
    page = (scenario_folder / "index.html").read_text(encoding="utf-8")
    names = sorted(p.stem for p in scenario_folder.glob("*.json"))
    assert len(names) == 9 and all(f"data-table=\"{n}\"" in page for n in names)
    for rel in re.findall(r"<img src=\"([^\"]+)\"", page):
        assert (scenario_folder / rel).is_file(), rel
    assert "* no model for this language" in page and "\\*" not in page, "footers read as prose, not markdown"
    row = re.search(rf"<tr data-upstream=\"{PLOTTED}\".*?</tr>", page)
    assert row and "class=\"model\"" in row.group(0) and row.group(0).count("plots/") == 3


def test_cli_leaderboard_html_prints_the_page(workspace_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main
    from tests.test_leaderboard import make_result

    ws = Workspace.discover(workspace_dir)
    write(ws.path("results"), make_result("mfcc", "gender", "en"))
    assert main(["--root", str(workspace_dir), "leaderboard", "--profile", "smoke", "--html"]) == 0
    page = ws.path("leaderboards") / "smoke" / "index.html"
    assert page.is_file() and f"open {page.resolve().as_uri()}" in capsys.readouterr().out


# --------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through its chromedriver; skips with the install command when absent."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(f"selenium is not installed: {INSTALL}")
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): {INSTALL}")
    profile_dir = tempfile.mkdtemp(prefix="bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile_dir, ignore_errors=True)


DOM_TABLES = """
return Array.from(document.querySelectorAll('section.board')).map(s => ({
  name: s.dataset.table, shown: s.offsetParent !== null,
  columns: Array.from(s.querySelectorAll('thead th')).slice(1).map(th => th.dataset.col),
  rows: Array.from(s.querySelectorAll('tr[data-upstream]')).map(tr => ({
    upstream: tr.dataset.upstream, group: tr.dataset.group, display: tr.querySelector('th').textContent,
    cells: Array.from(tr.querySelectorAll('td')).map(td => {
      return {col: td.dataset.col, value: td.dataset.value, low: td.dataset.low, high: td.dataset.high,
              delta: td.dataset.delta, status: td.dataset.status, best: td.dataset.best, tied: td.dataset.tied,
              strong: td.querySelector('strong') !== null, text: td.textContent, sort: td.dataset.sort};
    })}))}));
"""


def _markdown_rows(md: str) -> list[list[str]]:
    """The body rows of a markdown table (group header rows left out), cells unescaped, marks removed."""
    lines = [line for line in md.splitlines() if line.startswith("|")][2:]
    rows = []
    for line in lines:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells[0].startswith("**") and not any(cells[1:]):
            continue
        rows.append([c.replace("**", "").replace("\\*", "*") for c in cells])
    return rows


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


def check_page_against_tables(driver: Any, folder: Path) -> int:
    """Every table of ``folder`` in the open page, cell by cell: numbers, status and marks against
    the JSON table, text against the markdown table. Returns the number of cells checked."""
    dom = {t["name"]: t for t in driver.execute_script(DOM_TABLES)}
    names = sorted(p.stem for p in folder.glob("*.json") if p.stem != "overlap")
    assert sorted(dom) == names
    checked = 0
    for name in names:
        data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        md_rows = _markdown_rows((folder / f"{name}.md").read_text(encoding="utf-8"))
        page = dom[name]
        assert page["columns"] == [c["key"] for c in data["columns"]], name
        order = [r for g in data["groups"] for r in data["rows"] if r["group"] == g["key"]]
        assert [(r["upstream"], r["group"], r["display"]) for r in page["rows"]] == \
               [(r["upstream"], r["group"], r["display"]) for r in order], name
        assert len(md_rows) == len(order), name
        for got, want, md in zip(page["rows"], order, md_rows, strict=True):
            assert md[0] == got["display"].strip()
            for cell, col, md_text in zip(got["cells"], data["columns"], md[1:], strict=True):
                expected = want["cells"][col["key"]]
                where = (name, want["upstream"], col["key"])
                assert cell["col"] == col["key"], where
                for field in ("value", "low", "high", "delta"):
                    assert _number(cell[field]) == expected[field], (where, field)
                assert cell["status"] == expected["status"], where
                assert cell["best"] == str(expected["best"]).lower(), where
                tied = expected.get("tied_with_best")
                assert cell["tied"] == ("" if tied is None else str(tied).lower()), where
                assert cell["strong"] == (expected["best"] and expected["status"] == "ok"
                                          and col["kind"] not in ("text", "published", "pct", "params")), where
                assert " ".join(cell["text"].split()) == " ".join(md_text.split()), where
                checked += 1
    return checked


def _open(driver: Any, page: Path) -> None:
    driver.get(page.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.find_elements("css selector", "section.board"), "the page has its tables"


def _sort_keys(driver: Any, table: str, col: str) -> list[list[Any]]:
    return driver.execute_script("""
      const [table, col] = arguments;
      const s = document.querySelector(`section.board[data-table="${table}"]`);
      return Array.from(s.querySelectorAll('tbody')).map(b => Array.from(b.querySelectorAll('tr[data-upstream]'))
        .map(tr => { const td = tr.querySelector(`td[data-col="${col}"]`); return td.dataset.sort === '' ? null : Number(td.dataset.sort); }));
    """, table, col)


def _header(driver: Any, table: str, col: str) -> Any:
    return driver.find_element("css selector", f"section.board[data-table='{table}'] thead th[data-col='{col}']")


def _shown_columns(driver: Any) -> list[dict[str, str]]:
    return driver.execute_script("""
      return Array.from(document.querySelectorAll('section.board')).filter(s => s.offsetParent !== null)
        .flatMap(s => Array.from(s.querySelectorAll('thead th')).filter(th => th.offsetParent !== null)
        .map(th => ({table: s.dataset.table, lang: th.dataset.lang, task: th.dataset.task, col: th.dataset.col})));
    """)


def _shown_rows(driver: Any, table: str) -> list[str]:
    return driver.execute_script("""
      return Array.from(document.querySelectorAll(`section.board[data-table="${arguments[0]}"] tr[data-upstream]`))
        .filter(r => r.offsetParent !== null).map(r => r.dataset.upstream);
    """, table)


def _choose(driver: Any, name: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", f"filter-{name}")).select_by_value(value)


def _not_blank(png: Path) -> None:
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    assert pixels.shape[0] >= 500 and pixels.shape[1] >= 800, pixels.shape
    assert pixels.std() > 20, "the screenshot is not one flat colour"
    assert (pixels < 100).mean() > 0.005, "it has dark text on it"


@pytest.fixture
def scenario_page(browser: Any, scenario_folder: Path) -> Any:
    _open(browser, scenario_folder / "index.html")
    return browser


def test_browser_dom_matches_the_json_and_markdown_tables(scenario_page: Any, scenario_folder: Path) -> None:
    assert check_page_against_tables(scenario_page, scenario_folder) > 500


def test_browser_sorts_a_column_inside_each_group(scenario_page: Any) -> None:
    table, col = "table1_gender", "gender.en.f1_micro"
    before = _sort_keys(scenario_page, table, col)
    assert any(len({v for v in g if v is not None}) >= 2 for g in before), "a group with values to sort"
    _header(scenario_page, table, col).find_element("css selector", "button").click()
    after = _sort_keys(scenario_page, table, col)
    assert _header(scenario_page, table, col).get_attribute("aria-sort") == "descending"
    for group_before, group_after in zip(before, after, strict=True):
        values = [v for v in group_before if v is not None]
        assert group_after == sorted(values, reverse=True) + [None] * (len(group_before) - len(values))
    _header(scenario_page, table, col).find_element("css selector", "button").click()
    assert _header(scenario_page, table, col).get_attribute("aria-sort") == "ascending"
    ascending = _sort_keys(scenario_page, table, col)
    for group in ascending:
        values = [v for v in group if v is not None]
        assert group == sorted(values) + [None] * (len(group) - len(values))
    assert ascending != after, "the second click reversed the order"
    rows = scenario_page.execute_script(
        "return Array.from(document.querySelectorAll('section.board[data-table=\"table1_gender\"] tbody'))"
        ".map(b => b.dataset.group)")
    assert rows == [g for g in ("small", "base", "large", "large_asr_ft", "pretrained", "other", "controls")
                    if g in rows], "groups keep the paper's order"


def test_browser_filters_language_group_and_task(scenario_page: Any) -> None:
    everything = _shown_columns(scenario_page)
    assert {c["lang"] for c in everything} >= {"en", "fi", "fr", ""}
    _choose(scenario_page, "lang", "fi")
    shown = _shown_columns(scenario_page)
    assert {c["lang"] for c in shown} == {"fi", ""}, "only Finnish columns and those about no language"
    assert {c["col"] for c in shown if c["lang"] == "fi"} == {c["col"] for c in everything if c["lang"] == "fi"}
    en = scenario_page.find_element("css selector", "th[data-col='gender.en.f1_micro']")
    assert not en.is_displayed()
    words = _shown_rows(scenario_page, "table5_word_discrimination")
    assert "siamese" in words and "mfcc" not in words, "a row never run in Finnish leaves that table"
    _choose(scenario_page, "lang", "fr")
    assert "resemblyzer" in _shown_rows(scenario_page, "table1_gender"), "one that could not run stays (n/a)"
    assert scenario_page.find_element(
        "css selector", "tr[data-upstream='resemblyzer'] td[data-col='gender.fr.f1_micro']").text.startswith("n/a")
    _choose(scenario_page, "lang", "")
    assert len(_shown_columns(scenario_page)) == len(everything)
    assert "mfcc" in _shown_rows(scenario_page, "table5_word_discrimination")

    _choose(scenario_page, "group", "small")
    groups = scenario_page.execute_script(
        "return Array.from(document.querySelectorAll('tr[data-upstream]')).filter(r => r.offsetParent !== null)"
        ".map(r => r.dataset.group)")
    assert groups and set(groups) == {"small"}
    _choose(scenario_page, "group", "")

    _choose(scenario_page, "task", "gender")
    tables = {c["table"] for c in _shown_columns(scenario_page)}
    assert "table1_gender" in tables and "table3_emotion" not in tables
    assert "table9_inference_time" in tables, "a table about no task stays"
    assert {c["task"] for c in _shown_columns(scenario_page)} == {"gender", ""}
    assert "tables shown" in scenario_page.find_element("id", "filter-status").text
    _choose(scenario_page, "task", "")


def test_browser_opens_a_models_plots_from_its_row(scenario_page: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    button = scenario_page.find_element("css selector", f"tr[data-upstream='{PLOTTED}'] button.model")
    button.click()
    dialog = scenario_page.find_element("id", "model-plots")
    assert dialog.is_displayed() and "HuBERT-B" in dialog.text
    WebDriverWait(scenario_page, 10).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('#model-plots img')).every(i => i.complete)"))
    widths = scenario_page.execute_script(
        "return Array.from(document.querySelectorAll('#model-plots img')).map(i => i.naturalWidth)")
    assert len(widths) == 3 and all(w > 100 for w in widths), "the plots load from disk by relative links"
    dialog.find_element("css selector", "button.close").click()
    assert not dialog.is_displayed()


def test_browser_screenshot_is_not_blank(scenario_page: Any, tmp_path: Path) -> None:
    png = tmp_path / "page.png"
    assert scenario_page.save_screenshot(str(png))
    _not_blank(png)


def test_browser_committed_embedded_page(browser: Any, tmp_path: Path) -> None:
    """The committed leaderboards/embedded/index.html against the JSON and markdown tables beside it;
    its screenshot is docs/leaderboard.png (rewritten when BENCH_UPDATE_SCREENSHOT=1)."""
    page = COMMITTED / "index.html"
    assert page.is_file(), "regenerate it: bench leaderboard --profile embedded (after bench matrix)"
    _open(browser, page)
    assert check_page_against_tables(browser, COMMITTED) > 100
    png = tmp_path / "leaderboard.png"
    browser.set_window_size(1400, 1500)  # the filters, the contents and the whole of Table I
    assert browser.save_screenshot(str(png))
    _not_blank(png)
    if os.environ.get("BENCH_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(png, SCREENSHOT)
    assert SCREENSHOT.is_file(), "docs/leaderboard.png: run this test with BENCH_UPDATE_SCREENSHOT=1"
    _not_blank(SCREENSHOT)


def test_run_summary_in_the_page(scenario_folder: Path) -> None:
    page = (scenario_folder / "index.html").read_text(encoding="utf-8")
    assert re.search(r"<li>cells: \d+ \(\d+ ok, \d+ failed, \d+ unavailable\)</li>", page)


def test_readme_test_command_installs_the_browser_when_it_can() -> None:
    """CI runs the README's test command verbatim (.ci/run): as root with apt-get it installs the
    browser these tests drive; elsewhere it goes on, and they skip naming the install command."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = readme.split("<!-- test-command -->", 1)[1].split("<!-- /test-command -->", 1)[0]
    assert "apt-get install -y -qq chromium chromium-driver" in command and '"$(id -u)" = 0' in command
    assert "|| echo" in command, "no browser is not an error"
