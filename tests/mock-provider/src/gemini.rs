//! Gemini wire format, as Google AI Studio (`/v1beta/models/{m}:...`) and Vertex AI
//! (`/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:...`) speak it:
//! generateContent, streamGenerateContent (SSE with `alt=sse`, else a JSON array),
//! batchEmbedContents / predict embeddings, and Google's error shape.

use bytes::{BufMut, Bytes, BytesMut};
use hyper::http::request::Parts;
use serde_json::Value;

use crate::http::{self, Resp};
use crate::json::{arr, Obj};
use crate::logic::{
    echo_text, embedding, finalize_text, prompt_tokens, query_param, split_words_keep_spaces,
    stop_list, word_count, EventStream, Finish, Reply, Scenario,
};

/// Top-level request fields the real API accepts; others are refused as unknown names.
const ALLOWED_FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
    "labels",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Google AI Studio: an API key.
    Studio,
    /// Vertex AI: an OAuth bearer token.
    Vertex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Generate,
    Stream,
    BatchEmbed,
    Predict,
}

/// A model call, parsed from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRoute {
    pub api: Api,
    pub model: String,
    pub method: Option<Method>,
}

impl ModelRoute {
    /// `None` for paths that are not Gemini model calls.
    pub fn parse(path: &str) -> Option<ModelRoute> {
        let (api, rest) = if let Some(rest) = path.strip_prefix("/v1beta/models/") {
            (Api::Studio, rest)
        } else {
            let rest = path.strip_prefix("/v1/projects/")?;
            let (_, rest) = rest.split_once("/locations/")?;
            let (_, rest) = rest.split_once("/publishers/google/models/")?;
            (Api::Vertex, rest)
        };
        let (model, method) = rest.rsplit_once(':')?;
        let method = match (api, method) {
            (_, "generateContent") => Some(Method::Generate),
            (_, "streamGenerateContent") => Some(Method::Stream),
            (Api::Studio, "batchEmbedContents") => Some(Method::BatchEmbed),
            (Api::Vertex, "predict") => Some(Method::Predict),
            _ => None,
        };
        Some(ModelRoute {
            api,
            model: model.to_owned(),
            method,
        })
    }
}

// ---------------------------------------------------------------------- errors

/// `{"error": {"code", "message", "status"}}`, Google's error shape.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn body(&self) -> Vec<u8> {
        Obj::new()
            .obj(
                "error",
                Obj::new()
                    .num("code", self.status as u64)
                    .str("message", &self.message)
                    .str("status", rpc_status(self.status)),
            )
            .finish()
    }

    pub fn response(&self) -> Resp {
        http::json(self.status, self.body())
    }
}

/// The google.rpc status Google pairs with an HTTP status.
fn rpc_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Gemini's (AI Studio and Vertex) answer to a prompt longer than the context window.
pub fn context_overflow() -> ApiError {
    ApiError::invalid(
        "The input token count (1199842) exceeds the maximum number of tokens allowed (1048576).",
    )
}

pub fn simulated_error(status: u16, model: &str) -> ApiError {
    let what = match status {
        400 => "Request contains an invalid argument.",
        403 => "Permission denied on resource.",
        404 => "Requested entity was not found.",
        429 => "Resource has been exhausted (e.g. check quota).",
        503 => "The model is overloaded. Please try again later.",
        _ => "An internal error has occurred.",
    };
    ApiError::new(
        status,
        format!("{what} (mock-provider simulated error {status} for model '{model}')"),
    )
}

/// AI Studio takes the key in `x-goog-api-key` or the `key` query parameter; Vertex takes an
/// OAuth access token as `Authorization: Bearer`.
pub fn check_auth(api: Api, parts: &Parts) -> Result<(), ApiError> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match api {
        Api::Studio => {
            let key = header("x-goog-api-key")
                .map(str::to_owned)
                .or_else(|| query_param(parts.uri.query(), "key").filter(|k| !k.is_empty()));
            key.map(|_| ()).ok_or_else(|| {
                ApiError::new(
                    403,
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                )
            })
        }
        Api::Vertex => header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| !t.trim().is_empty())
            .map(|_| ())
            .ok_or_else(|| {
                ApiError::new(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                )
            }),
    }
}

// ------------------------------------------------------------------ validation

pub fn validate(v: &Value) -> Result<(), ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::invalid(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    for k in obj.keys() {
        if !ALLOWED_FIELDS.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
            )));
        }
    }
    let contents = match v.get("contents") {
        Some(Value::Array(c)) if !c.is_empty() => c,
        _ => {
            return Err(ApiError::invalid(
                "* GenerateContentRequest.contents: contents is not specified\n",
            ))
        }
    };
    for (i, c) in contents.iter().enumerate() {
        match c.get("role").and_then(Value::as_str) {
            None | Some("user" | "model") => {}
            Some(r) => {
                return Err(ApiError::invalid(format!(
                    "Please use a valid role: user, model. (contents[{i}].role: {r})"
                )))
            }
        }
        if c.get("parts")
            .and_then(Value::as_array)
            .is_none_or(|p| p.is_empty())
        {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- replies

/// Text of every `text` part of a content.
fn parts_text(content: &Value) -> String {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The `response` of the function results in a content, as text.
fn function_results(content: &Value) -> Option<String> {
    let parts = content.get("parts")?.as_array()?;
    let results: Vec<String> = parts
        .iter()
        .filter_map(|p| p.get("functionResponse")?.get("response"))
        .map(|r| match r.get("content") {
            Some(Value::String(s)) => s.clone(),
            _ => r.to_string(),
        })
        .collect();
    (!results.is_empty()).then(|| results.join(" "))
}

fn function_to_call(v: &Value) -> Option<String> {
    let config = v
        .get("toolConfig")
        .and_then(|c| c.get("functionCallingConfig"));
    if config.and_then(|c| c.get("mode")).and_then(Value::as_str) == Some("NONE") {
        return None;
    }
    if let Some(name) = config
        .and_then(|c| c.get("allowedFunctionNames"))
        .and_then(|n| n.get(0))
        .and_then(Value::as_str)
    {
        return Some(name.to_owned());
    }
    v.get("tools")?
        .as_array()?
        .iter()
        .filter_map(|t| t.get("functionDeclarations")?.as_array())
        .flatten()
        .find_map(|d| d.get("name")?.as_str())
        .map(str::to_owned)
}

pub fn reply(v: &Value, sc: &Scenario) -> (Reply, Finish) {
    let config = v.get("generationConfig");
    let max = config.and_then(|c| c.get("maxOutputTokens"));
    if sc.echo_max_tokens {
        return (Reply::Text(echo_text("max_tokens", max)), Finish::Stop);
    }
    let empty = Vec::new();
    let contents = v
        .get("contents")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let stops = stop_list(config.and_then(|c| c.get("stopSequences")));
    let text_reply = |t: String| {
        let (t, f) = finalize_text(t, &stops, max.and_then(Value::as_u64));
        (Reply::Text(t), f)
    };
    if let Some(results) = contents.last().and_then(function_results) {
        return text_reply(format!("tool said: {results}"));
    }
    if let Some(name) = function_to_call(v) {
        return (Reply::Tool(name), Finish::ToolCalls);
    }
    let is_user = |c: &&Value| c.get("role").and_then(Value::as_str).unwrap_or("user") == "user";
    let user = contents
        .iter()
        .rev()
        .find(is_user)
        .map(parts_text)
        .unwrap_or_default();
    text_reply(crate::logic::reply_to(&user, sc))
}

/// Words of the system instruction and every content's text.
pub fn prompt_token_count(v: &Value) -> u64 {
    let empty = Vec::new();
    let contents = v
        .get("contents")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let texts: Vec<Value> = v
        .get("systemInstruction")
        .into_iter()
        .chain(contents.iter())
        .map(|c| Value::String(parts_text(c)))
        .collect();
    prompt_tokens(texts.iter())
}

/// Gemini reports a stop sequence as a plain STOP.
fn finish_reason(f: &Finish) -> &'static str {
    match f {
        Finish::Length => "MAX_TOKENS",
        _ => "STOP",
    }
}

fn usage(prompt: u64, candidates: u64) -> Obj {
    Obj::new()
        .num("promptTokenCount", prompt)
        .num("candidatesTokenCount", candidates)
        .num("totalTokenCount", prompt + candidates)
}

fn function_call_part(name: &str) -> Vec<u8> {
    Obj::new()
        .obj(
            "functionCall",
            Obj::new()
                .str("name", name)
                .raw("args", b"{\"city\":\"Paris\"}"),
        )
        .finish()
}

/// One `GenerateContentResponse` with a single candidate.
fn response_json(model: &str, parts: Vec<Vec<u8>>, finish: Option<&str>, usage: Obj) -> Vec<u8> {
    let mut candidate = Obj::new().obj(
        "content",
        Obj::new().raw("parts", &arr(parts)).str("role", "model"),
    );
    if let Some(f) = finish {
        candidate = candidate.str("finishReason", f);
    }
    Obj::new()
        .raw("candidates", &arr([candidate.num("index", 0).finish()]))
        .obj("usageMetadata", usage)
        .str("modelVersion", model)
        .finish()
}

fn text_part(text: &str) -> Vec<u8> {
    Obj::new().str("text", text).finish()
}

pub fn generate_json(model: &str, reply: &Reply, finish: &Finish, prompt: u64) -> Vec<u8> {
    let part = match reply {
        Reply::Text(t) => text_part(t),
        Reply::Tool(name) => function_call_part(name),
    };
    response_json(
        model,
        vec![part],
        Some(finish_reason(finish)),
        usage(prompt, reply.completion_tokens()),
    )
}

/// `data: JSON\r\n\r\n`, the framing Google sends.
fn sse_frame(json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + 10);
    b.put_slice(b"data: ");
    b.put_slice(json);
    b.put_slice(b"\r\n\r\n");
    b.freeze()
}

/// The frames of a streamed answer: one per word (or the whole function call), then a last
/// frame with the finish reason. Usage rides on every frame, as Google sends it.
pub fn stream_frames(model: &str, reply: &Reply, finish: &Finish, prompt: u64) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut sent = String::new();
    match reply {
        Reply::Text(t) => {
            for piece in split_words_keep_spaces(t) {
                sent.push_str(piece);
                let u = usage(prompt, word_count(&sent));
                frames.push(response_json(model, vec![text_part(piece)], None, u));
            }
        }
        Reply::Tool(name) => {
            let u = usage(prompt, reply.completion_tokens());
            frames.push(response_json(
                model,
                vec![function_call_part(name)],
                None,
                u,
            ));
        }
    }
    let u = usage(prompt, reply.completion_tokens());
    frames.push(response_json(
        model,
        vec![text_part("")],
        Some(finish_reason(finish)),
        u,
    ));
    frames
}

pub fn generate(
    v: &Value,
    model: &str,
    method: Method,
    query: Option<&str>,
    sc: &Scenario,
) -> Resp {
    let prompt = prompt_token_count(v);
    let (reply, finish) = reply(v, sc);
    if method == Method::Generate {
        return http::json(200, generate_json(model, &reply, &finish, prompt));
    }
    let frames = stream_frames(model, &reply, &finish, prompt);
    if query_param(query, "alt").as_deref() != Some("sse") {
        // Without alt=sse Google streams one JSON array of the same responses.
        return http::json(200, arr(frames));
    }
    let mut s = EventStream::default();
    let last = frames.len() - 1;
    for (i, f) in frames.iter().enumerate() {
        if i == last {
            s.push(sse_frame(f));
        } else {
            s.push_content(sse_frame(f));
        }
    }
    if sc.cut_stream {
        s.cut_after_two_content_events();
    }
    http::sse(s.events, sc)
}

// ------------------------------------------------------------------- embeddings

fn values(text: &str) -> Obj {
    Obj::new().val("values", &embedding(text)[..])
}

/// `batchEmbedContents`: one embedding per request, in order.
pub fn batch_embed(v: &Value) -> Resp {
    let Some(requests) = v.get("requests").and_then(Value::as_array) else {
        return ApiError::invalid(
            "* BatchEmbedContentsRequest.requests: requests is not specified\n",
        )
        .response();
    };
    let embeddings = arr(requests
        .iter()
        .map(|r| values(&r.get("content").map(parts_text).unwrap_or_default()).finish()));
    http::json(200, Obj::new().raw("embeddings", &embeddings).finish())
}

/// Vertex `predict` for text-embedding models: `instances: [{content}]`.
pub fn predict(v: &Value) -> Resp {
    let Some(instances) = v.get("instances").and_then(Value::as_array) else {
        return ApiError::invalid("instances is required").response();
    };
    let predictions = arr(instances.iter().map(|i| {
        let text = i.get("content").and_then(Value::as_str).unwrap_or("");
        let statistics = Obj::new()
            .val("truncated", &false)
            .num("token_count", word_count(text));
        Obj::new()
            .obj("embeddings", values(text).obj("statistics", statistics))
            .finish()
    }));
    http::json(200, Obj::new().raw("predictions", &predictions).finish())
}

/// Answers a model call whose auth and delay were handled by the caller.
pub fn answer(route: &ModelRoute, query: Option<&str>, body: &[u8], sc: &Scenario) -> Resp {
    let Some(method) = route.method else {
        return ApiError::new(404, format!("Method not found for model {}.", route.model))
            .response();
    };
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::invalid(format!("Invalid JSON payload received. {e}")).response()
        }
    };
    if let Some(status) = sc.error_status {
        return simulated_error(status, &route.model).response();
    }
    if sc.context_overflow {
        return context_overflow().response();
    }
    match method {
        Method::BatchEmbed => batch_embed(&v),
        Method::Predict => predict(&v),
        Method::Generate | Method::Stream => match validate(&v) {
            Ok(()) => generate(&v, &route.model, method, query, sc),
            Err(e) => e.response(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;
    use serde_json::json;

    fn base() -> Value {
        json!({"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]})
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::post(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn routes_parse() {
        let r = ModelRoute::parse("/v1beta/models/gemini-2.0-flash:streamGenerateContent").unwrap();
        assert_eq!(
            (r.api, r.model.as_str(), r.method),
            (Api::Studio, "gemini-2.0-flash", Some(Method::Stream))
        );
        let r = ModelRoute::parse(
            "/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:predict",
        )
        .unwrap();
        assert_eq!((r.api, r.method), (Api::Vertex, Some(Method::Predict)));
        assert_eq!(
            ModelRoute::parse("/v1beta/models/m:nope").unwrap().method,
            None
        );
        assert!(ModelRoute::parse("/v1/chat/completions").is_none());
        assert!(ModelRoute::parse("/v1beta/models/no-method").is_none());
    }

    #[test]
    fn auth_like_google() {
        assert_eq!(
            check_auth(Api::Studio, &parts("/x", &[]))
                .unwrap_err()
                .status,
            403
        );
        assert!(check_auth(Api::Studio, &parts("/x", &[("x-goog-api-key", "k")])).is_ok());
        assert!(check_auth(Api::Studio, &parts("/x?key=k", &[])).is_ok());
        assert_eq!(
            check_auth(Api::Vertex, &parts("/x?key=k", &[]))
                .unwrap_err()
                .status,
            401
        );
        assert!(check_auth(
            Api::Vertex,
            &parts("/x", &[("authorization", "Bearer ya29.t")])
        )
        .is_ok());
    }

    #[test]
    fn validation_like_the_real_api() {
        assert!(validate(&base()).is_ok());
        let mut v = base();
        v["model"] = json!("m");
        assert!(validate(&v)
            .unwrap_err()
            .message
            .contains("Unknown name \"model\""));
        assert!(validate(&json!({"contents": []})).is_err());
        let v = json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]});
        assert!(validate(&v).unwrap_err().message.contains("valid role"));
        let v = json!({"contents": [{"role": "user", "parts": []}]});
        assert!(validate(&v).is_err());
    }

    #[test]
    fn replies_follow_the_shared_scenarios() {
        let mut v = base();
        v["systemInstruction"] = json!({"parts": [{"text": "be terse"}]});
        assert_eq!(
            reply(&v, &Scenario::default()).0,
            Reply::Text("mock reply to: hello world".into())
        );
        assert_eq!(prompt_token_count(&v), 4);
        v["generationConfig"] = json!({"maxOutputTokens": 2, "stopSequences": ["zzz"]});
        let (r, f) = reply(&v, &Scenario::default());
        assert_eq!(
            (r, finish_reason(&f)),
            (Reply::Text("mock reply".into()), "MAX_TOKENS")
        );
        let echo = Scenario {
            echo_max_tokens: true,
            ..Default::default()
        };
        assert_eq!(reply(&v, &echo).0, Reply::Text("max_tokens=2".into()));
        v["tools"] =
            json!([{"functionDeclarations": [{"name": "get_weather"}, {"name": "other"}]}]);
        assert_eq!(
            reply(&v, &Scenario::default()).0,
            Reply::Tool("get_weather".into())
        );
        v["toolConfig"] =
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["other"]}});
        assert_eq!(
            reply(&v, &Scenario::default()).0,
            Reply::Tool("other".into())
        );
        v["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
        assert!(matches!(reply(&v, &Scenario::default()).0, Reply::Text(_)));
        v["contents"] = json!([
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "22C"}}}]}
        ]);
        v.as_object_mut().unwrap().remove("generationConfig");
        assert_eq!(
            reply(&v, &Scenario::default()).0,
            Reply::Text("tool said: 22C".into())
        );
    }

    #[test]
    fn full_and_streamed_shapes() {
        let body: Value = serde_json::from_slice(&generate_json(
            "gemini-x",
            &Reply::Tool("f".into()),
            &Finish::ToolCalls,
            3,
        ))
        .unwrap();
        assert_eq!(
            body["candidates"][0]["content"]["parts"][0]["functionCall"],
            json!({"name": "f", "args": {"city": "Paris"}})
        );
        assert_eq!(body["candidates"][0]["finishReason"], "STOP");
        assert_eq!(body["usageMetadata"]["totalTokenCount"], 5);
        let frames = stream_frames("gemini-x", &Reply::Text("a b c".into()), &Finish::Stop, 2);
        assert_eq!(frames.len(), 4);
        let frames: Vec<Value> = frames
            .iter()
            .map(|f| serde_json::from_slice(f).unwrap())
            .collect();
        let text: String = frames
            .iter()
            .filter_map(|f| f["candidates"][0]["content"]["parts"][0]["text"].as_str())
            .collect();
        assert_eq!(text, "a b c");
        assert!(frames[..3]
            .iter()
            .all(|f| f["candidates"][0].get("finishReason").is_none()));
        assert_eq!(frames[3]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(frames[3]["usageMetadata"]["candidatesTokenCount"], 3);
        assert_eq!(&sse_frame(b"{}")[..], b"data: {}\r\n\r\n");
    }

    #[test]
    fn errors_and_embeddings() {
        let e: Value = serde_json::from_slice(&simulated_error(429, "m").body()).unwrap();
        assert_eq!(e["error"]["code"], 429);
        assert_eq!(e["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(rpc_status(503), "UNAVAILABLE");
        let v = json!({"requests": [{"model": "models/e", "content": {"parts": [{"text": "a"}]}},
                                    {"model": "models/e", "content": {"parts": [{"text": "b"}]}}]});
        assert_eq!(batch_embed(&v).status(), 200);
        assert_eq!(batch_embed(&json!({})).status(), 400);
        assert_eq!(
            predict(&json!({"instances": [{"content": "a b"}]})).status(),
            200
        );
    }
}
