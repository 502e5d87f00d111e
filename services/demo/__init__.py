"""Demo data: a workspace with campaigns, links and rules, and realistic generated events."""

from __future__ import annotations

from services.demo.loader import load_demo

__all__ = ["load_demo"]
