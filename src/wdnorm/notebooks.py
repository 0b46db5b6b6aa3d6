"""Execute a papermill notebook template into an output notebook, atomically.

papermill writes its output path directly (and re-saves it after every cell), so the
notebook executes into a temporary ``.ipynb`` beside the target that is renamed onto it
only when the run succeeded and wrote every file it promised. A failed run leaves its
partial notebook as ``{name}.failed.ipynb`` beside the log, for reading.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("wdnorm")


def execute(template, output_notebook, parameters: dict, expected_outputs=(),
            failed_dir=None, kernel_name: str = "python3") -> Path:
    import papermill  # only the figure jobs need it

    output_notebook = Path(output_notebook)
    output_notebook.parent.mkdir(parents=True, exist_ok=True)
    log.info("executing %s with %s", template, parameters)
    fd, tmp = tempfile.mkstemp(prefix=f".{output_notebook.stem}.", suffix=".ipynb",
                               dir=output_notebook.parent)
    os.close(fd)
    try:
        papermill.execute_notebook(str(template), tmp, parameters=parameters,
                                   kernel_name=kernel_name, log_output=False,
                                   progress_bar=False, cwd=os.getcwd())
        missing = [str(p) for p in expected_outputs if not Path(p).is_file()]
        if missing:
            raise RuntimeError(f"notebook {template} did not write {missing}")
    except BaseException:
        if os.path.exists(tmp):
            failed = Path(failed_dir or output_notebook.parent) / f"{output_notebook.stem}.failed.ipynb"
            os.replace(tmp, failed)
            log.exception("notebook failed; the partial notebook is %s", failed)
        raise
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 was for the temporary file only
    os.replace(tmp, output_notebook)
    return output_notebook
