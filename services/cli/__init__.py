"""The `linkpulse` console command."""
