"""No HTML document and no script tag inside the package's Python files: markup lives in
``templates/`` and ``web/`` (the dashboard issue), so the scanner is checked on planted text
too, and the files it must allow (the templates) are checked to exist."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import stratforge

PACKAGE = Path(stratforge.__file__).parent
MARKUP = re.compile(r"<!doctype\s+html|<html[\s>]|</html\s*>|<script[\s>]|</script\s*>",
                    re.IGNORECASE)


def markup_lines(text: str) -> list[int]:
    """1-based numbers of the lines holding an HTML document tag or a script tag."""
    return [n for n, line in enumerate(text.splitlines(), start=1) if MARKUP.search(line)]


def test_the_scanner_sees_documents_and_script_tags():
    assert markup_lines("x = 1\ny = '<!DOCTYPE html>'\n") == [2]
    assert markup_lines("s = \"<SCRIPT type='text/javascript'>\"") == [1]
    assert markup_lines("a = '</script>'\nb = '<html lang=\"en\">'") == [1, 2]
    assert markup_lines("'<scripts are fine>' and '<htmlish>' and 'script' and 'html'") == []


def test_no_python_file_of_the_package_holds_html_or_script_tags():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 50  # the whole package, not an empty folder
    found = {str(p.relative_to(PACKAGE)): markup_lines(p.read_text(encoding="utf-8"))
             for p in sources}
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_the_markup_lives_in_package_files():
    page = files("stratforge").joinpath("templates", "report_page.html").read_text()
    assert markup_lines(page)  # the report shell moved here, tags and all
    index = files("stratforge").joinpath("web", "index.html").read_text()
    assert index.lstrip().lower().startswith("<!doctype html>")
    assert not list((PACKAGE / "web").rglob("*.py"))


WEB = PACKAGE / "web"
HTML_SINKS = re.compile(r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|"
                        r"\beval\(|new Function\(")
EXTERNAL = re.compile(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", re.IGNORECASE)
IMPORT = re.compile(r"""^\s*import\s[^"']*["']([^"']+)["']""", re.MULTILINE)


def test_the_scripts_insert_no_html_and_load_nothing_from_outside():
    scripts = sorted(WEB.rglob("*.js"))
    assert len(scripts) >= 10
    assert HTML_SINKS.search("el.innerHTML = x") and not HTML_SINKS.search("el.textContent")
    assert EXTERNAL.search('src="https://cdn.example.com/x.js"')
    for path in [*scripts, *WEB.rglob("*.html"), *WEB.rglob("*.css")]:
        text = path.read_text(encoding="utf-8")
        assert not HTML_SINKS.search(text), path
        assert not EXTERNAL.search(text), path


def test_every_module_import_names_a_file_of_the_package():
    for path in WEB.rglob("*.js"):
        for target in IMPORT.findall(path.read_text(encoding="utf-8")):
            assert target.startswith("."), (path, target)  # no bare (npm) specifiers
            assert (path.parent / target).resolve().is_file(), (path, target)


def test_every_web_and_template_file_is_package_data():
    import fnmatch
    import tomllib

    config = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["stratforge"]
    files_ = [p.relative_to(PACKAGE).as_posix() for folder in ("web", "templates")
              for p in (PACKAGE / folder).rglob("*") if p.is_file()]
    assert files_
    missing = [f for f in files_ if not any(fnmatch.fnmatchcase(f, pat) and
                                            f.count("/") == pat.count("/")
                                            for pat in patterns)]
    assert missing == []  # a non-editable install would lack these
