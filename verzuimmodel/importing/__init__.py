"""Importing a municipality's own export with a mapping file.

A registry export seldom follows the package's format (``data/README.md``): Dutch column names, its own
file and sheet names, ``V``/``M`` and ``ja``/``nee``, Dutch outcome labels, ``dd-mm-jjjj`` dates,
decimal commas, ``;`` separators, cp1252 files. An import mapping (TOML) says how it maps onto the five
tables; the Dutch template ``nl_template`` is shipped with the package::

    import verzuimmodel as vm

    cohort, log = vm.importing.read_export("export/", "koppeling.toml")   # validated cohort + log
    vm.importing.import_export("export/", "koppeling.toml", "cohort/")    # ... written, with import_log.csv
    print(vm.importing.template_text())                                   # the Dutch template

On the command line: ``verzuim import EXPORT --mapping koppeling.toml --out cohort/``,
``verzuim validate EXPORT --mapping koppeling.toml`` and ``verzuim mapping template --out koppeling.toml``.
The mapping's keys are documented in ``data/README.md`` ("Importing a municipality's own export").
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ..i18n import LocalizedFileExistsError, Message
from .convert import LOG_COLUMNS, LOG_FILE, as_mapping, identifier_kind, import_export, read_export, write_import
from .mapping import TEMPLATES, ImportMapping, MappingError, template_text

__all__ = ["ImportMapping", "MappingError", "LOG_COLUMNS", "LOG_FILE", "TEMPLATES", "as_mapping", "identifier_kind",
           "import_export", "read_export", "template_text", "write_import", "write_template"]


def write_template(path: str | os.PathLike, name: str = "nl_template") -> Path:
    """Write the shipped mapping template ``name`` to file ``path``, which must not exist yet.

    The file is written beside ``path`` first and then linked into place, which fails if ``path``
    appeared in the meantime: an existing file (the user's own mapping) is never replaced.

    Raises
    ------
    FileExistsError
        ``path`` exists.
    """
    path = Path(path)
    text = template_text(name)
    if path.exists() or path.is_symlink():
        raise LocalizedFileExistsError(Message("mapping.template_exists", path=str(path)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        tmp.write_text(text, encoding="utf-8")
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise LocalizedFileExistsError(Message("mapping.template_exists", path=str(path))) from None
        except OSError:  # a file system without hard links
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
    finally:
        tmp.unlink(missing_ok=True)
    return path
