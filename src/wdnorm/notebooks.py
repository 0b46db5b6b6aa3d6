"""Execute a papermill notebook template into an output notebook, atomically.

papermill writes its output path directly (and re-saves it after every cell), so the
notebook executes into a temporary ``.ipynb`` beside the target (wdnorm.fileio) that is
renamed onto it only when the run succeeded and wrote every file it promised. A failed
run leaves a copy of its partial notebook as ``{name}.failed.ipynb`` for reading.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from . import fileio

log = logging.getLogger("wdnorm")


def execute(template, output_notebook, parameters: dict, expected_outputs=(),
            failed_dir=None, kernel_name: str = "python3") -> Path:
    import papermill  # only the figure jobs need it

    output_notebook = Path(output_notebook)
    log.info("executing %s with %s", template, parameters)
    with fileio.atomic_path(output_notebook, suffix=".ipynb") as tmp:
        try:
            papermill.execute_notebook(str(template), str(tmp), parameters=parameters,
                                       kernel_name=kernel_name, log_output=False,
                                       progress_bar=False, cwd=os.getcwd())
            missing = [str(p) for p in expected_outputs if not Path(p).is_file()]
            if missing:
                raise RuntimeError(f"notebook {template} did not write {missing}")
        except BaseException:
            if tmp.exists() and tmp.stat().st_size:
                failed = (Path(failed_dir or output_notebook.parent)
                          / f"{output_notebook.stem}.failed.ipynb")
                shutil.copyfile(tmp, failed)
                log.exception("notebook failed; the partial notebook is %s", failed)
            raise
    return output_notebook
