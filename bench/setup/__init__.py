"""What a bench is: the bench.toml model, DUT profiles, the card deck, the bench lock, the preflight and device checks, udev rules, the device directory."""
