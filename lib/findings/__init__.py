"""The claim checker and its certification: findings, stats, golden."""
