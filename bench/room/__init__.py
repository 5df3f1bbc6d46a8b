"""A bench room on labgrid: benches as places of a coordinator (docs/bench-setup.md).

``exported`` is the place's format (exporter config out, bench description back in), ``client``
the one labgrid client session of a process, ``place_bench`` a place acquired for one triage.
labgrid is an optional extra (``posbench[labgrid]``): nothing here imports it before it is used.
"""
