"""Device emulators, named like their drivers (``drivers/power/korad.py`` <->
``devices/korad.py``): supply, relay, hub, readers, cards, and the ports they are served on."""
