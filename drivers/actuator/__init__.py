"""Physical actions on the unit: swiping, tapping and inserting test cards."""
