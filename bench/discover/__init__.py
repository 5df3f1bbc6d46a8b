"""``posbench discover``: find the whole bench and describe it as a bench.toml.

- ``probes``: the probe table (a protocol per entry: line settings, question, what answers);
- ``survey``: serial ports, TCP addresses, USB backends and NFC readers looked at once;
- ``usb`` / ``nfc``: what USB devices are (vid:pid and class), contactless readers via nfcpy;
- ``virtual``: what only a running virtual bench's own description can say;
- ``writer``: the bench.toml of a terminal's bench; ``readers``: with no terminal, a card reader
  found as the unit (its reader profile); ``sections``: the tables both compose;
- ``report``: what a person reads.
"""
