"""posbench's own agent protocol (units running posbench's diagnostic agent) on the ENQ/ACK serial
link (``posbench.drivers.transport``): messages (``codec``), failure reasons and their causes
(``codes``), the ``Terminal`` driver (``adapter``), its ``[terminal]`` fields (``section``),
preflight check (``check``) and discover probe (``probe``)."""
