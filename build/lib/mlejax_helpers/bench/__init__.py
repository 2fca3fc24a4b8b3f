"""The benchmark harness behind chapter 7: ``python -m mlejax_helpers.bench --help``.

* :mod:`.suites`: what is measured (one :class:`~.suites.Config` per row);
* :mod:`.child`: measures one configuration, in its own process;
* :mod:`.runner`: runs configurations in child processes with a wall-clock and a
  memory limit, appending one JSON Lines record per configuration at once;
* :mod:`.records`: provenance, reading and writing records;
* :mod:`.report`: tables for the book, computed from records only.
"""
