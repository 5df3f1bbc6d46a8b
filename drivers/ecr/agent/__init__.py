"""posbench's own agent protocol (units running posbench's diagnostic agent) on the ENQ/ACK serial
link (``posbench.drivers.transport``): messages (``codec``), the ``Terminal`` driver (``adapter``)."""
