"""Image generation through the gateway (`/v1/images/generations`) with the official openai
SDK, against OpenAI, Azure and Stability AI deployments of the mock provider, plus two rows
of the OpenAI-compatible table through chat.

The mock answers every image with the same 1x1 PNG; what each test checks is what the
gateway sent upstream (found at the mock by a unique marker in the prompt) and the OpenAI
shape of what came back.
"""

import base64

import openai
import pytest

from conftest import assert_error_shape, marker

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(b64: str) -> bool:
    return base64.b64decode(b64).startswith(PNG_MAGIC)


# ---------------------------------------------------------------------- OpenAI


def test_openai_images_b64(client, mock):
    mark = marker()
    resp = client.images.generate(model="images-openai", prompt=f"a red fox {mark}", size="1024x1024", n=2)
    assert resp.created > 0
    assert len(resp.data) == 2
    assert all(is_png(d.b64_json) for d in resp.data)
    assert resp.data[0].revised_prompt == f"a red fox {mark}"
    rec = mock.get("dall-e-3", mark)
    assert rec["path"] == "/v1/images/generations"
    assert rec["body"]["model"] == "dall-e-3"
    assert rec["body"]["n"] == 2
    assert rec["headers"]["authorization"].startswith("Bearer ")


def test_openai_images_url(client):
    resp = client.images.generate(model="images-openai", prompt=f"a cat {marker()}", response_format="url")
    assert resp.data[0].url.startswith("https://")
    assert resp.data[0].b64_json is None


def test_unversioned_route(raw):
    r = raw.post("/images/generations", json={"model": "images-openai", "prompt": f"x {marker()}"})
    assert r.status_code == 200, r.text
    assert r.headers["x-litellm-model-group"] == "images-openai"


# ----------------------------------------------------------------------- Azure


def test_azure_images_use_the_deployment_path(client, mock):
    mark = marker()
    resp = client.images.generate(model="images-azure", prompt=f"a lighthouse {mark}", quality="hd", style="natural")
    assert is_png(resp.data[0].b64_json)
    rec = mock.get("dalle-deploy", mark)
    assert rec["path"] == "/openai/deployments/dalle-deploy/images/generations"
    assert "api-version=2024-10-21" in rec["query"]
    assert rec["headers"].get("api-key")
    assert rec["body"]["quality"] == "hd"


# ------------------------------------------------------------------- Stability


def test_stability_sd3_maps_size_to_aspect_ratio(client, mock):
    mark = marker()
    resp = client.images.generate(model="images-stability", prompt=f"a castle {mark}", size="1792x1024")
    assert len(resp.data) == 1
    assert is_png(resp.data[0].b64_json)
    rec = mock.get("sd3.5-large", mark)
    assert rec["path"] == "/v2beta/stable-image/generate/sd3"
    assert rec["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert rec["headers"]["accept"] == "application/json"
    assert rec["headers"]["authorization"].startswith("Bearer ")
    form = rec["body"]
    assert form["prompt"] == f"a castle {mark}"
    assert form["aspect_ratio"] == "16:9"
    assert form["model"] == "sd3.5-large"
    assert form["output_format"] == "png"


def test_stability_core_and_passthrough_fields(client, mock):
    mark = marker()
    resp = client.images.generate(
        model="images-stability-core",
        prompt=f"a meadow {mark}",
        extra_body={"negative_prompt": "people", "seed": 7},
    )
    assert is_png(resp.data[0].b64_json)
    rec = mock.get("stable-image-core", mark)
    assert rec["path"] == "/v2beta/stable-image/generate/core"
    assert "model" not in rec["body"]
    assert rec["body"]["negative_prompt"] == "people"
    assert rec["body"]["seed"] == "7"


def test_stability_url_is_a_data_url(client):
    resp = client.images.generate(model="images-stability", prompt=f"a boat {marker()}", response_format="url")
    url = resp.data[0].url
    assert url.startswith("data:image/png;base64,")
    assert is_png(url.split(",", 1)[1])


def test_stability_refuses_openai_only_params(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.images.generate(model="images-stability", prompt=f"x {marker()}", quality="hd")
    err = assert_error_shape(e.value.response.json())
    assert err["param"] == "quality"
    with pytest.raises(openai.BadRequestError) as e:
        client.images.generate(model="images-stability", prompt=f"x {marker()}", n=2)
    assert e.value.response.json()["error"]["param"] == "n"


# ------------------------------------------------------- validation and routing


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "images-openai"}, "prompt"),
        ({"model": "images-openai", "prompt": ""}, "prompt"),
        ({"model": "images-openai", "prompt": "x", "n": "two"}, "n"),
        ({"model": "images-openai", "prompt": "x", "n": 11}, "n"),
        ({"model": "images-openai", "prompt": "x", "size": 1024}, "size"),
        ({"model": "images-openai", "prompt": "x", "response_format": "gif"}, "response_format"),
        ({"model": "images-openai", "prompt": "x", "quality": ["hd"]}, "quality"),
        ({"model": "images-openai", "prompt": "x", "style": "pop-art"}, "style"),
        ({"prompt": "x"}, "model"),
    ],
)
def test_bad_requests_are_400_with_param(raw, body, param):
    r = raw.post("/v1/images/generations", json=body)
    assert r.status_code == 400, r.text
    assert assert_error_shape(r.json())["param"] == param


def test_chat_only_provider_refuses_images(raw):
    r = raw.post("/v1/images/generations", json={"model": "claude", "prompt": "x"})
    assert r.status_code == 400, r.text
    assert "does not support image generation" in assert_error_shape(r.json())["message"]


def test_upstream_rate_limit_is_429(client):
    with pytest.raises(openai.RateLimitError) as e:
        client.images.generate(model="images-broken-429", prompt=f"x {marker()}")
    assert e.value.status_code == 429


def test_failed_stability_falls_back_to_openai(raw, mock):
    mark = marker()
    r = raw.post("/v1/images/generations", json={"model": "images-falls-back", "prompt": f"a tree {mark}"})
    assert r.status_code == 200, r.text
    assert r.headers["x-litellm-attempted-fallbacks"] == "1"
    assert r.headers["x-litellm-model-group"] == "images-openai"
    assert is_png(r.json()["data"][0]["b64_json"])
    assert mock.find("sd3.5-large-error-503", mark) is not None, "the failing group was tried first"
    mock.get("dall-e-3", mark)


# --------------------------------------------- OpenAI-compatible table, via chat


def test_sambanova_renames_max_completion_tokens(client, mock):
    mark = marker()
    resp = client.chat.completions.create(
        model="compat-sambanova",
        messages=[{"role": "user", "content": f"hello {mark}"}],
        max_completion_tokens=50,
    )
    assert resp.choices[0].message.content.startswith("mock reply to:")
    body = mock.get("Meta-Llama-3.1-8B-Instruct", mark)["body"]
    assert body["max_tokens"] == 50
    assert "max_completion_tokens" not in body


def test_sambanova_refuses_n_unless_dropped(client, mock):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="compat-sambanova", messages=[{"role": "user", "content": f"hi {marker()}"}], n=2
        )
    assert e.value.response.json()["error"]["param"] == "n"
    mark = marker()
    client.chat.completions.create(
        model="compat-sambanova",
        messages=[{"role": "user", "content": f"hi {mark}"}],
        n=2,
        extra_body={"drop_params": True},
    )
    assert "n" not in mock.get("Meta-Llama-3.1-8B-Instruct", mark)["body"]


def test_nvidia_nim_stream_without_stream_options(client, mock):
    mark = marker()
    chunks = list(
        client.chat.completions.create(
            model="compat-nvidia-nim",
            messages=[{"role": "user", "content": f"hello {mark}"}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("mock reply to:")
    body = mock.get("meta/llama3-8b-instruct", mark)["body"]
    assert "stream_options" not in body
