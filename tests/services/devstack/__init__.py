"""Tests of the development stack (services/devstack)."""
