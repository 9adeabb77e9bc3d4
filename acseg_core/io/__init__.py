"""Files in and out: rasters read by windows, label files, normalisation, atomic writes,
streamed writers and display maths."""
