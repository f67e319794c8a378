"""City graphs: the `City` arrays, generators, TNTP and GraphML readers, `build_city`."""
