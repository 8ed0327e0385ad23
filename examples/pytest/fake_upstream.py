"""A stand-in for the real servers the example tests talk to: an OpenAI-style chat completions API that
streams over SSE, and a WebSocket chat. Only needed to record the cassettes again (record.py)."""

from __future__ import annotations

import json
import time

from aiohttp import web


def chunk(content: str) -> bytes:
    delta = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": int(time.time()), "model": "gpt-test",
             "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
    return f"data: {json.dumps(delta)}\n\n".encode()


async def completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    prompt = body["messages"][-1]["content"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    for word in f"You asked: {prompt}".split(" "):
        await response.write(chunk(word + " "))
    await response.write(b"data: [DONE]\n\n")
    return response


async def chat(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(json.dumps({"type": "welcome", "room": "general"}))
    async for message in ws:
        joined = json.loads(message.data)
        await ws.send_str(json.dumps({"type": "joined", "room": joined["room"], "members": 3}))
        for n in range(3):
            await ws.send_str(json.dumps({"type": "message", "n": n, "text": f"hello {n}"}))
        await ws.close(code=1000, message=b"bye")
    return ws


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/v1/chat/completions", completions)
    application.router.add_get("/ws/chat", chat)
    return application


if __name__ == "__main__":
    web.run_app(app(), host="127.0.0.1", port=8765)
