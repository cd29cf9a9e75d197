"""One picture's tiles on a Dask cluster: each evaluation's tiles run on the workers, the optimizer stays here."""
