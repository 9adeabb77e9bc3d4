"""Scoring against labels: confusion, Hungarian/majority maps, the k-means baseline,
labelled-folder evaluation."""
