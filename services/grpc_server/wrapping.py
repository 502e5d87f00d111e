"""Wrapping an RPC method handler so code runs around every call, whatever its streaming kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

# Run after a call with the exception it ended with (None: it returned).
Cleanup = Callable[[BaseException | None], None]


async def no_error_handling(_exc: BaseException, _context: grpc.aio.ServicerContext) -> None:
    """An `on_error` leaving every exception as it is."""
    return None


def no_cleanup(_exc: BaseException | None) -> None:
    """A cleanup with nothing to do."""
    return None


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    before: Callable[[grpc.aio.ServicerContext], Awaitable[Cleanup]],
    on_error: Callable[[BaseException, grpc.aio.ServicerContext], Awaitable[None]],
) -> grpc.RpcMethodHandler:
    """A handler that awaits `before` (whose result is a cleanup, called with how the call
    ended), then the original behaviour; exceptions from either go to `on_error`."""

    async def _unary(behavior: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            cleanup = await before(context)
            try:
                result = behavior(request, context)
                if isinstance(result, Awaitable):
                    result = await result
            except BaseException as exc:  # noqa: BLE001 - re-raised
                cleanup(exc)
                raise
            cleanup(None)
            return result
        except BaseException as exc:  # noqa: BLE001 - handed to on_error, which re-raises
            await on_error(exc, context)
            raise

    async def _stream(
        behavior: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        try:
            cleanup = await before(context)
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as exc:  # noqa: BLE001 - re-raised
                cleanup(exc)
                raise
            cleanup(None)
        except BaseException as exc:  # noqa: BLE001
            await on_error(exc, context)
            raise

    # grpc.aio picks how to drive a behaviour from its kind (coroutine or async generator
    # function), so each wrapper is a named async def, never a lambda.
    if handler.unary_unary or handler.stream_unary:
        fn = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await _unary(fn, request, context)

        factory = (
            grpc.unary_unary_rpc_method_handler
            if handler.unary_unary
            else grpc.stream_unary_rpc_method_handler
        )
        return factory(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    fn = handler.unary_stream or handler.stream_stream

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for item in _stream(fn, request, context):
            yield item

    factory = (
        grpc.unary_stream_rpc_method_handler
        if handler.unary_stream
        else grpc.stream_stream_rpc_method_handler
    )
    return factory(
        stream,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
