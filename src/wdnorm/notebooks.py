"""Execute a papermill notebook template into an output notebook, atomically.

papermill parameterises the template and records the run (parameters, per-cell status
and timing, errors); the cells run in this process, in an IPython shell, through
:class:`InProcessEngine` -- a papermill engine. The default engine would start a Jupyter
kernel per notebook instead: a second Python process that imports everything again
(about a second per figure) and binds TCP ports, which races when snakemake runs several
figure jobs at once ("ZMQError: Address already in use", snakemake/snakemake#3689).
``engine="nbclient"`` still selects papermill's kernel engine.

papermill writes its output path directly (and re-saves it after every cell), so the
notebook executes into a temporary ``.ipynb`` beside the target (wdnorm.fileio) that is
renamed onto it only when the run succeeded and wrote every file it promised. A failed
run leaves a copy of its partial notebook as ``{name}.failed.ipynb`` for reading.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import shutil
from pathlib import Path

from . import fileio

log = logging.getLogger("wdnorm")
ENGINE = "wdnorm-inprocess"


@functools.cache
def _shell():
    """The IPython shell the cells run in, created once (IPython imported on first use:
    only the figure jobs need it)."""
    import nbformat
    from IPython.core.displayhook import DisplayHook
    from IPython.core.interactiveshell import InteractiveShell

    class Shell(InteractiveShell):
        """Keeps a failing cell's traceback for its ``error`` output instead of
        printing it to stdout (as a kernel does)."""

        def enable_gui(self, gui=None):
            pass  # no event loop to run: %matplotlib inline needs none

        def _showtraceback(self, etype, evalue, stb):
            self.last_error = nbformat.v4.new_output(
                "error", ename=etype.__name__, evalue=str(evalue), traceback=stb)

    class ResultHook(DisplayHook):
        """Records a cell's value as an ``execute_result`` output instead of printing
        ``Out[n]:`` to stdout."""

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            self.shell.results.append(nbformat.v4.new_output(
                "execute_result", data=format_dict, metadata=md_dict or {},
                execution_count=self.prompt_count))

        def finish_displayhook(self):
            self._is_active = False

    shell = Shell.instance()
    shell.displayhook = shell.display_trap.hook = ResultHook(shell=shell)
    return shell


def _run_cell(shell, cell) -> bool:
    """Run one code cell, store its outputs as a kernel would; False when it raised."""
    import nbformat
    from IPython.utils.capture import capture_output

    shell.results, shell.last_error = [], None
    with capture_output(display=True) as captured:
        result = shell.run_cell(cell.source, store_history=True)
    cell.execution_count = result.execution_count
    cell.outputs = [nbformat.v4.new_output("stream", name=name, text=text)
                    for name, text in (("stdout", captured.stdout),
                                       ("stderr", captured.stderr)) if text]
    cell.outputs += [nbformat.v4.new_output("display_data", data=o.data,
                                            metadata=o.metadata or {})
                     for o in captured.outputs]
    cell.outputs += shell.results
    if shell.last_error is not None:
        cell.outputs.append(shell.last_error)
    return result.success


def _execute_cells(nb_man) -> None:
    """papermill's bookkeeping (cell status, timing, saves) around cells run by
    :func:`_run_cell`, stopping at the first failing cell as papermill does."""
    shell = _shell()
    for index, cell in enumerate(nb_man.nb.cells):
        try:
            nb_man.cell_start(cell, index)
            if cell.cell_type == "code" and not _run_cell(shell, cell):
                nb_man.cell_exception(cell, cell_index=index)
                break
        finally:
            nb_man.cell_complete(cell, cell_index=index)
    nb_man.nb.metadata["language_info"] = {
        "name": "python", "version": platform.python_version(),
        "mimetype": "text/x-python", "file_extension": ".py"}


@functools.cache
def _engine_class():
    from papermill.engines import Engine

    class InProcessEngine(Engine):
        """A papermill engine running the cells in this process (:func:`_execute_cells`)."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            _execute_cells(nb_man)

    return InProcessEngine


def _register_engine() -> None:
    from papermill.engines import papermill_engines

    if ENGINE not in papermill_engines._engines:
        papermill_engines.register(ENGINE, _engine_class())


def execute(template, output_notebook, parameters: dict, expected_outputs=(),
            failed_dir=None, engine: str = ENGINE, kernel_name: str = "python3") -> Path:
    import papermill  # only the figure jobs need it

    if engine == ENGINE:
        _register_engine()
    output_notebook = Path(output_notebook)
    log.info("executing %s with %s (engine %s)", template, parameters, engine)
    with fileio.atomic_path(output_notebook, suffix=".ipynb") as tmp:
        try:
            papermill.execute_notebook(str(template), str(tmp), parameters=parameters,
                                       engine_name=engine, kernel_name=kernel_name,
                                       log_output=False, progress_bar=False, cwd=os.getcwd())
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
