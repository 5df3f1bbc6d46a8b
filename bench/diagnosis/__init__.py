"""Run record -> verdict: the cause taxonomy, the rules that turn what a unit reported into evidence, the ranking."""
