"""The virtual terminals: one front end per ECR protocol on the shared virtual unit, each loaded
by name through ``posbench.drivers.registry``."""
