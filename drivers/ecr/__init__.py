"""ECR protocols of payment terminals, one package each (``agent``, ``zvt``, ``concert``,
``caisse_ap``), every one with the same module names for the same layers where they apply:
``link`` (framing, transport), ``codec`` (messages), ``codes`` (result and reason codes and the
cause each points to), ``client``, ``adapter`` (the neutral ``posbench.drivers.terminal.Terminal``),
``section`` (its bench.toml ``[terminal]`` fields), ``check`` (its preflight check) and ``probe``
(its ``posbench discover`` probes). ``posbench.drivers.registry`` finds them by protocol name."""
