"""The virtual bench: device emulators on real transports, with injectable faults."""
from posbench.drivers import registry

PROTOCOLS = registry.sim_names()
"""ECR protocols the virtual unit can speak, each with its variants (``posbench.drivers.registry``):
posbench's agent protocol, ZVT on a pty, ZVT on TCP ("zvt-tcp"), Concert V2 on a pty, Caisse-AP
(Concert V3) on TCP."""
