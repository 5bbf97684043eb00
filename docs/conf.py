"""Sphinx configuration of the alliancestats documentation."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))
# autosummary writes the API pages into generated/ (git-ignored) on every build; pages
# left from renamed or removed entries would be orphans, which -W turns into errors.
shutil.rmtree(DOCS / "generated", ignore_errors=True)

import alliancestats  # noqa: E402  (needs the sys.path entry above)

project = "alliancestats"
author = "The alliancestats developers"
copyright = "The alliancestats developers"
release = alliancestats.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc renders the types from the docstrings
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
intersphinx_mapping: dict[str, tuple[str, None]] = {}
exclude_patterns = ["_build"]
nitpicky = False
# The synthesis guide lists its references as numbered footnotes without citing each.
suppress_warnings = ["ref.footnote"]

try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:  # the default theme still builds the same pages
    html_theme = "alabaster"
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        # API pages have one section: their "on this page" column only narrows the text
        "secondary_sidebar_items": {"generated/*": []},
    }
    # pages without sub-pages need no section navigation
    html_sidebars = {page: [] for page in ("getting_started", "examples", "coming_from_r",
                                           "changelog")}
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_title = f"alliancestats {release}"
