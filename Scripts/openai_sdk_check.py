"""The OpenAI Python SDK against `sagellm serve`: models, a whole and a streamed chat, a
completion, and the SDK's own exceptions for 401, 404 and 400. Used by Scripts/smoke.sh when
the `openai` package is installed (pip install openai); exits non-zero on the first mismatch.

usage: python3 Scripts/openai_sdk_check.py BASE_URL API_KEY MODEL
"""
import sys

import openai
from openai import OpenAI

base_url, key, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base_url, api_key=key, max_retries=0)
messages = [{"role": "user", "content": "Hello"}]

assert model in [m.id for m in client.models.list().data], "the model is listed"
whole = client.chat.completions.create(model=model, messages=messages, max_tokens=8)
assert whole.choices[0].message.content and whole.usage.completion_tokens == 8, whole
streamed = client.chat.completions.create(model=model, messages=messages, max_tokens=8, stream=True)
assert "".join((chunk.choices[0].delta.content or "") for chunk in streamed if chunk.choices), "the stream has text"
assert client.completions.create(model=model, prompt="Once", max_tokens=4).choices[0].text, "a completion"
try:
    OpenAI(base_url=base_url, api_key="sk-not-a-key-000", max_retries=0).models.list()
    raise SystemExit("an unknown key was accepted")
except openai.AuthenticationError as error:
    assert error.code == "invalid_api_key", error.body
try:
    client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
    raise SystemExit("an unknown model was accepted")
except openai.NotFoundError as error:
    assert error.code == "model_not_found", error.body
try:
    client.chat.completions.create(model=model, messages=messages, max_tokens=0)
    raise SystemExit("max_tokens 0 was accepted")
except openai.BadRequestError as error:
    assert error.param == "max_tokens", error.body
print("openai", openai.__version__, "SDK through the gateway: models, chat, stream, completion, 401, 404, 400 as expected")
