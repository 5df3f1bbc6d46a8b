"""The virtual unit: its model (state, journal, host link), its power, the faults injected into it
and the front-end base every virtual terminal builds on."""
