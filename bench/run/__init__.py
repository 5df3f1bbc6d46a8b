"""Running the HIL suite: the runner (pytest in-process) and the calibration of the diagnosis."""
