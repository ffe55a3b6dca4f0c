"""What runs: presets, variants, the claims they test, and the resolver (resolve.py: make_config)."""
