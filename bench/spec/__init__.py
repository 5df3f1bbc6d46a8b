"""How a HIL test declares and records: measurements, the run record and its evidence, the read-path SPRT, the supply watch."""
