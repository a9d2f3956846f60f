"""Infrastructure every stage uses: atomic writes and logging for Snakemake jobs, feature stores, netCDF, provenance,
job costs."""
