"""Results of a run: KPI tables, run folders and day logs (they read the world's records)."""
