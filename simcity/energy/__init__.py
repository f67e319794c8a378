"""Electric load of the city's nodes and grid carbon intensity."""
