"""The computation engine: set-based SQL that turns readings into cached results."""
