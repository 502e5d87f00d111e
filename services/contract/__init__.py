"""The compiled contract read at the descriptor level (services.contract.compiled builds it once):
RPCs and their policies, HTTP routes and path templates, request binders, field facts."""
