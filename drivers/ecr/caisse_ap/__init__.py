"""Caisse-AP (Concert V3) over TCP: the French ECR protocol of Ingenico, Verifone and other
terminals. ``fields`` is the ``TAG LEN VALUE`` codec and its code tables, ``client`` one request
and its answer on a TCP connection (and ``probe`` for ``posbench discover``), ``payment_terminal``
the neutral ``posbench.drivers.terminal.Terminal`` over it."""
