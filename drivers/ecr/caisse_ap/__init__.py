"""Caisse-AP (Concert V3) over TCP: the French ECR protocol of Ingenico, Verifone and other
terminals. ``codec`` is the ``TAG LEN VALUE`` codec and its code tables, ``codes`` the AF reasons
and the causes they point to, ``client`` one request and its answer on a TCP connection,
``adapter`` the neutral ``posbench.drivers.terminal.Terminal`` over it; ``section``, ``check`` and
``probe`` its ``[terminal]`` fields, preflight check and discover probe."""
