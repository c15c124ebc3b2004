"""MkDocs hooks (``hooks:`` in mkdocs.yml) that generate parts of the site at every build:

* ``cli.md``: the help text of ``zcnas`` and of each subcommand, taken from
  ``zcnas.cli.build_parser()``, so the CLI reference cannot drift from the code;
* the API reference of each role page: ``API`` below is the one list of ``::: module`` blocks
  (rendered by mkdocstrings); each listed page keeps its prose in ``docs/<page>`` and gets an
  "API" section appended. After moving a module, edit only this dict.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mkdocs.structure.files import File
from mkdocs.structure.files import Files


#: page -> public modules documented on it, in order
API: dict[str, list[str]] = {
    "proxies.md": ["zcnas.proxies", "zcnas.scoring", "zcnas.data"],
    "spaces.md": ["zcnas.spaces"],
    "benchmarks.md": ["zcnas.benchmarks"],
    "analysis.md": ["zcnas.analysis", "zcnas.ensembles", "zcnas.reports"],
    "search.md": ["zcnas.search.optuna", "zcnas.search.nni", "zcnas.search.studies",
                  "zcnas.search.scale", "zcnas.search.compare", "zcnas.oneshot"],
    "storage.md": ["zcnas.storage"],
    "plugins.md": ["zcnas.testing"],
}
CLI_PAGE = "cli.md"


def cli_reference() -> str:
    """Markdown with one fenced help text per command, in the order ``zcnas --help`` lists them."""
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width: fix it for the docs
    from zcnas.cli import build_parser

    parser = build_parser()
    out = ["# Command line", "",
           "Generated from `zcnas --help` and each `zcnas COMMAND --help` at every docs build.", "",
           "## zcnas", "", "```text", parser.format_help().rstrip(), "```", ""]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        out += [f"## zcnas {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def api_section(modules: list[str]) -> str:
    """The "API" section appended to a role page: one mkdocstrings block per module."""
    return "\n\n## API\n\n" + "\n".join(f"### `{m}`\n\n::: {m}\n" for m in modules)


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, CLI_PAGE, content=cli_reference()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    modules = API.get(page.file.src_uri)
    return markdown + api_section(modules) if modules else markdown
