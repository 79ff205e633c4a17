"""A local stand-in for services the tests cannot reach: an OpenAI-compatible chat API and a
plain REST model, plus routes that fail on purpose (to exercise retries and error messages).

It is a real HTTP server (Starlette under uvicorn, in a thread, on 127.0.0.1 and a free
port), so the clients are tested over real sockets. Only for *remote* services: our own
model server is never stood in for.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

CHAT_MODEL = "stand-in-chat"
EMBED_MODEL = "stand-in-embed"


class StandIn:
    """State the tests inspect: ``hits`` per route, ``chat_429`` pending rate-limit answers."""

    def __init__(self, key: str):
        self.key = key
        self.hits: collections.Counter = collections.Counter()
        self.chat_429 = 0           # how many chat calls to answer 429 (Retry-After: 1) first
        self.flaky = 0              # how many /flaky calls to answer 503 first
        self.seen_auth: list[str] = []
        self.chat_models = {CHAT_MODEL}  # a test standing in for a real service adds that service's model names
        self.stream_delay = 0.05    # seconds between streamed words
        self.app = Starlette(routes=[
            Route("/v1/models", self.models),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/rest/echo", self.echo, methods=["POST"]),
            Route("/rest/predict", self.rest_predict, methods=["POST"]),
            Route("/flaky", self.flaky_route, methods=["POST"]),
            Route("/status/{code:int}", self.status, methods=["GET", "POST"]),
            Route("/slow", self.slow, methods=["POST"]),
            Route("/limited", self.limited, methods=["POST"]),
            Route("/leaky", self.leaky, methods=["POST"]),
        ])

    def _denied(self, request: Request) -> JSONResponse | None:
        got = request.headers.get("authorization", "")
        self.seen_auth.append(got)
        if not got:
            return JSONResponse({"error": {"message": "missing API key", "type": "auth"}}, 401)
        if got != f"Bearer {self.key}":
            return JSONResponse({"error": {"message": "incorrect API key provided", "type": "auth"}}, 401)
        return None

    async def models(self, request: Request):
        self.hits["models"] += 1
        return self._denied(request) or JSONResponse(
            {"object": "list", "data": [{"id": CHAT_MODEL, "object": "model"}, {"id": EMBED_MODEL, "object": "model"}]})

    async def chat(self, request: Request):
        self.hits["chat"] += 1
        if (denied := self._denied(request)) is not None:
            return denied
        if self.chat_429 > 0:
            self.chat_429 -= 1
            return JSONResponse({"error": {"message": "rate limit reached", "type": "requests"}}, 429,
                                headers={"Retry-After": "1"})
        body = await request.json()
        if body.get("model") not in self.chat_models:
            return JSONResponse({"error": {"message": f"model {body.get('model')!r} does not exist"}}, 404)
        prompt = body["messages"][-1]["content"]
        if body.get("stream"):
            return StreamingResponse(self._chunks(body["model"], f"**echo:** {prompt.strip()}"),
                                     media_type="text/event-stream")
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                             "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                 "role": "assistant", "content": f"**echo:** {prompt.strip()}"}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    async def _chunks(self, model: str, answer: str):
        """The answer as OpenAI streams it: a role chunk, one chunk per word (``stream_delay`` s
        apart), ``[DONE]``. A prompt with ``[fail mid-stream]`` gets an error event after two words,
        one with ``[drop mid-stream]`` a connection closed after two words."""
        def event(obj) -> str:
            return f"data: {json.dumps(obj)}\n\n"

        base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "model": model}
        yield event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        words = answer.split(" ")
        for i, word in enumerate(words):
            if i == 2 and "[fail mid-stream]" in answer:
                yield event({"error": {"message": "the model is overloaded", "type": "server_error"}})
                return
            if i == 2 and "[drop mid-stream]" in answer:
                raise ConnectionResetError("stand-in drops the stream")
            await asyncio.sleep(self.stream_delay)
            yield event({**base, "choices": [{"index": 0, "delta": {"content": word + (" " if i < len(words) - 1 else "")}}]})
        yield event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        yield "data: [DONE]\n\n"

    async def embeddings(self, request: Request):
        self.hits["embeddings"] += 1
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(texts)]
        return JSONResponse({"object": "list", "data": data[::-1], "model": body["model"],  # any order
                             "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    async def echo(self, request: Request):
        self.hits["echo"] += 1
        return JSONResponse({"echo": await request.json()})

    async def rest_predict(self, request: Request):
        self.hits["rest_predict"] += 1
        body = await request.json()
        texts = body["text"] if isinstance(body, dict) else body
        return JSONResponse({"predictions": [len(str(t)) for t in texts]})

    async def flaky_route(self, request: Request):
        self.hits["flaky"] += 1
        if self.flaky > 0:
            self.flaky -= 1
            return JSONResponse({"error": "warming up"}, 503)
        return JSONResponse({"ok": True})

    async def status(self, request: Request):
        code = request.path_params["code"]
        self.hits[f"status{code}"] += 1
        fmt = request.query_params.get("fmt", "error")
        if fmt == "text":
            return PlainTextResponse(f"plain failure {code}\nsecond line", code)
        return JSONResponse({fmt: f"failure {code} via {fmt}"}, code)

    async def slow(self, request: Request):
        await asyncio.sleep(3)
        return JSONResponse({"ok": True})

    async def limited(self, request: Request):
        self.hits["limited"] += 1
        return JSONResponse({"error": "quota exhausted"}, 429, headers={"Retry-After": "3600"})


    async def leaky(self, request: Request):
        """A careless server that echoes the caller's key in its error."""
        return JSONResponse({"error": f"key {request.headers.get('authorization')} is not allowed here"}, 400)


def vector(text: str) -> list[float]:
    """A deterministic 3-d 'embedding' the tests can recompute."""
    return [float(len(text)), float(text.count("a")), 1.0]


@contextlib.contextmanager
def serve(app):
    """Run *app* under uvicorn on 127.0.0.1:<free port> in a thread; yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the stand-in server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def running(secret: str):
    """A StandIn serving on loopback with ``url`` set: what each test module's fixture yields."""
    standin = StandIn(secret)
    with serve(standin.app) as url:
        standin.url = url
        yield standin
