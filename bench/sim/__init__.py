"""The virtual bench: device emulators on real transports, with injectable faults."""

PROTOCOLS = ("agent", "zvt", "zvt-tcp")
"""ECR protocols the virtual unit can speak: posbench's agent protocol, ZVT on a pty, ZVT on TCP."""
