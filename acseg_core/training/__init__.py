"""Training: the run config, random crops of a folder, the loop with resume, DDP, the
run log and the time estimate."""
