"""An LLM API streamed over SSE (POST), with the OpenAI Python SDK pointed at mockd."""

from openai import OpenAI


def ask(mockd, prompt: str) -> str:
    client = OpenAI(base_url=mockd.url + "/v1", api_key="sk-example-not-a-secret", max_retries=0)
    stream = client.chat.completions.create(model="gpt-test", stream=True,
                                            messages=[{"role": "user", "content": prompt}])
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream)


def test_each_prompt_gets_its_own_answer(mockd):
    assert ask(mockd, "what is mockd?") == "You asked: what is mockd? "
    assert ask(mockd, "and a cassette?") == "You asked: and a cassette? "
