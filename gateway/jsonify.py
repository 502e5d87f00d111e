"""Protobuf messages to JSON-ready dicts (in services.rpc.jsonify, shared with the workers)."""

from services.rpc.jsonify import message_to_dict

__all__ = ["message_to_dict"]
