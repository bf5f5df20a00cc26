"""Great Expectations Data Docs that open from disk with no network.

GX 1.x pages load Bootstrap, jQuery, bootstrap-table, Font Awesome, Vega and two logos
from CDNs, and the index page draws its tables with jQuery from data inside a
``<script>``: offline it is an unstyled page with empty tables. :func:`make_offline`
rewrites every page of a built site in place:

* every ``<script>``, ``<link>`` and ``<style>`` goes, and so does every inline event
  handler; a small stylesheet of our own (tables, headings, pass/fail colours, the status
  icons as characters) and a Content-Security-Policy that allows no script, no request
  and no form take their place;
* the tables GX fills with jQuery are written out as plain HTML tables (GX's own cell
  markup, the same the script would have inserted), each row linking to its page;
* images become their ``alt`` text and the site's ``static/`` folder (4 MB of fonts and
  logos nothing references any more) is deleted;
* what GX wires to jQuery works with CSS alone: "Show more info" opens with ``:target``
  and the "Failed Only" filter of a validation page with ``:has(:checked)``.

GX 1.x does not escape the unexpected values it lists (nor the ids beside them): a
``<script>`` id in a failing row would land in the page as markup.
:func:`escape_results` escapes them in the context's stored results before the site
is built, so they display as text (the CheckResults keep the raw values).

Charts of distribution expectations (Vega, drawn by script) are not drawn: their
expectation's text and observed value still are.
"""

from __future__ import annotations

import ast
import html
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final

#: No script, no request of any kind; inline styles only.
CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
#: Set in a stored validation result's ``meta`` once its data values are HTML-escaped.
ESCAPED: Final = "reconcile_html_escaped"
#: The first thing in the ``<head>`` of a page :func:`offline_page` wrote.
_MARK: Final = '<meta charset="utf-8"><meta http-equiv="Content-Security-Policy"'
#: The nav label GX gives the section of expectations on no single column.
TABLE_LEVEL: Final = "Table-Level Expectations"

_STYLE: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
  margin:0;background:#fff}
a{color:#0b57d0}
nav.navbar{display:flex;align-items:center;gap:1em;padding:.5em 1.5em;
  border-bottom:1px solid #d0d7de;background:#f6f8fa;height:auto!important}
.ge-logo-text{font-weight:600;font-size:1.1em}
ol.breadcrumb{display:flex;flex-wrap:wrap;list-style:none;margin:0;padding:0}
.breadcrumb-item+.breadcrumb-item::before{content:"/";padding:0 .5em;color:#656d76}
.container-fluid,.container{padding:1em 1.5em}
.row{display:flex;flex-wrap:wrap;gap:0 1.5em}
.row>*{min-width:0}
.col-12,.col-md-10,.col-lg-10,.col-lg-12{flex:1 1 40em}
.col-6{flex:0 1 28em}
.col-lg-2,.col-md-2{flex:0 0 15em}
.card{border:1px solid #d0d7de;border-radius:6px;margin-bottom:1em}
.card-header{background:#f6f8fa;padding:.4em .8em;border-bottom:1px solid #d0d7de}
.card-body{padding:.6em .8em}
.sticky{position:sticky;top:.5em}
ul.nav{list-style:none;margin:0;padding:0}
.nav-link{display:block;padding:.15em .3em;text-decoration:none}
.nav-tabs{display:flex;gap:1em;border-bottom:1px solid #d0d7de;margin:1em 0 .5em}
.alert-secondary{background:#eef1f4;border-radius:4px;padding:.4em .8em;margin:1em 0 .4em}
h4,h5,h6{margin:.3em 0}
h5{font-size:1.15em}
.lead{color:#656d76}
table{border-collapse:collapse;margin:.4em 0;max-width:100%}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.table{width:100%}
.table-responsive{overflow-x:auto}
thead[hidden]{display:none}
.show-scrollbars{overflow-wrap:anywhere;max-height:30em;overflow:auto}
.badge{display:inline-block;font-family:ui-monospace,monospace;font-size:.92em;
  background:#eef1f4;border-radius:3px;padding:0 .3em;white-space:pre-wrap}
.text-danger{color:#b42318}
.text-success{color:#1a7f37}
.text-warning{color:#9a6700}
.fas,.fa{font-style:normal}
.fa-check-circle::before{content:"\\2714\\FE0E"}
.fa-times::before,.fa-times-circle::before{content:"\\2718\\FE0E"}
.fa-exclamation-triangle::before{content:"\\26A0\\FE0E"}
.fa-question-circle::before{content:"?"}
.fa-comment::before{content:"\\2709\\FE0E"}
.ge-status-text{margin-left:.4em}
.cooltip .top{display:none}
.collapse{display:none}
.collapse:target{display:block}
.btn-group label{margin-right:1em;cursor:pointer}
body:has(#option2:checked) tr:has(>td.hide-succeeded-validation-target-child),
body:has(#option2:checked) .ge-section:has(.hide-succeeded-validations-column-section-target-child)
  {display:none}
@media (prefers-color-scheme:dark){
  body{background:#0d1117;color:#e6edf3}
  a{color:#58a6ff}
  nav.navbar,th,.card-header,.alert-secondary,.badge{background:#161b22}
  th,td,.card,nav.navbar{border-color:#30363d}
  .text-danger{color:#ff7b72}.text-success{color:#3fb950}
}
"""

#: Elements dropped with their content.
_DROP_WITH_CONTENT: Final = frozenset({"script", "style", "noscript", "iframe", "object", "form"})
#: Void elements dropped.
_DROP_VOID: Final = frozenset({"link", "base", "embed", "source", "track"})
#: Attributes that make a request when the page loads (``href`` of ``<a>`` waits for a click).
_URL_ATTRIBUTES: Final = frozenset(
    {"src", "srcset", "href", "poster", "background", "action", "formaction", "data", "ping"}
)
#: Result fields that quote the data (GX renders them unescaped).
_DATA_VALUES: Final = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_index_list",
    "unexpected_index_query",
)
_TABLE_SCRIPT: Final = re.compile(
    r"\$\('#(?P<id>[\w-]+)'\)\.bootstrapTable\(\s*Object\.assign\(\s*\{\s*"
    r"columns:\s*(?P<columns>\[.*?\]),\s*data:\s*(?P<data>\[.*?\]),\s*toolbar:",
    re.S,
)


@dataclass
class Page:
    """One rewritten page: its HTML and its table of contents (nav label -> ``#anchor``)."""

    html: str
    sections: dict[str, str] = field(default_factory=dict)


def make_offline(site: Path, *, skip_offline: bool = False) -> dict[Path, Page]:
    """Rewrite every page under ``site`` in place (see the module); ``{page path: Page}``.

    Rewriting a page twice gives the same page; with ``skip_offline`` pages that already
    are offline (:func:`is_offline`) are left alone and not returned (a site that grows
    every night is not rewritten whole every night).
    """
    pages: dict[Path, Page] = {}
    for path in sorted(Path(site).rglob("*.html")):
        if skip_offline and is_offline(path):
            continue
        page = offline_page(path.read_text(encoding="utf-8"))
        path.write_text(page.html, encoding="utf-8")
        pages[path] = page
    shutil.rmtree(Path(site) / "static", ignore_errors=True)
    return pages


def is_offline(path: Path) -> bool:
    """Whether the page at ``path`` exists and was written by :func:`offline_page`."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            head = handle.read(1024)
    except (OSError, UnicodeDecodeError):
        return False
    return _MARK in head


def add_link(page: Path, href: str, text: str) -> None:
    """Put a link at the top of an offline page's body (once: a second call replaces it)."""
    markup = page.read_text(encoding="utf-8")
    markup = re.sub(r'<p class="reconcile-link">.*?</p>', "", markup, flags=re.S)
    link = (
        f'<p class="reconcile-link"><a href="{html.escape(href, quote=True)}">'
        f"{html.escape(text)}</a></p>"
    )
    markup = re.sub(r"(<body\b[^>]*>)", lambda m: m[1] + link, markup, count=1)
    page.write_text(markup, encoding="utf-8")


def offline_page(text: str) -> Page:
    """One GX page without scripts or requests, its jQuery tables written out."""
    rewriter = _Rewriter()
    rewriter.feed(_static_tables(text))
    rewriter.close()
    return Page("".join(rewriter.out), rewriter.sections)


def escape_results(context: Any, keys: Iterable[Any]) -> None:
    """HTML-escape the data values of the validation results ``context`` stores at ``keys``.

    GX writes them into table cells as raw HTML (``Expectation.
    _diagnostic_unexpected_table_renderer``, ``_get_observed_value_from_evr``). A result
    escaped once is marked in its ``meta`` and never escaped again.
    """
    store = context.validation_results_store
    for key in keys:
        result = store.get(key)
        if result.meta.get(ESCAPED):
            continue
        result.meta[ESCAPED] = True
        for item in result.results:
            values = item.result or {}
            for name in _DATA_VALUES:
                if name in values:
                    values[name] = _escaped(values[name])
            if isinstance(values.get("observed_value"), str):
                values["observed_value"] = html.escape(values["observed_value"])
        store.set(key, result)


def _escaped(value: Any) -> Any:
    """Every string inside ``value`` escaped (dict keys are column names: kept)."""
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_escaped(v) for v in value)
    return value


# ---------------------------------------------------------------------------------------
# The tables GX draws with bootstrap-table


def _static_tables(text: str) -> str:
    """Fill each empty ``<table id=X>`` whose rows a bootstrap-table script holds."""
    for match in _TABLE_SCRIPT.finditer(text):
        try:
            columns = ast.literal_eval(match["columns"])
            rows = ast.literal_eval(match["data"])
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue  # not the template we know: its table stays empty, the page still opens
        empty = re.search(rf'<table\s[^>]*\bid="{re.escape(match["id"])}"[^>]*>\s*</table>', text)
        if empty:
            table = re.sub(r"\s*</table>$", "", empty[0]) + _table_html(columns, rows) + "</table>"
            text = text[: empty.start()] + table + text[empty.end() :]
    return text


def _table_html(columns: Iterable[dict[str, Any]], rows: Iterable[dict[str, Any]]) -> str:
    fields = [(str(c["field"]), str(c.get("title", c["field"]))) for c in columns]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in fields)
    body = []
    for row in rows:
        link = row.get("_table_row_link_path")
        cells = []
        for name, _ in fields:
            cell = str(row.get(name, ""))  # GX's markup for the cell, as jQuery would insert it
            status = row.get(f"_{name}_text")
            if status is not None:
                cell += f'<span class="ge-status-text">{html.escape(str(status))}</span>'
            if link and "<a" not in cell:
                cell = f'<a href="{html.escape(str(link))}">{cell}</a>'
            cells.append(f"<td>{cell}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"


# ---------------------------------------------------------------------------------------
# The rewrite


def _external(url: str) -> bool:
    """Anything but a relative link or an in-page anchor: ``http:``, ``//host``, ``data:``..."""
    return bool(re.match(r"\s*([a-zA-Z][\w+.-]*:|//|\\\\)", url))


class _Rewriter(HTMLParser):
    """Copy a page token by token, leaving out what would run or fetch (see the module)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.sections: dict[str, str] = {}
        self._skip: list[str] = []  # the dropped element we are inside, and its nesting
        self._nav_href: str | None = None
        self._nav_text: list[str] = []

    # An element dropped with its content: count its own tag to find its end.
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            if tag == self._skip[0]:
                self._skip.append(tag)
            return
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if (
            tag in _DROP_WITH_CONTENT
            or (tag == "button" and any(k.startswith("on") for k in values))
            or values.get("id") == "ge-cta-footer"
            or "ge-walkthrough-modal" in classes
        ):
            self._skip.append(tag)
            return
        self._start(tag, attrs, values, classes, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip or tag in _DROP_WITH_CONTENT:
            return
        values = dict(attrs)
        self._start(tag, attrs, values, (values.get("class") or "").split(), closed=True)

    def _start(
        self,
        tag: str,
        attrs: list[tuple[str, str | None]],
        values: dict[str, str | None],
        classes: list[str],
        *,
        closed: bool,
    ) -> None:
        if tag in _DROP_VOID:
            return
        if tag == "img":
            alt = values.get("alt") or ""
            self.out.append(f'<span class="ge-logo-text">{html.escape(alt)}</span>')
            return
        if tag == "meta" and (
            "charset" in values
            or (values.get("http-equiv") or "").lower() in ("refresh", "content-security-policy")
        ):
            return  # ours come first in <head>; a refresh would navigate
        kept = [(k, v) for k, v in attrs if self._keep(tag, k, v)]
        if kept == attrs:
            self.out.append(self.get_starttag_text() or "")
        else:
            text = "".join(
                f" {k}" if v is None else f' {k}="{html.escape(v, quote=True)}"' for k, v in kept
            )
            self.out.append(f"<{tag}{text}{' /' if closed else ''}>")
        if tag == "head":
            self.out.append(
                '<meta charset="utf-8">'
                f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">'
            )
        if tag == "a" and "ge-navigation-sidebar-link" in classes:
            self._nav_href, self._nav_text = values.get("href"), []

    @staticmethod
    def _keep(tag: str, name: str, value: str | None) -> bool:
        if name.startswith("on"):
            return False
        if name == "style" and value and re.search(r"url\s*\(|@import|expression", value, re.I):
            return False
        if tag == "a" and name == "href":  # followed on a click only, never on load
            return not (value or "").strip().lower().startswith("javascript:")
        return name not in _URL_ATTRIBUTES or value is None or not _external(value)

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[0]:
                self._skip.pop()
            return
        if tag in _DROP_VOID or tag == "img":
            return
        if tag == "head":
            self.out.append(f"<style>{_STYLE}</style>")
        if tag == "a" and self._nav_href is not None:
            label = html.unescape("".join(self._nav_text)).strip()
            self.sections.setdefault(label, self._nav_href)
            self._nav_href = None
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._nav_href is not None:
            self._nav_text.append(data)
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.handle_data(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.handle_data(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        pass  # conditional comments could load things; nothing else is lost

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        pass

    def unknown_decl(self, data: str) -> None:
        pass
