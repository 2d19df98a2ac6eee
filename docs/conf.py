"""Sphinx configuration for the pyro4compat documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "pyro4compat"
author = "the pyro4compat developers"
extensions = ["sphinx.ext.autodoc"]
master_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
