"""Sphinx configuration for the pyro4compat documentation."""

import os
import re
import sys

sys.path.insert(0, os.path.abspath(".."))

import pyro4compat  # noqa: E402  (after the path change: the docs document this checkout)

project = "pyro4compat"
author = "the pyro4compat developers"
release = version = pyro4compat.__version__
extensions = ["sphinx.ext.autodoc"]
master_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"

# Module docstrings in the package use section titles ("Theory of operation" underlined with
# dashes). Inside an autodoc entry a real section would swallow every member documented after
# it and clutter the page's table of contents, so such titles become rubrics: same text, no
# section.
_TITLE = re.compile(r"^(?P<title>\S.*)$")
_UNDERLINE = re.compile(r"^([-=~^\"'`#*+])\1{2,}\s*$")


def _titles_to_rubrics(app, what, name, obj, options, lines):
    for index in range(len(lines) - 1):
        title, underline = lines[index], lines[index + 1]
        if _TITLE.match(title) and _UNDERLINE.match(underline) and len(underline.strip()) >= len(title.strip()):
            lines[index] = ".. rubric:: " + title.strip()
            lines[index + 1] = ""


def setup(app):
    app.connect("autodoc-process-docstring", _titles_to_rubrics)
