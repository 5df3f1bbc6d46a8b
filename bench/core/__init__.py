"""Leaf modules that import nothing of posbench outside core: errors, masking, limits, stats, threads, processes, signals, network namespaces, the console."""
