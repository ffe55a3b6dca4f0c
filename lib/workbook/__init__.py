"""What notebooks and the shell call: notebook helpers, results, plots, explorer, analysis, test_time,
runner, sweep, share and the CLI."""
