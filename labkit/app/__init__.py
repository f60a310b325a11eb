"""labkit's application layer: the programs people run, on top of every library layer.

* ``cli``       -- the ``labkit`` command (``run``, ``list``, ``try``, ``workshop``, ``cluster``,
  ``bench``, ``lab``, ...): argument parsing, one-line errors, exit codes;
* ``runner``    -- executes scenario notebooks headless with papermill (``labkit run``);
* ``bench``     -- the benchmark contract (``Figure``, ``report``) and ``labkit bench``;
* ``manifests`` -- all-or-nothing apply of a manifest file with file/field errors.

Nothing below this package imports it (``tests/test_layers.py``).  Import the modules
themselves; this package module re-exports nothing.
"""
