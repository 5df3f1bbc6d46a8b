"""Physical actions on the unit: swiping, tapping and inserting test cards.

Drivers: ``manual`` (the technician, prompted), ``virtual`` (the virtual bench's control port);
``posbench.setup.devices.open_actuator`` makes one from an ``[actuator]`` section.
"""
