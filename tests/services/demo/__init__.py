"""Tests of the demo data generator (services/demo)."""
