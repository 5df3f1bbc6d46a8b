"""The virtual bench: device emulators on real transports, with injectable faults."""

PROTOCOLS = ("agent", "zvt", "zvt-tcp", "concert", "caisse-ap")
"""ECR protocols the virtual unit can speak: posbench's agent protocol, ZVT on a pty, ZVT on TCP,
Concert V2 on a pty, Caisse-AP (Concert V3) on TCP."""
