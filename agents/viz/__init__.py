"""Maps, reports, figures and screenshots; plotting libraries are imported where they draw."""
