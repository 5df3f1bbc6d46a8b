"""Verdict -> words and pages: the first screen, the HTML panel and the stored-run page, plots, output files."""
